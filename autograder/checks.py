"""Comparisons the hidden suites use, run in the trusted parent with the parent's numpy.

Every check raises `GradingFailure` with a message written for the student: what is wrong
(type, dtype, shape, NaN, how many entries are off and by how much, which input was modified),
never the hidden inputs or the expected values themselves. Checks go in a fixed order: exact
type first (a plain `numpy.ndarray`, not a subclass), then dtype, shape, finiteness, values.
"""

from __future__ import annotations

import numbers

import numpy as np

from autograder.protocol import Handle, Rejected

__all__ = ["GradingFailure", "expect_array", "expect_scalar", "expect_tuple",
           "expect_unchanged", "describe_type"]


class GradingFailure(AssertionError):
    """A check failed; the message is shown to the student as is."""


def describe_type(value) -> str:
    if isinstance(value, Rejected):
        return value.reason
    if isinstance(value, Handle):
        return "a value that could not be sent back (kept in the sandbox)"
    if isinstance(value, np.ndarray):
        return f"an ndarray of dtype {value.dtype} and shape {value.shape}"
    return f"a {type(value).__name__}"


def expect_tuple(value, length: int, what: str) -> tuple:
    """`value` must be a tuple (or list) of `length` items, e.g. (out, cache)."""
    if type(value) not in (tuple, list) or len(value) != length:
        got = f"{len(value)} items" if type(value) in (tuple, list) else describe_type(value)
        raise GradingFailure(f"{what} should return a tuple of {length}; it returned {got}")
    return tuple(value)


def expect_array(value, expected: np.ndarray, name: str, *, rtol: float, atol: float,
                 dtype=None) -> np.ndarray:
    """`value` must be an exact ndarray of `dtype` (default: expected's) matching `expected`.

    Tolerance per entry: |value - expected| <= atol + rtol * |expected| (numpy.isclose).
    """
    if type(value) is not np.ndarray:
        raise GradingFailure(f"{name} should be a plain numpy.ndarray; got {describe_type(value)}")
    dtype = np.dtype(dtype or expected.dtype)
    if value.dtype != dtype:
        raise GradingFailure(f"{name} has dtype {value.dtype}; expected {dtype}")
    if value.shape != expected.shape:
        raise GradingFailure(f"{name} has shape {value.shape}; expected {expected.shape}")
    if value.dtype.kind == "f" and not np.isfinite(value).all():
        raise GradingFailure(f"{name} contains NaN or infinite values")
    if value.dtype.kind in "biu":
        wrong = int(np.count_nonzero(value != expected))
        if wrong:
            raise GradingFailure(f"{name} is wrong in {wrong} of {value.size} entries")
        return value
    error = np.abs(value.astype(np.float64) - expected.astype(np.float64))
    allowed = atol + rtol * np.abs(expected.astype(np.float64))
    wrong = int(np.count_nonzero(~(error <= allowed)))
    if wrong:
        raise GradingFailure(
            f"{name} is wrong in {wrong} of {value.size} entries (largest error {error.max():.2g}; "
            f"tolerance |got - expected| <= {atol:g} + {rtol:g} * |expected|)")
    return value


def expect_scalar(value, expected: float, name: str, *, rtol: float, atol: float) -> float:
    """`value` must be a real number (Python or numpy scalar, not bool) close to `expected`."""
    if isinstance(value, np.ndarray) and value.shape == () and value.dtype.kind == "f":
        value = value[()]
    if type(value) is bool or isinstance(value, np.bool_) or \
            not isinstance(value, numbers.Real | np.floating | np.integer):
        raise GradingFailure(f"{name} should be a number (float); got {describe_type(value)}")
    number = float(value)
    if not np.isfinite(number):
        raise GradingFailure(f"{name} is {number}; expected a finite number")
    error = abs(number - expected)
    if not error <= atol + rtol * abs(expected):
        raise GradingFailure(f"{name} is wrong (off by {error:.2g}; tolerance "
                             f"|got - expected| <= {atol:g} + {rtol:g} * |expected|)")
    return number


def expect_unchanged(sent: dict[str, np.ndarray], after: dict[str, object], function: str) -> None:
    """Arrays passed to `function` must come back from the call unmodified."""
    changed = [name for name, original in sent.items()
               if not (type(after.get(name)) is np.ndarray and after[name].shape == original.shape
                       and np.array_equal(after[name], original, equal_nan=True))]
    if changed:
        raise GradingFailure(f"{function} modified its input {', '.join(changed)}; "
                             "a function must not change the arrays it is given")
