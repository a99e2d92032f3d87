"""One submission's grading: its sandbox, its verdicts, the pytest run, the records, the result.

    grading = Grading(suite, policy, sandbox)      # Grading(suite, policy, fatal=why) if the
    grading.load(program)                          #   code could not even be read
    grading.run()                                  # pytest.main(args, plugins=[grading])
    grading.finish()                               # close the sandbox, read what it saw
    result = grading.result(name=..., submission=..., key=..., run=...)

`Grading` is registered with pytest as a plugin object, as pytest's junitxml registers its
`LogXML` reporter: its hook methods keep this run's records, and the `student` fixture of
`autograder.plugin` finds it in `config.stash`. Nothing of a run lives in a module global, so
one worker process grades submission after submission with a fresh `Grading` each.

`Verdicts` is the only place that decides that a function earns nothing, and why.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence

import pytest

from autograder import results
from autograder.checks import GradingFailure
from autograder.forbidden import matches
from autograder.plugin import GRADING, PLACE_CHARS, Student, function_of, points_of
from autograder.sandbox import Sandbox, SandboxFailure

__all__ = ["Grading", "Verdicts"]

INTERNAL = "internal error in the hidden test (the instructor has the details)"
_HOW = {"import": "imports", "importlib.import_module": "imports", "call": "calls"}


class Verdicts:
    """Why a graded function earns no points at all; every test of it fails with that reason.

    Kinds: 'unavailable' (missing, not a function, could not be loaded or graded),
    'forbidden' (uses something the assignment forbids, seen before or while it ran) and
    'broken' (it timed out or crashed the sandbox in an earlier check: calling it again would
    cost the same). A forbidden verdict replaces any other; otherwise the first one stands.
    A verdict also fails the tests of that function that had passed before it was reached.
    """

    def __init__(self) -> None:
        self._verdicts: dict[str, tuple[str, str]] = {}

    def rule_out(self, function: str, kind: str, reason: str) -> None:
        if kind == "forbidden" or function not in self._verdicts:
            self._verdicts[function] = (kind, reason)

    def reason(self, function: str | None) -> str | None:
        verdict = self._verdicts.get(function)
        return verdict[1] if verdict else None

    def __contains__(self, function: str) -> bool:
        return function in self._verdicts


# ----------------------------------------------------------------------------- messages

_REFERENCE_CACHE: dict[str, set] = {}


def _reference(policy) -> set:
    from autograder.forbidden import reference_names
    key = json.dumps(policy.as_config(), sort_keys=True)
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = reference_names(policy)
    return _REFERENCE_CACHE[key]


def unit_failure_text(reply: dict, unit: dict) -> str:
    """'line 3 of cell affine_forward raised NameError: ...' for a unit that failed to load."""
    error = reply.get("error") or {}
    cell = results.clip(str(unit["cell"]), PLACE_CHARS)
    place = "your module" if unit["origin"] == "module" else (
        f"cell {cell}" if unit["origin"] == "student" else f"instructor setup cell {cell}")
    if reply.get("failure"):
        return f"the code at line {unit['line']} of {place} {error.get('message', 'failed')}"
    line = (error.get("where") or {}).get("line", unit["line"])
    message = f": {error['message']}" if error.get("message") else ""
    return f"line {line} of {place} raised {error.get('type', 'an error')}{message}"


def _missing_text(name: str, program, loaded: dict) -> str:
    if name in program.broken:
        return f"could not be loaded: {program.broken[name]}"
    for unit in program.units:
        reply = loaded.get(unit["id"], {})
        if name in unit["defines"] and not reply.get("ok", True):
            return "could not be defined: " + unit_failure_text(reply, unit)
    if not any(u["origin"] != "setup" for u in program.units):
        return "is not defined (no code of yours was found in the submission)"
    return "is not defined in your submission"


def _forbidden_text(reasons: list[str], policy, assignment: str) -> str:
    """e.g. 'uses course_lib.affine_forward, which is not allowed in a2 (it is the ...)'."""
    names = [w.strip(",;") for r in reasons for w in r.split() if policy.hit(w.strip(",;"))
             or matches(w.strip(",;"), policy.forbidden)]
    why = policy.reason(names[-1]) if names else "not allowed"
    return f"{'; '.join(reasons)}, which is not allowed in {assignment} ({why})"


def _message(excinfo) -> tuple[str, bool]:
    """(message for the student, whether it is an internal error of the suite)."""
    exc = excinfo.value
    if isinstance(exc, GradingFailure):
        return results.clip(str(exc) or "check failed"), False
    if isinstance(exc, pytest.fail.Exception):
        return results.clip(str(exc.msg)), False
    return INTERNAL, True


def _pytest_args(suite, ini: str) -> list[str]:
    # No conftest.py and no assertion rewriting: a suite is plain test files, and messages
    # come from the checks only (pytest's assertion introspection would print hidden values).
    return [str(suite.directory), "-p", "autograder.plugin", "-p", "no:cacheprovider",
            "-p", "no:terminal", "-p", "no:unraisableexception", "-p", "no:threadexception",
            "-p", "no:faulthandler", "--assert=plain", "--noconftest",
            "--continue-on-collection-errors", "-c", ini, "--rootdir",
            str(suite.directory), "-W", "ignore"]


# ----------------------------------------------------------------------------- the grading

class Grading:
    """One submission: loads it into its sandbox, runs the hidden suite, returns the result."""

    def __init__(self, suite, policy, sandbox: Sandbox | None = None, *,
                 fatal: str | None = None, notes: Sequence[str] = (),
                 only: Sequence[str] = ()):
        self.suite = suite
        self.policy = policy
        self.sandbox = sandbox
        self.functions = list(suite.functions)
        self.only = set(only)           # grade only these functions' tests (empty: all)
        self.verdicts = Verdicts()
        self.student = Student(sandbox, suite.functions, self.verdicts, suite.references)
        self.records: dict[str, dict] = {}
        self.order: list[str] = []
        self.collection_errors: list[str] = []
        self.errors: list[dict] = []
        self.notes = list(notes)
        self.sandbox_info: dict = {}
        self.run_info: dict = {}
        if fatal is not None:
            for function in self.functions:
                self.verdicts.rule_out(function, "unavailable", f"could not be graded: {fatal}")
            self.errors.append({"function": None, "message": fatal})

    # --- before pytest
    def load(self, program) -> None:
        """Static check, then the student's code into the sandbox; verdicts for what is not
        there, not a function or forbidden."""
        from autograder.forbidden import static_violations
        lent = {f: list(spec.get("uses", ())) for f, spec in self.suite.functions.items()}
        static = static_violations(program.units, self.functions, self.policy,
                                   _reference(self.policy), lent)
        loaded = self.sandbox.load(program.units)
        try:
            kinds = self.sandbox.inspect(self.functions)
        except SandboxFailure as failure:
            kinds = dict.fromkeys(self.functions, "missing")
            self.errors.append({"function": None, "message": f"the sandbox failed after "
                                f"loading your code: {failure.message}"})
        assignment = self.suite.name
        for f in self.functions:
            if static.get(f):
                self.verdicts.rule_out(f, "forbidden",
                                       _forbidden_text(static[f], self.policy, assignment))
            elif kinds[f] == "missing":
                self.verdicts.rule_out(f, "unavailable", _missing_text(f, program, loaded))
            elif kinds[f] == "forbidden":
                self.verdicts.rule_out(f, "forbidden", _forbidden_text(
                    [f"is the library's {f}"], self.policy, assignment))
            elif kinds[f] not in ("function", "class"):
                self.verdicts.rule_out(f, "unavailable", f"is {kinds[f]}, not a function")
        graded = set(self.functions)
        for unit in program.units:
            reply = loaded.get(unit["id"], {})
            if not reply.get("ok", True) and not set(unit["defines"]) & graded:
                self.notes.append(unit_failure_text(reply, unit) + " (skipped)")

    # --- pytest
    def run(self) -> int:
        """The hidden suite, with this object as a pytest plugin."""
        with tempfile.TemporaryDirectory(prefix="autograder-pytest-") as tmp:
            ini = os.path.join(tmp, "pytest.ini")
            with open(ini, "w") as f:
                f.write("[pytest]\n")
            return int(pytest.main(_pytest_args(self.suite, ini), plugins=[self]))

    def pytest_configure(self, config) -> None:
        config.stash[GRADING] = self

    def pytest_collection_modifyitems(self, config, items) -> None:
        if self.only:
            skipped = [i for i in items if function_of(i, self.functions) not in self.only]
            items[:] = [i for i in items if i not in skipped]
            config.hook.pytest_deselected(items=skipped)
        for item in items:
            self.order.append(item.nodeid)
            self.records[item.nodeid] = {
                "function": function_of(item, self.functions) or "(none)",
                "max_points": points_of(item), "passed": False, "message": "not run",
                "internal": None}

    def pytest_collectreport(self, report) -> None:
        if report.failed:
            self.collection_errors.append(
                results.clip(f"{report.nodeid}: {report.longreprtext[-2000:]}"))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item) -> None:
        function = self.records[item.nodeid]["function"]
        self.student.current_function = function
        problem = self.verdicts.reason(function)
        if problem:
            pytest.fail(f"{function} {problem}", pytrace=False)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        record = self.records.get(item.nodeid)
        if record is None:
            return
        if report.when == "call" and report.passed:
            record.update(passed=True, message="passed")
        elif report.failed and record["message"] in ("not run", "passed"):
            message, internal = _message(call.excinfo)
            record.update(passed=False, message=message)
            if internal:
                record["internal"] = report.longreprtext[-4000:]
        elif report.skipped and record["message"] == "not run":
            record.update(passed=False, message="skipped by the suite")

    # --- after pytest
    def finish(self) -> None:
        """Close the sandbox; what it saw forbidden while a function ran rules that out."""
        if self.sandbox is None:
            return
        sandbox = self.sandbox
        sandbox.close()
        self.sandbox_info = {k: sandbox.isolation.get(k) for k in
                             ("namespaces", "network", "filesystem", "user", "rlimits",
                              "degraded", "active", "inactive")}
        self.run_info = {"restarts": sandbox.restarts, "stdout_bytes": sandbox.stdout_bytes,
                         "stderr_bytes": sandbox.stderr_bytes}
        graded = set(self.functions)
        for event in sandbox.events:
            context = event["context"]
            function = context.removeprefix("call:")
            if context.startswith("call:") and function in graded:
                how = _HOW.get(event["how"], "uses")
                self.verdicts.rule_out(function, "forbidden", _forbidden_text(
                    [f"{how} {event['what']}"], self.policy, self.suite.name))
            elif not context.startswith("call:"):
                self.notes.append(f"{event['what']} was used while loading ({event['how']}); "
                                  f"it is not allowed in {self.suite.name}")

    def result(self, *, name: str, submission: dict, key: str, run: dict) -> dict:
        """The result (schema in `autograder.results`), within its size caps."""
        errors = list(self.errors)
        for problem in self.collection_errors:
            errors.append({"function": None,
                           "message": f"the hidden suite could not be loaded: {problem}"})
        tests = []
        for node in self.order:
            record = self.records[node]
            function, passed, message = record["function"], record["passed"], record["message"]
            problem = self.verdicts.reason(function)
            if problem is not None:
                passed, message = False, f"{function} {problem}"
            if record["internal"]:
                errors.append({"function": function,
                               "message": f"internal error in {node}: {record['internal']}"})
            tests.append({"id": node, "function": function,
                          "points": record["max_points"] if passed else 0.0,
                          "max_points": record["max_points"], "passed": passed,
                          "message": message})
        functions = {}
        # Every test counts under its function, also one the suite forgot to list in FUNCTIONS.
        listed = [f for f in self.functions if not self.only or f in self.only]
        for f in dict.fromkeys([*listed, *(t["function"] for t in tests)]):
            mine = [t for t in tests if t["function"] == f]
            passed = sum(t["passed"] for t in mine)
            functions[f] = {"score": sum(t["points"] for t in mine),
                            "max_score": sum(t["max_points"] for t in mine),
                            "passed": passed, "total": len(mine),
                            "status": "passed" if mine and passed == len(mine) else
                            "partial" if passed else "failed"}
            if f in self.verdicts:
                errors.append({"function": f, "message": f"{f} {self.verdicts.reason(f)}"})
        return results.bounded({
            "schema": results.SCHEMA, "name": name, "assignment": self.suite.name,
            "submission": submission, "suite_version": self.suite.version, "key": key,
            "score": sum(t["points"] for t in tests),
            "max_score": sum(t["max_points"] for t in tests),
            "functions": functions, "tests": tests, "errors": errors,
            "notes": list(dict.fromkeys(self.notes)),
            "sandbox": self.sandbox_info, "run": dict(self.run_info, **run)})
