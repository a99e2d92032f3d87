"""What hidden suites use: the `student` fixture, student objects, markers, StudentCallFailed.

A hidden test is a plain pytest function in `autograder/suites/<assignment>/test_*.py`:

    @pytest.mark.points(2)                      # default 1
    @pytest.mark.function("affine_forward")     # default: from the name, test_<function>_...
    def test_affine_forward_flattens_4d_input(student):
        out, cache = expect_tuple(student.affine_forward(x, w, b), 2, "affine_forward")
        expect_array(out, reference_out, "out", rtol=1e-7, atol=1e-9)

`student.<function>(...)` runs the student's function in the sandbox and returns plain
values (arrays, numbers, tuples, dicts); a cache the contract calls opaque comes back as a
`Handle` that can only be passed back to another call. A graded class stays in the sandbox
too, and its objects are used through `StudentObject`:

    model = student.build("TwoLayerNet", input_dim=6, hidden_dim=5)
    model.set("params", params)              # model.params = params   (in the sandbox)
    params = model.get("params")             # a plain dict of arrays, copied out
    loss, grads = model.call("loss", X, y)
    model.attribute("params").call("update", new)   # model.params.update(new), same dict

Every call that fails (the student's code raised, timed out or crashed the sandbox, or the
function is unavailable) raises `StudentCallFailed`, whose message is what the student sees
(`call_failed` writes it). A test passes when it returns and fails on any exception; the
message of a `GradingFailure` is shown as is. Any other exception is an error of the suite
itself: the student sees "internal error" and the instructor gets the traceback.

pytest runs in the trusted parent, once per submission, with that submission's
`autograder.grading.Grading` registered as a plugin object; the fixture finds it in
`config.stash[GRADING]`. The runner loads this module with `-p autograder.plugin`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pytest

from autograder.checks import GradingFailure
from autograder.protocol import Handle
from autograder.results import clip
from autograder.sandbox import CallOutcome, Sandbox, SandboxFailure
from autograder.sandbox.references import Lending

if TYPE_CHECKING:
    from autograder.grading import Grading, Verdicts

__all__ = ["Student", "StudentObject", "StudentCallFailed", "call_failed", "where_text",
           "function_for", "GRADING"]

GRADING: pytest.StashKey[Grading] = pytest.StashKey()
# Sandbox failures after which calling the function again would cost the same again.
_BREAKS_THE_FUNCTION = ("timeout", "crashed", "budget", "protocol")
PLACE_CHARS = 80        # a cell name quoted in a message (a grade_id can be any length)


class StudentCallFailed(GradingFailure):
    """The student's function raised, timed out, crashed the sandbox or is unavailable."""


def where_text(where: dict | None) -> str:
    """' (line 12 of cell affine_forward)' for the `where` of an error from the sandbox."""
    if not isinstance(where, dict):
        return ""
    file = str(where.get("file", ""))
    file = file.removeprefix("<student ").removesuffix(">")
    if file.startswith("student cell "):
        place = "cell " + clip(file.removeprefix("student cell "), PLACE_CHARS)
    elif file.startswith("setup cell "):
        place = "instructor setup cell " + clip(file.removeprefix("setup cell "), PLACE_CHARS)
    else:
        place = "your module"
    return f" (line {clip(str(where.get('line')), 12)} of {place})"


def call_failed(failure: SandboxFailure | CallOutcome, what: str, *, owner: str,
                checking: str | None = None, member: str | None = None) -> StudentCallFailed:
    """The exception for a call of the student's code that failed; its message is shown.

    `failure`: the sandbox's failure (timeout, crash...) or the outcome of a call that raised.
    `what`: what was called ('affine_forward', 'TwoLayerNet.loss()'); `owner`: the graded
    function or class it belongs to; `checking`: the function the test grades (when it is
    another one, the message says that this check needs `what`); `member`: the attribute
    looked up on a student's object (if it does not exist: 'your X has no attribute ...').
    """
    if isinstance(failure, SandboxFailure):
        text = failure.message
    else:
        error = failure.error or {}
        if member is not None and failure.stage == "setup" \
                and error.get("type") == "AttributeError":
            return StudentCallFailed(f"your {owner} has no attribute {member!r}")
        message = error.get("message", "")
        text = (f"raised {error.get('type', 'Error')}" + (f": {message}" if message else "")
                + where_text(error.get("where")))
    if checking is not None and checking != owner:
        return StudentCallFailed(f"this check needs your {what}, which {text}")
    return StudentCallFailed(f"{what} {text}")


@dataclass
class LastCall:
    """The arrays sent to the last call, and the arguments as they were after it."""

    sent: dict[int, np.ndarray] = field(default_factory=dict)
    after: dict[int, object] = field(default_factory=dict)


class Student:
    """The student's graded functions and classes, called in the sandbox.

    `student.affine_forward(x, w, b)` or `student.call("affine_forward", x, w, b)`;
    `student.build("TwoLayerNet", ...)` for an object; `student.last_call.after[i]` is
    argument i as the call left it (to check that inputs were not modified).
    """

    def __init__(self, sandbox: Sandbox | None, functions: dict[str, dict], verdicts: Verdicts,
                 references: dict | None = None):
        self._sandbox = sandbox
        self._functions = functions
        self._verdicts = verdicts
        self._references = references or {}
        self.current_function: str | None = None    # the function the running test grades
        self.last_call = LastCall()

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._functions:
            raise AttributeError(f"{name} is not a graded function of this assignment")
        return lambda *args, **kwargs: self.call(name, *args, **kwargs)

    def call(self, name: str, *args, **kwargs):
        """Run the student's `name(*args, **kwargs)`; returns the decoded value."""
        return self._run(name, name, name, args, kwargs,
                         opaque=self._functions.get(name, {}).get("opaque", ()))

    def _call_timeout(self, owner: str) -> float | None:
        """A suite may give a function more time than the default per call (a training task:
        FUNCTIONS = {"train_x": {"call_timeout": 60}}); never less than the instructor's."""
        declared = self._functions.get(owner, {}).get("call_timeout")
        if declared is None:
            return None
        return max(float(declared), self._sandbox.limits.call_timeout)

    def _lending(self, owner: str) -> Lending | None:
        """The reference functions lent to calls of `owner` (FUNCTIONS[owner]["uses"])."""
        uses = self._functions.get(owner, {}).get("uses", ())
        if not uses:
            return None
        return Lending({name: self._references[name] for name in uses},
                       {name: self._functions.get(name, {}).get("opaque", ()) for name in uses})

    def build(self, owner: str, *args, **kwargs) -> StudentObject:
        """An object of the student's graded class `owner`, made in the sandbox."""
        value = self.call(owner, *args, **kwargs)
        if not isinstance(value, Handle):
            raise StudentCallFailed(f"{owner}(...) did not create an object")
        return StudentObject(self, owner, owner, value)

    def _run(self, owner: str, what: str, target: str, args: tuple, kwargs: dict, *,
             handle: Handle | None = None, opaque=(), getattr_only: bool = False,
             member: str | None = None):
        """The one way into the sandbox: a call, its failure as StudentCallFailed, its echo."""
        problem = self._verdicts.reason(owner)
        if problem is not None:
            raise StudentCallFailed(f"this check needs your {owner}, which {problem}"
                                    if self.current_function not in (None, owner) else
                                    f"{owner} {problem}")
        echo = [i for i, a in enumerate(args) if isinstance(a, np.ndarray | dict)]
        sent = {i: args[i].copy() for i in echo if isinstance(args[i], np.ndarray)}
        try:
            outcome = self._sandbox.call(target, args, kwargs, opaque=opaque, echo=echo,
                                         handle=handle, function=owner,
                                         getattr_only=getattr_only,
                                         timeout=self._call_timeout(owner),
                                         lending=self._lending(owner))
        except SandboxFailure as failure:
            if failure.kind in _BREAKS_THE_FUNCTION:
                self._verdicts.rule_out(owner, "broken", f"{failure.message} in an earlier check")
            raise call_failed(failure, what, owner=owner, checking=self.current_function
                              ) from None
        if not outcome.ok:
            raise call_failed(outcome, what, owner=owner, checking=self.current_function,
                              member=member)
        # The child sends one entry per positional argument (none for those not echoed).
        after = {i: outcome.args_after[i] for i in echo if i < len(outcome.args_after)}
        for i in echo:
            # Documented in-place updates of parameter dicts (bn_param, configs) come back.
            if isinstance(args[i], dict) and isinstance(after.get(i), dict):
                args[i].clear()
                args[i].update(after[i])
        self.last_call = LastCall(sent=sent, after=after)
        return outcome.value


class StudentObject:
    """An object of the student's code kept in the sandbox (a model); see the module doc."""

    def __init__(self, student: Student, owner: str, path: str, handle: Handle):
        self.student = student
        self.owner = owner          # the graded class it belongs to
        self.path = path            # how messages name it: 'TwoLayerNet', 'X.params'
        self.handle = handle

    def call(self, method: str, *args, **kwargs):
        """`obj.method(*args, **kwargs)` in the sandbox; returns the decoded value."""
        return self.student._run(self.owner, f"{self.path}.{method}()", method, args, kwargs,
                                 handle=self.handle, member=method)

    def get(self, attribute: str):
        """A copy of `obj.attribute` (must be plain data: arrays, numbers, dicts...)."""
        return self.student._run(self.owner, f"{self.path}.{attribute}", attribute, (), {},
                                 handle=self.handle, getattr_only=True, member=attribute)

    def set(self, attribute: str, value) -> None:
        """`obj.attribute = value` in the sandbox."""
        self.student._run(self.owner, f"setting {self.path}.{attribute}", "__setattr__",
                          (attribute, value), {}, handle=self.handle)

    def attribute(self, attribute: str) -> StudentObject:
        """`obj.attribute` itself, left in the sandbox (to call its methods)."""
        handle = self.student._run(self.owner, f"{self.path}.{attribute}", attribute, (), {},
                                   handle=self.handle, getattr_only=True, opaque=[-1],
                                   member=attribute)
        return StudentObject(self.student, self.owner, f"{self.path}.{attribute}", handle)


# ----------------------------------------------------------------------------- pytest side

def function_for(name: str, functions: list[str]) -> str | None:
    """'test_affine_forward' or 'test_affine_forward_shapes' -> 'affine_forward' (the longest
    graded function the name is about); used for test names and nbgrader's grade_ids."""
    if not name.startswith("test_"):
        return None
    rest = name.removeprefix("test_")
    candidates = [f for f in functions if rest == f or rest.startswith(f + "_")]
    return max(candidates, key=len) if candidates else None


def function_of(item, functions: list[str]) -> str | None:
    marker = item.get_closest_marker("function")
    if marker and marker.args:
        return str(marker.args[0])
    return function_for(getattr(item, "originalname", item.name), functions)


def points_of(item) -> float:
    marker = item.get_closest_marker("points")
    return float(marker.args[0]) if marker and marker.args else 1.0


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "points(n): points the test is worth (default 1)")
    config.addinivalue_line("markers", "function(name): the graded function the test checks")


@pytest.fixture(scope="session")
def student(request) -> Student:
    """The student's functions, called in the sandbox (one per graded submission)."""
    grading = request.config.stash.get(GRADING, None)
    if grading is None:
        pytest.skip("no submission is being graded")
    return grading.student
