"""Argument checks for the public functions of course_lib.

Every public function validates its inputs once, here, and then trusts them (the Numba kernels
never check). Each error names the argument, what was expected and what arrived, e.g.

    ValueError: w must have shape (F, C, HH, WW) with C=3 to match x; got (8, 4, 3, 3)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def _describe(value: Any) -> str:
    """Short description of what arrived, for error messages."""
    if isinstance(value, np.ndarray):
        return f"ndarray of dtype {value.dtype} and shape {value.shape}"
    return f"{type(value).__name__}"


def check_float_array(value: Any, name: str, ndim: int | Sequence[int] | None = None,
                      layout: str | None = None) -> np.ndarray:
    """Return `value` if it is a float32/float64 ndarray with the right number of dimensions.

    ndim: an int or a sequence of allowed ints; layout: a human description such as
    "(N, C, H, W)" used in the error message.
    """
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a NumPy ndarray of float32 or float64; got {_describe(value)}. "
            f"Convert it with np.asarray({name}, dtype=np.float64).")
    if value.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64; got {value.dtype}. "
            f"Convert it with {name}.astype(np.float64).")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.ndim not in allowed:
            want = " or ".join(f"{d}-D" for d in allowed)
            shape_hint = f" {layout}" if layout else ""
            raise ValueError(
                f"{name} must be {want}{shape_hint}; got {value.ndim}-D array of shape "
                f"{value.shape}")
    return value


def check_shape(value: np.ndarray, name: str, expected: tuple, description: str = "") -> None:
    """Raise ValueError unless value.shape == expected (None in `expected` matches any size)."""
    ok = len(value.shape) == len(expected) and all(
        e is None or e == s for e, s in zip(expected, value.shape, strict=True))
    if not ok:
        want = tuple("?" if e is None else e for e in expected)
        extra = f" {description}" if description else ""
        raise ValueError(f"{name} must have shape {want}{extra}; got {value.shape}")


def check_int_array(value: Any, name: str, length: int | None = None,
                    upper: int | None = None) -> np.ndarray:
    """Labels: a 1-D integer ndarray, optionally of a given length, values in [0, upper)."""
    if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.integer):
        raise TypeError(f"{name} must be a 1-D NumPy array of integer labels; got "
                        f"{_describe(value)}")
    if value.ndim != 1:
        raise ValueError(f"{name} must be 1-D (N,); got shape {value.shape}")
    if length is not None and value.shape[0] != length:
        raise ValueError(f"{name} must have length {length} to match the scores; got "
                         f"{value.shape[0]}")
    if upper is not None and value.size and (value.min() < 0 or value.max() >= upper):
        raise ValueError(f"{name} must hold labels in [0, {upper}); got values from "
                         f"{value.min()} to {value.max()}")
    return value


def check_positive_int(value: Any, name: str) -> int:
    """An int (or integer-valued NumPy scalar) > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int; got {type(value).__name__} {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive int; got {value}")
    return int(value)


def check_nonnegative_int(value: Any, name: str) -> int:
    """An int >= 0 (e.g. padding)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a non-negative int; got {type(value).__name__} "
                        f"{value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative int; got {value}")
    return int(value)


def conv_output_size(size: int, window: int, stride: int = 1, pad: int = 0) -> int:
    """Positions of a window sliding along one axis (rows or columns) of a zero-padded input:

        1 + (size + 2*pad - window) // stride

    Floored, as in PyTorch and the course contract: when stride does not divide
    size + 2*pad - window, the last rows (columns) of the padded input that no window reaches
    are left out, and get zero gradient. The one place in course_lib where this is computed.
    Callers check their arguments first with messages naming them; this raises ValueError only
    for what has no output size at all: stride < 1, pad < 0, window < 1, or a window larger
    than the padded input.
    """
    if stride < 1 or pad < 0 or not 1 <= window <= size + 2 * pad:
        raise ValueError(f"no output size for a window of {window} on size {size} with "
                         f"pad={pad}, stride={stride}: need stride >= 1, pad >= 0 and "
                         f"1 <= window <= size + 2*pad")
    return 1 + (size + 2 * pad - window) // stride


def check_probability(value: Any, name: str, *, allow_one: bool = False) -> float:
    """A float in [0, 1) (or [0, 1] with allow_one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number in [0, 1); got {type(value).__name__}")
    hi_ok = value <= 1 if allow_one else value < 1
    if not (0 <= value and hi_ok):
        bracket = "]" if allow_one else ")"
        raise ValueError(f"{name} must be in [0, 1{bracket}; got {value}")
    return float(value)


def check_param_dict(value: Any, name: str, required: Sequence[str] = ()) -> Mapping:
    """A dict holding at least the `required` keys."""
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict; got {type(value).__name__}")
    missing = [k for k in required if k not in value]
    if missing:
        raise ValueError(f"{name} is missing the key(s) {missing}; got keys {sorted(value)}")
    return value


def check_mode(value: Any, name: str) -> str:
    """'train' or 'test'."""
    if value not in ("train", "test"):
        raise ValueError(f"{name} must be 'train' or 'test'; got {value!r}")
    return value


def check_cache(cache: Any, name: str, expected_len: int, producer: str) -> tuple:
    """A backward pass's cache: the tuple returned by `producer`."""
    if not isinstance(cache, tuple) or len(cache) != expected_len:
        raise TypeError(f"{name} must be the cache returned by {producer}; got "
                        f"{_describe(cache)}")
    return cache


def check_dout(dout: Any, expected_shape: tuple, producer: str) -> np.ndarray:
    """The upstream gradient must be a float array with the forward output's shape."""
    check_float_array(dout, "dout")
    if dout.shape != tuple(expected_shape):
        raise ValueError(f"dout must have the shape of {producer}'s output {tuple(expected_shape)};"
                         f" got {dout.shape}")
    return dout
