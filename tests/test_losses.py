"""Tests for course_lib.losses: softmax_loss, svm_loss and softmax.

Checked against CS231n's published values (T8 of REFERENCE_VALUES.md), against the loop
implementations in tests/naive_dense.py, against numerical gradients, and against hand-computed
values that pin the conventions (mean over the batch, SVM margin 1, stability).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from naive_dense import softmax_loss_naive_scores, svm_loss_naive_scores

from course_lib.gradient_check import eval_numerical_gradient, rel_error
from course_lib.losses import softmax, softmax_loss, svm_loss

LOSSES = {"softmax": (softmax_loss, softmax_loss_naive_scores),
          "svm": (svm_loss, svm_loss_naive_scores)}


def scores_and_labels(rng, N=6, C=5, scale=1.0):
    return scale * rng.standard_normal((N, C)), rng.integers(0, C, size=N)


# --------------------------------------------------------------------------- CS231n T8
@pytest.fixture
def cs231n_t8():
    np.random.seed(231)
    num_classes, num_inputs = 10, 50
    x = 0.001 * np.random.randn(num_inputs, num_classes)
    y = np.random.randint(num_classes, size=num_inputs)
    return x, y


def test_svm_loss_matches_cs231n_reference_T8(cs231n_t8):
    x, y = cs231n_t8
    loss, dx = svm_loss(x, y)
    dx_num = eval_numerical_gradient(lambda x: svm_loss(x, y)[0], x, verbose=False)
    # Published loss 8.9996027491 (10 decimals): |difference| <= 5e-11 plus rounding.
    assert abs(loss - 8.9996027491) < 1e-10
    assert rel_error(dx, dx_num) < 1e-8  # CS231n: "dx ~e-9" (measured 1.4e-9)


def test_softmax_loss_matches_cs231n_reference_T8(cs231n_t8):
    x, y = cs231n_t8
    loss, dx = softmax_loss(x, y)
    dx_num = eval_numerical_gradient(lambda x: softmax_loss(x, y)[0], x, verbose=False)
    assert abs(loss - 2.3025458445) < 1e-10  # published to 10 decimals
    assert rel_error(dx, dx_num) < 1e-7  # CS231n: "dx ~e-8" (measured 9.4e-9)


# --------------------------------------------------------------------------- reference loops
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_loop_reference(rng, name):
    fast, naive = LOSSES[name]
    x, y = scores_and_labels(rng, N=8, C=6, scale=3.0)
    loss, dx = fast(x, y)
    ref_loss, ref_dx = naive(x, y)
    # float64 sums of a handful of O(1) terms in different orders: ~1e-15 apart.
    assert loss == pytest.approx(ref_loss, rel=1e-13)
    np.testing.assert_allclose(dx, ref_dx, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_gradient_matches_numerical_gradient(rng, name):
    fast, _ = LOSSES[name]
    x, y = scores_and_labels(rng, N=5, C=4, scale=2.0)
    dx_num = eval_numerical_gradient(lambda x: fast(x, y)[0], x, verbose=False)
    # svm: piecewise linear, and no margin of these random scores is within h of its kink,
    # so differences are exact to rounding; softmax: smooth, O(h^2) ~ 1e-10 absolute error,
    # which is ~2e-7 relative on its smallest entries (~2.5e-4); a wrong formula is off by >1e-2.
    dx = fast(x, y)[1]
    np.testing.assert_allclose(dx, dx_num, rtol=0, atol=1e-9)
    assert rel_error(dx, dx_num) < 1e-6


# --------------------------------------------------------------------------- conventions
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_is_the_mean_over_the_batch(rng, name):
    fast, _ = LOSSES[name]
    x, y = scores_and_labels(rng, N=4, C=3)
    per_sample = [fast(x[i:i + 1], y[i:i + 1])[0] for i in range(4)]
    loss, dx = fast(x, y)
    assert loss == pytest.approx(np.mean(per_sample), rel=1e-14)
    # Stacking the batch twice leaves a mean unchanged and halves each row's gradient.
    loss2, dx2 = fast(np.vstack([x, x]), np.concatenate([y, y]))
    assert loss2 == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(dx2[:4], dx / 2, rtol=1e-14)


def test_svm_margin_is_one():
    y = np.array([0, 0, 0])
    x = np.array([[0.0, 0.0, 0.0],      # each wrong class is within the margin: 1 + 1
                  [1.0, 0.0, 0.0],      # exactly at the margin: 0
                  [1.0, 0.25, -5.0]])   # 0.25 - 1 + 1 = 0.25
    loss, dx = svm_loss(x, y)
    assert loss == pytest.approx((2.0 + 0.0 + 0.25) / 3, rel=1e-15)
    np.testing.assert_allclose(dx, np.array([[-2, 1, 1], [0, 0, 0], [-1, 1, 0]]) / 3,
                               rtol=1e-15)


def test_svm_loss_of_equal_scores_is_number_of_classes_minus_one():
    loss, _ = svm_loss(np.zeros((4, 10)), np.arange(4))
    assert loss == 9.0


def test_softmax_loss_of_equal_scores_is_log_of_number_of_classes():
    loss, dx = softmax_loss(np.zeros((3, 10)), np.array([0, 4, 9]))
    assert loss == pytest.approx(np.log(10), rel=1e-15)
    assert dx[0, 0] == pytest.approx((0.1 - 1) / 3, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_loss_is_stable_for_scores_of_1e4(dtype):
    x = np.array([[1e4, 0.0, -1e4],      # confidently right
                  [0.0, 1e4, -1e4],      # confidently wrong by 1e4
                  [1e4, 1e4, 1e4]], dtype=dtype)
    y = np.array([0, 0, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow or log(0) RuntimeWarnings fail the test
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            loss, dx = softmax_loss(x, y)
            p = softmax(x)
    assert np.isfinite(loss) and np.all(np.isfinite(dx)) and np.all(np.isfinite(p))
    # per-sample losses 0, 1e4 and log 3 (exact up to rounding)
    assert loss == pytest.approx((0 + 1e4 + np.log(3)) / 3, rel=1e-12)
    assert dx.dtype == p.dtype == dtype
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)


def test_softmax_probabilities_sum_to_one_and_ignore_a_shift(rng):
    x = rng.standard_normal((4, 7))
    p = softmax(x)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-15)
    np.testing.assert_allclose(softmax(x + 1000), p, rtol=1e-12)
    np.testing.assert_allclose(softmax(x[0]), p[0], rtol=1e-15)  # 1-D: one row of scores
    assert np.all(p > 0)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_loss_gradient_follows_score_dtype_and_loss_is_a_float(rng, name, dtype):
    fast, naive = LOSSES[name]
    x, y = scores_and_labels(rng)
    loss, dx = fast(x.astype(dtype), y)
    assert isinstance(loss, float)
    assert dx.dtype == dtype and dx.shape == x.shape
    # float32 scores: the inputs are rounded to float32 (relative 6e-8) before the float64 math.
    ref_loss, _ = naive(x.astype(dtype), y)
    assert loss == pytest.approx(ref_loss, rel=1e-12)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_does_not_modify_its_inputs(rng, name):
    fast, _ = LOSSES[name]
    x, y = scores_and_labels(rng)
    x_copy, y_copy = x.copy(), y.copy()
    fast(x, y)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(y, y_copy)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_rejects_bad_labels_and_scores(rng, name):
    fast, _ = LOSSES[name]
    x, y = scores_and_labels(rng, N=4, C=3)
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 3\)"):
        fast(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 3\)"):
        fast(x, np.array([0, -1, 2, 1]))
    with pytest.raises(ValueError, match="y must have length 4"):
        fast(x, y[:3])
    with pytest.raises(TypeError, match="y must be a 1-D NumPy array of integer labels"):
        fast(x, y.astype(np.float64))
    with pytest.raises(ValueError, match="y must be 1-D"):
        fast(x, y[:, None])
    with pytest.raises(ValueError, match=r"x must be 2-D \(N, C\)"):
        fast(x[0], y[:1])
    with pytest.raises(TypeError, match="x must be a NumPy ndarray"):
        fast(x.tolist(), y)
    with pytest.raises(ValueError, match="at least one sample"):
        fast(np.zeros((0, 3)), np.zeros(0, dtype=int))
