"""Checks that name the likely cause when a3 code follows another convention than CONTRACT.md's.

A param dict changed by a function that only reads it (conv_param, pool_param), a
gamma or dgamma shaped (1, C, 1, 1) (the spatial group norm of one CS231n year) instead of
(C,). Self-contained on purpose: a suite is versioned and moved as one folder.
"""

from __future__ import annotations

import numpy as np

from autograder.checks import GradingFailure, expect_array
from autograder.plugin import StudentCallFailed

__all__ = ["call_with_channel_params", "expect_channel_grad", "expect_param_unchanged"]

_GAMMA_SHAPE = ("gamma and beta have shape (C,) (CONTRACT.md), not (1, C, 1, 1) as in one "
                "CS231n year's group norm; broadcast them over (N, C, H, W) yourself, e.g. "
                "gamma[None, :, None, None] or gamma.reshape(1, C, 1, 1)")


def expect_param_unchanged(given: dict, after, function: str, name: str) -> None:
    """A param dict that is not documented as updated comes back as it went in."""
    if after != given:
        raise GradingFailure(f"{function} changed {name} {given} (it came back as {after!r}); "
                             f"{name} is read, never changed (CONTRACT.md): keep what the "
                             "backward pass needs in the cache")


def call_with_channel_params(student, function: str, *args):
    """student.<function>(*args) with (C,) gamma and beta; a broadcasting error says why."""
    try:
        return student.call(function, *args)
    except StudentCallFailed as failure:
        if "could not be broadcast" in str(failure):
            raise GradingFailure(f"{failure}: {_GAMMA_SHAPE}") from None
        raise


def expect_channel_grad(value, expected: np.ndarray, name: str, param: str, *, rtol: float,
                        atol: float) -> np.ndarray:
    """The gradient of a per-channel parameter (gamma, beta: (C,)); names a (1, C, 1, 1)."""
    if type(value) is np.ndarray and value.size == expected.size and value.ndim == 4:
        raise GradingFailure(f"{name} has shape {value.shape}; it must have {param}'s shape "
                             f"{expected.shape}: {_GAMMA_SHAPE}")
    return expect_array(value, expected, name, rtol=rtol, atol=atol)
