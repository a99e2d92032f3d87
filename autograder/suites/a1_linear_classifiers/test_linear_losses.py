"""Hidden tests of the linear classifiers' losses: svm_loss_naive/vectorized and
softmax_loss_naive/vectorized, each (W (D, C), X (N, D), y (N,), reg) -> (loss, dW).

Expected values come from course_lib (svm_loss_vectorized, softmax_loss_vectorized) on inputs
from fixed seeds. The loop and vectorised versions are graded on the same cases (values only).
Conventions pinned (CONTRACT.md): the data loss is averaged over N; the regulariser is
0.5 * reg * sum(W**2) with gradient reg * W; the SVM margin is 1.

Tolerance (float64): a correct loss and gradient differ from the reference by summation order
only (about 1e-15 relative; the max-shifted softmax is exact to ~1e-13 even with scores near
1000), so |got - expected| <= 1e-9 + 1e-6 * |expected|. The inputs are random floats, so no
hinge margin is ever exactly 0 and the SVM's subgradient convention at a kink never matters.
A loss that matches reg * sum(W**2) (no 0.5, another course year's convention) or that comes
back as a float128 gets a message naming that; the stability test shifts every score to about
1000 (exp overflows without the max shift) and does not demand log-sum-exp.
"""

import numpy as np
import pytest

from autograder.checks import expect_array, expect_tuple, expect_unchanged
from autograder.suites.a1_linear_classifiers.conventions import expect_loss, explain_l2
from course_lib import softmax_loss_vectorized, svm_loss_vectorized

RTOL, ATOL = 1e-6, 1e-9

REFERENCE = {"svm": svm_loss_vectorized, "softmax": softmax_loss_vectorized}
FUNCTIONS = {"svm": ["svm_loss_naive", "svm_loss_vectorized"],
             "softmax": ["softmax_loss_naive", "softmax_loss_vectorized"]}


def each_loss_function(points: int, losses=("svm", "softmax")):
    """Parametrize a test over the loss functions (naive and vectorised), graded separately."""
    return pytest.mark.parametrize("loss, name", [
        pytest.param(loss, name, marks=[pytest.mark.function(name), pytest.mark.points(points)],
                     id=name.replace("_", " "))
        for loss in losses for name in FUNCTIONS[loss]])


def linear_inputs(seed: int, N: int, D: int, C: int, w_scale: float = 0.5):
    rng = np.random.default_rng(seed)
    W = w_scale * rng.standard_normal((D, C))
    X = rng.standard_normal((N, D))
    y = rng.integers(0, C, size=N)
    return W, X, y


def _check_loss(student, loss, name, W, X, y, reg, not_finite=None):
    got_loss, got_dW = expect_tuple(getattr(student, name)(W, X, y, reg), 2, name)
    want_loss, want_dW = REFERENCE[loss](W, X, y, reg)
    explain_l2(got_loss, want_loss, float(np.sum(W * W)), reg, "loss")
    expect_loss(got_loss, want_loss, "loss", rtol=RTOL, atol=ATOL, not_finite=not_finite)
    expect_array(got_dW, want_dW, "dW (the gradient of the loss with respect to W)",
                 rtol=RTOL, atol=ATOL)


@each_loss_function(points=2)
def test_loss_and_gradient_match_reference_without_regularization(student, loss, name):
    _check_loss(student, loss, name, *linear_inputs(2101, 6, 5, 4), reg=0.0)


@each_loss_function(points=2)
def test_regularization_adds_half_reg_sum_of_squares_and_reg_w_to_the_gradient(
        student, loss, name):
    _check_loss(student, loss, name, *linear_inputs(2102, 7, 4, 3), reg=0.8)


@each_loss_function(points=1)
def test_loss_is_averaged_over_a_larger_batch(student, loss, name):
    _check_loss(student, loss, name, *linear_inputs(2103, 40, 8, 7, w_scale=0.3), reg=0.05)


@each_loss_function(points=1)
def test_loss_handles_a_single_sample_and_two_classes(student, loss, name):
    _check_loss(student, loss, name, *linear_inputs(2104, 1, 3, 2), reg=0.1)


@each_loss_function(points=1)
def test_loss_at_zero_weights_is_the_initial_sanity_value(student, loss, name):
    # W = 0: every score is 0, so the SVM loss is C - 1 and the softmax loss is ln C.
    _, X, y = linear_inputs(2105, 12, 6, 10)
    _check_loss(student, loss, name, np.zeros((6, 10)), X, y, reg=0.3)


@each_loss_function(points=1, losses=("softmax",))
def test_softmax_is_stable_when_all_scores_are_large(student, loss, name):
    # A bias feature (last column of ones) with weights near 1000 puts every score near 1000:
    # exp(1000) overflows unless the maximum score is subtracted first.
    W, X, y = linear_inputs(2106, 8, 5, 6)
    X[:, -1] = 1.0
    W[-1, :] += 1000.0
    _check_loss(student, loss, name, W, X, y, reg=0.0,
                not_finite="for scores near 1000; subtract each row's maximum score before "
                           "np.exp (the probabilities do not change, nothing overflows)")


@each_loss_function(points=1)
def test_loss_does_not_modify_its_inputs(student, loss, name):
    W, X, y = linear_inputs(2107, 5, 4, 3)
    getattr(student, name)(W, X, y, 0.5)
    after = student.last_call.after
    expect_unchanged({"W": W, "X": X, "y": y},
                     {"W": after.get(0), "X": after.get(1), "y": after.get(2)}, name)
