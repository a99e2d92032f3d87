"""Hidden tests of softmax_loss and svm_loss (a2_fully_connected).

Expected values come from course_lib (the oracle); inputs come from fixed seeds. Both losses
are averaged over the batch and return (loss, dx). Tolerance (float64): a correct
implementation differs from the reference by rounding only (about 1e-15 relative; for large
scores a max-shifted softmax is exact to ~1e-13), so |got - expected| <= 1e-9 + 1e-6 *
|expected|.

Stability (CONTRACT.md): the softmax must not overflow when all scores are large. The test
shifts every score by +1000 with a spread of a few units, so exp(x) without the max shift
overflows (inf / nan) while the max shift the lectures teach is exact; it does not demand
log-sum-exp (a max-shifted softmax whose correct class lies ~745 below the maximum underflows
to log(0); the contract does not ask for that range).

Scores are random floats, so no hinge margin is exactly zero and the SVM's subgradient
convention at a tie never matters. A "does not modify" test also checks the
result, so returning garbage never earns that point.
"""

import numpy as np
import pytest

from autograder.checks import expect_array, expect_tuple, expect_unchanged
from autograder.suites.a2_fully_connected.conventions import expect_loss
from course_lib import softmax_loss, svm_loss

RTOL, ATOL = 1e-6, 1e-9


def scores(seed: int, n: int, c: int, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal((n, c)), rng.integers(0, c, size=n)


def _check_result(name, result, expected):
    loss, dx = expect_tuple(result, 2, name)
    expect_loss(loss, expected[0], "loss", rtol=RTOL, atol=ATOL)
    expect_array(dx, expected[1], "dx", rtol=RTOL, atol=ATOL)


def _check_loss(student, name, reference, x, y):
    _check_result(name, getattr(student, name)(x, y), reference(x, y))


# ----------------------------------------------------------------------------- softmax_loss

@pytest.mark.points(2)
def test_softmax_loss_matches_reference(student):
    _check_loss(student, "softmax_loss", softmax_loss, *scores(3101, 8, 5))


@pytest.mark.points(1)
def test_softmax_loss_is_stable_for_large_scores(student):
    # Every score near 1000 (spread a few units): exp(1000) overflows without the max shift.
    x, y = scores(3102, 6, 4, scale=3.0)
    x = x + 1000.0
    loss, dx = expect_tuple(student.softmax_loss(x, y), 2, "softmax_loss")
    hint = ("for scores near 1000; subtract each row's maximum before np.exp "
            "(02_losses_optimisation: the softmax does not change, nothing overflows)")
    expect_loss(loss, softmax_loss(x, y)[0], "loss", rtol=RTOL, atol=ATOL, not_finite=hint)
    expect_array(dx, softmax_loss(x, y)[1], "dx", rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_softmax_loss_handles_a_single_sample(student):
    _check_loss(student, "softmax_loss", softmax_loss, *scores(3103, 1, 7))


@pytest.mark.points(1)
def test_softmax_loss_does_not_modify_its_scores(student):
    x, y = scores(3104, 5, 3)
    result = student.softmax_loss(x, y)
    expect_unchanged({"x": x, "y": y}, {"x": student.last_call.after.get(0),
                                        "y": student.last_call.after.get(1)}, "softmax_loss")
    _check_result("softmax_loss", result, softmax_loss(x, y))


# ----------------------------------------------------------------------------- svm_loss

@pytest.mark.points(2)
def test_svm_loss_matches_reference(student):
    _check_loss(student, "svm_loss", svm_loss, *scores(3201, 9, 6))


@pytest.mark.points(1)
def test_svm_loss_is_averaged_over_the_batch(student):
    _check_loss(student, "svm_loss", svm_loss, *scores(3202, 30, 3, scale=2.0))


@pytest.mark.points(1)
def test_svm_loss_does_not_modify_its_scores(student):
    x, y = scores(3203, 5, 4)
    result = student.svm_loss(x, y)
    expect_unchanged({"x": x, "y": y}, {"x": student.last_call.after.get(0),
                                        "y": student.last_call.after.get(1)}, "svm_loss")
    _check_result("svm_loss", result, svm_loss(x, y))
