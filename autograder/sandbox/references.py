"""Reference layers lent to a student's call: each graded function is graded once, where it is.

A hidden test of a model (ThreeLayerConvNet) should not fail because the student's convolution
is wrong: that costs points in the convolution's own tests. So a suite may declare what a
graded function uses (FUNCTIONS = {"ThreeLayerConvNet": {"uses": ["conv_forward_naive", ...]}})
and lend the reference behaviour of those functions while the model is called:

    parent (trusted)                              child (sandbox)
    call ThreeLayerConvNet.loss, lend [conv...] ->  conv_forward_naive = proxy (for this call)
                                                   student's loss() calls conv_forward_naive
              <- {"op": "reference", "name": "conv_forward_naive", "args": [...]}
    run course_lib's conv_forward on the arrays
    -> {"ok": true, "value": [out, {"t": "ref", "id": 7}]}   (the cache stays here)
                                                   ... loss() goes on, returns
              <- the call's reply

The reference code never enters the sandbox: only the arrays it returns do, and values the
suite marks opaque (a forward pass's cache) stay in the parent, seen by the child as a token it
can only pass back. The child is untrusted, so the parent answers only for the functions lent to
the call in progress (a proxy kept for later is refused), decodes arguments with the protocol's
bounds, lets the suite's reference refuse work it would not do for its own tests (a cost bound),
and counts the time it spends against the call's deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from autograder import protocol

__all__ = ["Lending", "REFERENCE_TAG", "bounded"]

REFERENCE_TAG = "ref"           # a value kept in the parent, as the child sees it
MAX_KEPT = 10_000               # values one call may keep in the parent


class KeptTooMany(Exception):
    """The call made the lent functions keep more than MAX_KEPT values (a flood)."""


class Lending:
    """The reference functions lent to one call of the student's code, and the values they
    keep on this side; `answer` serves one request from the child."""

    def __init__(self, references: dict[str, Callable], opaque: dict[str, Iterable[int]]):
        self.references = dict(references)
        self.opaque = {name: list(opaque.get(name, ())) for name in references}
        self.kept: dict[int, object] = {}

    @property
    def names(self) -> list[str]:
        return list(self.references)

    # --- values crossing to the child
    def _keep(self, value) -> dict:
        if len(self.kept) >= MAX_KEPT:
            raise KeptTooMany(f"more than {MAX_KEPT:,} values kept by the grader's layers in one "
                              "call")
        key = len(self.kept) + 1
        self.kept[key] = value
        return {"t": REFERENCE_TAG, "id": key}

    def _encode(self, value, buffers: list, opaque: list[int]) -> dict:
        if opaque == [-1]:
            return self._keep(value)
        if opaque and type(value) is tuple:
            return {"t": "tuple", "items": [
                self._keep(item) if i in opaque else self._plain(item, buffers)
                for i, item in enumerate(value)]}
        return self._plain(value, buffers)

    def _plain(self, value, buffers: list, depth: int = 0) -> dict:
        if type(value) in (tuple, list) and depth < protocol.MAX_DEPTH:
            return {"t": type(value).__name__,
                    "items": [self._plain(v, buffers, depth + 1) for v in value]}
        if type(value) is dict and depth < protocol.MAX_DEPTH:
            return {"t": "dict", "items": [[str(k), self._plain(v, buffers, depth + 1)]
                                           for k, v in value.items()]}
        node = protocol.encode_value(value, buffers)
        return self._keep(value) if node["t"] == "rejected" else node

    # --- values from the child
    def _decode(self, node, buffers: list, depth: int = 0):
        if not isinstance(node, dict) or depth > protocol.MAX_DEPTH:
            raise protocol.ProtocolError("malformed reference argument")
        tag = node.get("t")
        if tag == REFERENCE_TAG:
            if type(node.get("id")) is not int or node["id"] not in self.kept:
                raise protocol.ProtocolError("unknown reference value")
            return self.kept[node["id"]]
        if tag in ("tuple", "list"):
            items = node.get("items")
            if not isinstance(items, list) or len(items) > protocol.MAX_ITEMS:
                raise protocol.ProtocolError("malformed sequence")
            values = [self._decode(v, buffers, depth + 1) for v in items]
            return tuple(values) if tag == "tuple" else values
        if tag == "dict":
            items = node.get("items")
            if not isinstance(items, list) or len(items) > protocol.MAX_ITEMS:
                raise protocol.ProtocolError("malformed dict")
            out = {}
            for pair in items:
                if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                    raise protocol.ProtocolError("malformed dict item")
                out[pair[0]] = self._decode(pair[1], buffers, depth + 1)
            return out
        if tag == "handle":
            raise protocol.ProtocolError("a value kept in the sandbox was passed to a reference")
        return protocol.decode_value(node, buffers, depth)

    # --- one request
    def answer(self, request: dict, buffers: list) -> tuple[dict, list]:
        """The reply to {"op": "reference", "name", "args", "kwargs"}: the value (arrays,
        tokens for opaque values) and the dict arguments as the reference left them (a
        bn_param's running averages), or the reference's error. Raises ProtocolError for a
        request the child had no business sending."""
        name = request.get("name")
        if name not in self.references:
            raise protocol.ProtocolError(f"reference {str(name)[:80]!r} was not lent to this call")
        args_nodes, kwargs_nodes = request.get("args"), request.get("kwargs")
        if not isinstance(args_nodes, list) or not isinstance(kwargs_nodes, list):
            raise protocol.ProtocolError("malformed reference request")
        args = [self._decode(a, buffers) for a in args_nodes]
        kwargs = {}
        for pair in kwargs_nodes:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise protocol.ProtocolError("malformed keyword argument")
            kwargs[pair[0]] = self._decode(pair[1], buffers)
        try:
            value = self.references[name](*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the student's arguments were wrong
            return {"ok": False, "error": {"type": type(exc).__name__,
                                           "message": str(exc)[:300]}}, []
        out: list = []
        try:
            node = self._encode(value, out, self.opaque[name])
        except KeptTooMany as exc:
            return {"ok": False, "error": {"type": "RuntimeError", "message": str(exc)}}, []
        dicts_after = [[i, self._plain(a, out)] for i, a in enumerate(args) if type(a) is dict]
        dicts_after += [[k, self._plain(v, out)] for k, v in kwargs.items() if type(v) is dict]
        return {"ok": True, "value": node, "dicts_after": dicts_after}, out


def bounded(name: str, function: Callable, operations: Callable, limit: float) -> Callable:
    """`function` lent as `name`, refusing calls whose `operations(*args, **kwargs)` (an
    estimate of the work, from the shapes) exceeds `limit`, the most the suite's tests need.
    Malformed arguments count as no work: the library's own validation then says what is
    wrong."""
    def lent(*args, **kwargs):
        try:
            cost = float(operations(*args, **kwargs))
        except (AttributeError, TypeError, ValueError, IndexError, KeyError, ZeroDivisionError):
            cost = 0.0
        if not np.isfinite(cost) or cost > limit:
            raise ValueError(f"the grader's {name} refuses inputs this large ({cost:.3g} "
                             f"operations; at most {limit:.3g} in these tests)")
        return function(*args, **kwargs)
    return lent
