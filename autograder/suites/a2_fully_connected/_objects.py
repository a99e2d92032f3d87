"""Calling methods of a student's object (TwoLayerNet) kept in the sandbox (not a test file).

`student.TwoLayerNet(...)` builds the model in the sandbox and returns a `Handle` (the suite
registers the class with `"opaque": [-1]`). `StudentObject` wraps that handle:

    model = StudentObject.build(student, "TwoLayerNet", input_dim=6, hidden_dim=5)
    model.set("params", params)          # model.params = params   (in the sandbox)
    params = model.get("params")         # a plain dict of arrays, copied out
    loss, grads = model.call("loss", X, y)

Failures read like those of `student.<function>(...)`: a method that raises, times out or
crashes the sandbox becomes a `StudentCallFailed` naming the class and the method.
"""

from __future__ import annotations

import numpy as np

from autograder.plugin import LastCall, StudentCallFailed, where_text
from autograder.protocol import Handle
from autograder.sandbox import SandboxFailure

__all__ = ["StudentObject"]


class StudentObject:
    """A student's object in the sandbox; `owner` is the graded class it belongs to."""

    def __init__(self, student, owner: str, handle: Handle):
        self.student = student
        self.owner = owner
        self.handle = handle

    @classmethod
    def build(cls, student, owner: str, *args, **kwargs) -> StudentObject:
        value = student.call(owner, *args, **kwargs)
        if not isinstance(value, Handle):
            raise StudentCallFailed(f"{owner}(...) did not create an object")
        return cls(student, owner, value)

    def _run(self, attribute: str, args: tuple, kwargs: dict, getattr_only: bool = False):
        proxy = self.student
        what = f"{self.owner}.{attribute}" if not attribute.startswith("__") else self.owner
        if self.owner in proxy.unavailable:
            raise StudentCallFailed(f"{self.owner} {proxy.unavailable[self.owner]}")
        echo = [i for i, a in enumerate(args) if isinstance(a, np.ndarray | dict)]
        sent = {i: args[i].copy() for i in echo if isinstance(args[i], np.ndarray)}
        try:
            outcome = proxy._sandbox.call(attribute, args, kwargs, echo=echo, handle=self.handle,
                                          function=self.owner, getattr_only=getattr_only)
        except SandboxFailure as failure:
            if failure.kind in ("timeout", "crashed", "budget", "protocol"):
                proxy.unavailable.setdefault(self.owner, f"{failure.message} in an earlier check")
            raise StudentCallFailed(f"{what}: {failure.message}") from None
        if not outcome.ok:
            error = outcome.error or {}
            if getattr_only and error.get("type") == "AttributeError":
                raise StudentCallFailed(f"{self.owner} objects have no attribute {attribute!r}")
            kind, message = error.get("type", "Error"), error.get("message", "")
            text = f"raised {kind}" + (f": {message}" if message else "")
            raise StudentCallFailed(f"{what} {text}{where_text(error.get('where'))}")
        proxy.last_call = LastCall(sent=sent,
                                   after=dict(zip(echo, outcome.args_after, strict=False)))
        return outcome.value

    def call(self, method: str, *args, **kwargs):
        """`obj.method(*args, **kwargs)` in the sandbox; returns the decoded value."""
        return self._run(method, args, kwargs)

    def get(self, attribute: str):
        """A copy of `obj.attribute` (must be plain data: arrays, numbers, dicts...)."""
        return self._run(attribute, (), {}, getattr_only=True)

    def set(self, attribute: str, value) -> None:
        """`obj.attribute = value` in the sandbox."""
        self._run("__setattr__", (attribute, value), {})
