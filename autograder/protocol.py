"""The wire format between the trusted parent and the sandboxed child: JSON headers + raw bytes.

Nothing is ever pickled. A message is

    4-byte big-endian header length | UTF-8 JSON header | raw buffers, back to back

and the header lists the byte length of every buffer (`"buffers": [n0, n1, ...]`). Values travel
as tagged JSON nodes; arrays and numpy scalars carry only a dtype string, a shape and an index
into the buffers, so the parent rebuilds them with `np.frombuffer` after checking that the dtype
is a plain numeric one (bool, int, uint, float) and that the byte count matches the shape. What
the parent gets back is therefore always an exact `numpy.ndarray` (never a subclass), a Python
scalar, a tuple/list/dict of those, an opaque `Handle` (a value that stays in the child, such as
a layer cache) or a `Rejected` marker saying what the child refused to send and why.

Both sides import this module; it uses only the standard library and numpy.
"""

from __future__ import annotations

import json
import os
import re
import select
import struct
import time
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Handle", "Rejected", "ProtocolError", "ChannelClosed", "ChannelTimeout",
    "encode_value", "decode_value", "write_message", "read_message", "pack_message",
]

MAX_HEADER_BYTES = 4 * 1024 * 1024
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024     # arrays the parent accepts from the child in one reply
MAX_DEPTH = 16
MAX_ITEMS = 100_000
MAX_STRING = 20_000

# Only plain numeric dtypes cross the boundary: a dtype string such as '<f8', '|b1', '<i4'.
_DTYPE_RE = re.compile(r"^[<>|=]?[biuf][1248]$")


@dataclass(frozen=True)
class Handle:
    """A value kept inside the sandbox (e.g. a forward pass's cache), referred to by number."""

    id: int
    generation: int = 0     # which sandbox process created it; set by the parent

    def __repr__(self) -> str:
        return f"<value kept in the sandbox #{self.id}>"


@dataclass(frozen=True)
class Rejected:
    """Something the student's code returned that cannot cross the boundary."""

    type_name: str
    reason: str

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.reason}>"


class ProtocolError(Exception):
    """A malformed or oversized message (from a misbehaving child)."""


class ChannelClosed(ProtocolError):
    """The other end went away (the child died or closed its pipe)."""


class ChannelTimeout(Exception):
    """No complete message before the deadline."""


# ----------------------------------------------------------------------------- encoding (child)

def _dtype_str(dtype: np.dtype) -> str | None:
    if dtype.kind not in "biuf" or dtype.itemsize not in (1, 2, 4, 8):
        return None
    return dtype.str      # always explicit: '<f8', '|b1', ...


def encode_value(value, buffers: list, keep=None, depth: int = 0) -> dict:
    """Turn `value` into a JSON node, appending raw bytes to `buffers`.

    `keep(value) -> int` is called for values that must stay on this side (returns a handle id).
    Exact types only: an ndarray subclass, a float subclass or any other object is sent back as
    a `rejected` node naming its type, never as data the parent could misread.
    """
    if depth > MAX_DEPTH:
        return {"t": "rejected", "type": type(value).__name__, "why": "nested too deeply"}
    kind = type(value)
    if value is None:
        return {"t": "none"}
    if kind is bool:
        return {"t": "bool", "v": value}
    if kind is int:
        if -(2 ** 63) <= value < 2 ** 63:
            return {"t": "int", "v": value}
        return {"t": "rejected", "type": "int", "why": "integer too large"}
    if kind is float:
        return {"t": "float", "v": repr(value)}
    if kind is str:
        return {"t": "str", "v": value[:MAX_STRING]}
    if kind is np.ndarray:
        dtype = _dtype_str(value.dtype)
        if dtype is None:
            return {"t": "rejected", "type": "ndarray",
                    "why": f"dtype {value.dtype} is not numeric"}
        data = np.ascontiguousarray(value).tobytes()
        buffers.append(data)
        return {"t": "array", "dtype": dtype, "shape": list(value.shape), "b": len(buffers) - 1}
    if isinstance(value, np.generic) and kind in _NUMPY_SCALARS:
        dtype = _dtype_str(np.dtype(kind))
        if dtype is None:
            return {"t": "rejected", "type": kind.__name__, "why": "not a numeric scalar"}
        buffers.append(np.array(value, dtype=kind).tobytes())
        return {"t": "scalar", "dtype": dtype, "b": len(buffers) - 1}
    if kind in (tuple, list):
        if len(value) > MAX_ITEMS:
            return {"t": "rejected", "type": kind.__name__, "why": "too many items"}
        return {"t": kind.__name__,
                "items": [encode_value(v, buffers, keep, depth + 1) for v in value]}
    if kind is dict:
        items = []
        for k, v in list(value.items())[:MAX_ITEMS]:
            if type(k) is not str:
                return {"t": "rejected", "type": "dict", "why": "keys must be strings"}
            items.append([k, encode_value(v, buffers, keep, depth + 1)])
        return {"t": "dict", "items": items}
    if keep is not None:
        return {"t": "handle", "id": keep(value)}
    if isinstance(value, np.ndarray):
        why = f"a subclass of numpy.ndarray ({kind.__module__}.{kind.__name__})"
        return {"t": "rejected", "type": kind.__name__, "why": why}
    return {"t": "rejected", "type": kind.__name__,
            "why": f"an object of type {kind.__module__}.{kind.__name__}"}


_NUMPY_SCALARS = {np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                  np.uint32, np.uint64, np.float16, np.float32, np.float64}


# ----------------------------------------------------------------------------- decoding (parent)

def _checked_dtype(text) -> np.dtype:
    if not isinstance(text, str) or not _DTYPE_RE.match(text):
        raise ProtocolError(f"refused dtype {text!r}")
    return np.dtype(text)


def _buffer(node: dict, buffers: list) -> bytes:
    index = node.get("b")
    if type(index) is not int or not 0 <= index < len(buffers):
        raise ProtocolError("bad buffer index")
    return buffers[index]


def decode_value(node, buffers: list, depth: int = 0, generation: int = 0):
    """Rebuild a value from a JSON node, trusting nothing about it."""
    if depth > MAX_DEPTH + 1 or not isinstance(node, dict):
        raise ProtocolError("malformed value")
    tag = node.get("t")
    if tag == "none":
        return None
    if tag == "bool":
        if type(node.get("v")) is not bool:
            raise ProtocolError("malformed bool")
        return node["v"]
    if tag == "int":
        if type(node.get("v")) is not int:
            raise ProtocolError("malformed int")
        return node["v"]
    if tag == "float":
        text = node.get("v")
        if not isinstance(text, str) or len(text) > 40:
            raise ProtocolError("malformed float")
        return float(text)
    if tag == "str":
        if not isinstance(node.get("v"), str):
            raise ProtocolError("malformed str")
        return node["v"][:MAX_STRING]
    if tag in ("array", "scalar"):
        dtype = _checked_dtype(node.get("dtype"))
        data = _buffer(node, buffers)
        if tag == "scalar":
            if len(data) != dtype.itemsize:
                raise ProtocolError("scalar size mismatch")
            return np.frombuffer(data, dtype=dtype)[0].copy()
        shape = node.get("shape")
        if (not isinstance(shape, list) or len(shape) > 32
                or not all(type(d) is int and d >= 0 for d in shape)):
            raise ProtocolError("malformed shape")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if count * dtype.itemsize != len(data):
            raise ProtocolError("array size does not match its shape")
        array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
        return array.astype(dtype.newbyteorder("="), copy=False)
    if tag in ("tuple", "list"):
        items = node.get("items")
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise ProtocolError("malformed sequence")
        values = [decode_value(v, buffers, depth + 1, generation) for v in items]
        return tuple(values) if tag == "tuple" else values
    if tag == "dict":
        items = node.get("items")
        if not isinstance(items, list) or len(items) > MAX_ITEMS:
            raise ProtocolError("malformed dict")
        out = {}
        for pair in items:
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ProtocolError("malformed dict item")
            out[pair[0]] = decode_value(pair[1], buffers, depth + 1, generation)
        return out
    if tag == "handle":
        if type(node.get("id")) is not int:
            raise ProtocolError("malformed handle")
        return Handle(node["id"], generation)
    if tag == "rejected":
        return Rejected(str(node.get("type", "?"))[:80], str(node.get("why", "?"))[:200])
    raise ProtocolError(f"unknown value tag {tag!r}")


def encode_for_child(value, buffers: list, depth: int = 0) -> dict:
    """Parent-side encoder for arguments: like `encode_value`, plus handles (passed back)."""
    if isinstance(value, Handle):
        return {"t": "handle", "id": value.id}
    if type(value) in (tuple, list):
        return {"t": type(value).__name__,
                "items": [encode_for_child(v, buffers, depth + 1) for v in value]}
    if type(value) is dict:
        return {"t": "dict", "items": [[k, encode_for_child(v, buffers, depth + 1)]
                                       for k, v in value.items()]}
    node = encode_value(value, buffers)
    if node["t"] == "rejected":
        raise TypeError(f"cannot send {type(value).__name__} to the sandbox: {node['why']}")
    return node


# ----------------------------------------------------------------------------- framing

def pack_message(header: dict, buffers: list | tuple = ()) -> bytes:
    header = dict(header, buffers=[len(b) for b in buffers])
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    return b"".join([struct.pack(">I", len(text)), text, *buffers])


def write_message(fd: int, header: dict, buffers: list | tuple = (),
                  deadline: float | None = None) -> None:
    """Write one message to a pipe; with a deadline the fd must be non-blocking."""
    data = memoryview(pack_message(header, buffers))
    while data:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout("timed out writing to the sandbox")
            _, writable, _ = select.select([], [fd], [], remaining)
            if not writable:
                continue
        try:
            written = os.write(fd, data)
        except BlockingIOError:
            continue
        except (BrokenPipeError, OSError) as exc:
            raise ChannelClosed(str(exc)) from None
        data = data[written:]


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    chunks, missing = [], size
    while missing:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChannelTimeout("timed out waiting for the sandbox")
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
        try:
            chunk = os.read(fd, min(missing, 1 << 20))
        except BlockingIOError:
            continue
        except OSError as exc:
            raise ChannelClosed(str(exc)) from None
        if not chunk:
            raise ChannelClosed("the other end closed the channel")
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int, deadline: float | None = None,
                 max_payload: int = MAX_PAYLOAD_BYTES) -> tuple[dict, list]:
    """Read one message; sizes are checked before anything is allocated."""
    (length,) = struct.unpack(">I", _read_exact(fd, 4, deadline))
    if length > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {length} bytes is too large")
    try:
        header = json.loads(_read_exact(fd, length, deadline))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from None
    sizes = header.get("buffers", []) if isinstance(header, dict) else None
    if not isinstance(sizes, list) or not all(type(n) is int and n >= 0 for n in sizes):
        raise ProtocolError("malformed buffer list")
    if sum(sizes) > max_payload:
        raise ProtocolError(f"reply of {sum(sizes)} bytes exceeds the {max_payload}-byte limit")
    return header, [_read_exact(fd, n, deadline) for n in sizes]
