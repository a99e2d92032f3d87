"""The pytest plugin that hidden suites run under: the `student` fixture, markers, records.

A hidden test is a plain pytest function in `autograder/suites/<assignment>/test_*.py`:

    @pytest.mark.points(2)                      # default 1
    @pytest.mark.function("affine_forward")     # default: from the name, test_<function>_...
    def test_affine_forward_flattens_4d_input(student):
        out, cache = expect_tuple(student.affine_forward(x, w, b), 2, "affine_forward")
        expect_array(out, reference_out, "out", rtol=1e-7, atol=1e-9)

`student.<function>(...)` runs the student's function in the sandbox and returns plain
values (arrays, numbers, tuples, dicts); a cache the contract calls opaque comes back as a
`Handle` that can only be passed back to another call. A test passes when it returns and fails
on any exception; the message of `GradingFailure` (and of the failures the proxy raises for
errors, timeouts and crashes in student code) is what the student sees. Any other exception is
an error of the suite itself: the student sees "internal error" and the instructor gets the
traceback in the result's `errors`.

pytest runs in the trusted parent. `autograder.runner` sets `CURRENT` before calling
`pytest.main(["-p", "autograder.plugin", ...])` and reads the records afterwards.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pytest

from autograder.checks import GradingFailure
from autograder.sandbox import Sandbox, SandboxFailure

__all__ = ["StudentProxy", "StudentCallFailed", "GradingSession", "CURRENT"]

INTERNAL = "internal error in the hidden test (the instructor has the details)"


class StudentCallFailed(GradingFailure):
    """The student's function raised, timed out, crashed the sandbox or is unavailable."""


def where_text(where: dict | None) -> str:
    if not isinstance(where, dict):
        return ""
    file = str(where.get("file", ""))
    file = file.removeprefix("<student ").removesuffix(">")
    if file.startswith("student cell "):
        place = "cell " + file.removeprefix("student cell ")
    elif file.startswith("setup cell "):
        place = "instructor setup cell " + file.removeprefix("setup cell ")
    else:
        place = "your module"
    return f" (line {where.get('line')} of {place})"


@dataclass
class LastCall:
    sent: dict[int, np.ndarray] = field(default_factory=dict)
    after: dict[int, object] = field(default_factory=dict)


class StudentProxy:
    """Calls the student's functions in the sandbox; `student.affine_forward(x, w, b)`."""

    def __init__(self, sandbox: Sandbox, functions: dict[str, dict],
                 unavailable: dict[str, str] | None = None):
        self._sandbox = sandbox
        self._functions = functions
        self.unavailable: dict[str, str] = dict(unavailable or {})
        self.current_function: str | None = None
        self.last_call = LastCall()

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._functions:
            raise AttributeError(f"{name} is not a graded function of this assignment")
        return functools.partial(self.call, name)

    def _needs(self, name: str, problem: str) -> str:
        if self.current_function and name != self.current_function:
            return f"this check needs your {name}, which {problem}"
        return f"{name} {problem}"

    def call(self, name: str, *args, **kwargs):
        """Run the student's `name(*args, **kwargs)`; returns the decoded value."""
        if name in self.unavailable:
            raise StudentCallFailed(self._needs(name, self.unavailable[name]))
        spec = self._functions.get(name, {})
        echo = [i for i, a in enumerate(args) if isinstance(a, np.ndarray | dict)]
        sent = {i: args[i].copy() for i in echo if isinstance(args[i], np.ndarray)}
        try:
            outcome = self._sandbox.call(name, args, kwargs, opaque=spec.get("opaque", ()),
                                         echo=echo, function=name)
        except SandboxFailure as failure:
            if failure.kind in ("timeout", "crashed", "budget", "protocol"):
                # Calling it again would cost the same; later checks fail at once.
                self.unavailable.setdefault(name, f"{failure.message} in an earlier check")
            raise StudentCallFailed(self._needs(name, failure.message)) from None
        if not outcome.ok:
            error = outcome.error or {}
            kind, message = error.get("type", "Error"), error.get("message", "")
            text = f"raised {kind}" + (f": {message}" if message else "")
            raise StudentCallFailed(self._needs(name, text + where_text(error.get("where"))))
        after = dict(zip(echo, outcome.args_after, strict=False))
        for i in echo:
            # Documented in-place updates of parameter dicts (bn_param, configs) come back.
            if isinstance(args[i], dict) and isinstance(after.get(i), dict):
                args[i].clear()
                args[i].update(after[i])
        self.last_call = LastCall(sent=sent, after=after)
        return outcome.value


@dataclass
class GradingSession:
    """What one pytest run needs and produces; set as `CURRENT` by the runner."""

    proxy: StudentProxy
    functions: list[str]
    records: dict[str, dict] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    collection_errors: list[str] = field(default_factory=list)


CURRENT: GradingSession | None = None


def function_of(item, functions: list[str]) -> str | None:
    marker = item.get_closest_marker("function")
    if marker and marker.args:
        return str(marker.args[0])
    name = getattr(item, "originalname", item.name)
    candidates = [f for f in functions if name == f"test_{f}" or name.startswith(f"test_{f}_")]
    return max(candidates, key=len) if candidates else None


def points_of(item) -> float:
    marker = item.get_closest_marker("points")
    return float(marker.args[0]) if marker and marker.args else 1.0


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "points(n): points the test is worth (default 1)")
    config.addinivalue_line("markers", "function(name): the graded function the test checks")


@pytest.fixture
def student() -> StudentProxy:
    """The student's functions, called in the sandbox."""
    if CURRENT is None:
        pytest.skip("no submission is being graded")
    return CURRENT.proxy


def pytest_collection_modifyitems(session, config, items) -> None:
    if CURRENT is None:
        return
    for item in items:
        CURRENT.order.append(item.nodeid)
        CURRENT.records[item.nodeid] = {
            "id": item.nodeid, "function": function_of(item, CURRENT.functions) or "(none)",
            "max_points": points_of(item), "passed": False, "message": "not run",
            "internal": None}


def pytest_collectreport(report) -> None:
    if CURRENT is not None and report.failed:
        CURRENT.collection_errors.append(f"{report.nodeid}: {report.longreprtext[-2000:]}")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    if CURRENT is None:
        return
    function = CURRENT.records[item.nodeid]["function"]
    CURRENT.proxy.current_function = function
    problem = CURRENT.proxy.unavailable.get(function)
    if problem:
        pytest.fail(f"{function} {problem}", pytrace=False)


def _message(excinfo) -> tuple[str, bool]:
    """(message for the student, whether it is an internal error of the suite)."""
    exc = excinfo.value
    if isinstance(exc, GradingFailure):
        return str(exc) or "check failed", False
    if isinstance(exc, pytest.fail.Exception):
        return str(exc.msg), False
    return INTERNAL, True


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if CURRENT is None or item.nodeid not in CURRENT.records:
        return
    record = CURRENT.records[item.nodeid]
    if report.when == "call" and report.passed:
        record.update(passed=True, message="passed")
    elif report.failed and record["message"] in ("not run", "passed"):
        message, internal = _message(call.excinfo)
        record.update(passed=False, message=message)
        if internal:
            record["internal"] = report.longreprtext[-4000:]
    elif report.skipped and record["message"] == "not run":
        record.update(passed=False, message="skipped by the suite")
