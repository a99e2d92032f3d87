"""Checks that name the likely cause when a result follows another course year's convention.

Each function compares like `autograder.checks` and, when the value is wrong in a recognisable
way, says which convention it matches and what CONTRACT.md asks instead: a float128
(longdouble) loss, an L2 term without the 0.5. Self-contained on purpose: a suite is versioned
and moved as one folder (a2's suite has the same two checks and more).
"""

from __future__ import annotations

import numpy as np

from autograder.checks import GradingFailure, expect_scalar
from autograder.protocol import Rejected

__all__ = ["expect_loss", "explain_l2"]

_EXTENDED = ("longdouble", "float128", "float96", "clongdouble", "complex256")


def expect_loss(value, expected: float, name: str, *, rtol: float, atol: float,
                not_finite: str | None = None) -> float:
    """A float loss close to `expected`; names extended precision and non-finite causes.

    not_finite: the likely cause when the value is inf or nan (shown after the value).
    """
    if isinstance(value, Rejected) and any(t in value.type_name + value.reason
                                           for t in _EXTENDED):
        raise GradingFailure(
            f"{name} is a numpy.longdouble (float128); everything in this course is float64 "
            "(CONTRACT.md): compute in float64, e.g. return float(loss)")
    if not_finite is not None:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = 0.0
        if not np.isfinite(number):
            raise GradingFailure(f"{name} is {number} {not_finite}")
    return expect_scalar(value, expected, name, rtol=rtol, atol=atol)


def explain_l2(got_loss, want_loss: float, l2: float, reg: float, what: str) -> None:
    """Raise a named failure if `got_loss` is the loss with reg * sum(W**2) (no 0.5) or no L2.

    l2: sum of the squared weights (not biases) at which `want_loss` was computed.
    """
    try:
        got = float(got_loss)
    except (TypeError, ValueError):
        return
    if not np.isfinite(got) or 0.5 * reg * l2 <= 1e-4 * max(1.0, abs(want_loss)):
        return      # the conventions give (almost) the same loss: nothing to tell apart
    if abs(got - (want_loss + 0.5 * reg * l2)) <= 1e-6 * max(1.0, abs(got)):
        raise GradingFailure(
            f"{what} matches reg * sum(W**2); the course's L2 term is 0.5 * reg * sum(W**2) "
            "(gradient reg * W, CONTRACT.md)")
    if abs(got - (want_loss - 0.5 * reg * l2)) <= 1e-6 * max(1.0, abs(got)):
        raise GradingFailure(f"{what} has no L2 term: add 0.5 * reg * sum(W**2) over the "
                             "weights (not the biases)")
