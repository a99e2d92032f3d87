"""Tests for course_lib.classifiers: k-NN distances and votes, linear-classifier losses and the
LinearClassifier.

Checked against the loop implementations in tests/naive_dense.py (two-loop distances, Counter
votes, CS231n's naive SVM/softmax losses), numerical gradients, and hand-built cases that pin
the conventions (ties to the smallest label, 0.5 * reg * sum(W**2), no negative distances).
"""

from __future__ import annotations

import numpy as np
import pytest
from naive_dense import (
    compute_distances_two_loops,
    predict_labels_naive,
    softmax_loss_naive,
    svm_loss_naive,
)

from course_lib.classifiers import (
    LinearClassifier,
    compute_distances,
    predict_labels,
    softmax_loss_vectorized,
    svm_loss_vectorized,
)
from course_lib.gradient_check import eval_numerical_gradient, rel_error

LINEAR_LOSSES = {"svm": (svm_loss_vectorized, svm_loss_naive),
                 "softmax": (softmax_loss_vectorized, softmax_loss_naive)}


def linear_problem(rng, N=7, D=5, C=4):
    return (0.1 * rng.standard_normal((D, C)), rng.standard_normal((N, D)),
            rng.integers(0, C, size=N))


# --------------------------------------------------------------------------- distances
def test_compute_distances_matches_two_loop_version(rng):
    X_train = rng.standard_normal((9, 6))
    X_test = rng.standard_normal((5, 6))
    dists = compute_distances(X_test, X_train)
    assert dists.shape == (5, 9) and dists.dtype == np.float64
    # |a|^2 + |b|^2 - 2ab loses ~1e-15 * |a|^2 to cancellation: 1e-12 absolute is ample.
    np.testing.assert_allclose(dists, compute_distances_two_loops(X_test, X_train),
                               rtol=0, atol=1e-12)


def test_compute_distances_are_never_negative_or_nan_for_duplicate_rows(rng):
    # A large common offset makes |a|^2 + |b|^2 - 2ab cancel badly without care; duplicates have
    # a true distance of exactly 0, so any rounding below 0 would give sqrt(negative) = nan.
    X_train = 1e4 + rng.standard_normal((20, 30))
    X_test = np.vstack([X_train[:10], X_train[:10] + 1e-3])
    with np.errstate(invalid="raise"):
        dists = compute_distances(X_test, X_train)
    assert np.all(dists >= 0)
    # Self-distances: at most ~sqrt(1e-16 * |a - mean|^2) ~ 1e-7; true distances here are >= 5.
    assert np.all(np.diag(dists[:10]) < 1e-6)
    np.testing.assert_allclose(dists[10:, :10], compute_distances_two_loops(X_test[10:],
                                                                             X_train[:10]),
                               rtol=0, atol=1e-8)
    assert np.all(np.argmin(dists[:10], axis=1) == np.arange(10))


def test_compute_distances_float32_inputs_give_float32(rng):
    X_train = rng.standard_normal((8, 4)).astype(np.float32)
    X_test = rng.standard_normal((3, 4)).astype(np.float32)
    dists = compute_distances(X_test, X_train)
    assert dists.dtype == np.float32
    # computed in float64, rounded once to float32 (relative 6e-8 on distances ~3)
    np.testing.assert_allclose(dists, compute_distances_two_loops(X_test, X_train), rtol=1e-6)
    assert compute_distances(X_test, X_train.astype(np.float64)).dtype == np.float64


def test_compute_distances_do_not_modify_inputs(rng):
    X_train, X_test = rng.standard_normal((6, 3)), rng.standard_normal((2, 3))
    copies = X_train.copy(), X_test.copy()
    compute_distances(X_test, X_train)
    np.testing.assert_array_equal(X_train, copies[0])
    np.testing.assert_array_equal(X_test, copies[1])


def test_compute_distances_rejects_mismatched_feature_counts(rng):
    with pytest.raises(ValueError, match=r"X_test must have shape \(num_test, D\) with D=4"):
        compute_distances(rng.standard_normal((3, 5)), rng.standard_normal((6, 4)))
    with pytest.raises(ValueError, match="X_train must be 2-D"):
        compute_distances(rng.standard_normal((3, 4)), rng.standard_normal(4))
    with pytest.raises(TypeError, match="X_test must have dtype float32 or float64"):
        compute_distances(np.ones((3, 4), dtype=np.uint8), rng.standard_normal((6, 4)))


# --------------------------------------------------------------------------- votes
def test_predict_labels_k1_takes_the_nearest_label():
    dists = np.array([[3.0, 1.0, 2.0], [0.5, 4.0, 0.6]])
    y_train = np.array([7, 2, 5])
    np.testing.assert_array_equal(predict_labels(dists, y_train, k=1), [2, 7])


def test_predict_labels_majority_vote_of_k_nearest():
    dists = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    y_train = np.array([4, 1, 1, 4, 4])
    assert predict_labels(dists, y_train, k=3)[0] == 1   # votes 4, 1, 1
    assert predict_labels(dists, y_train, k=5)[0] == 4   # 4 wins 3 to 2


def test_predict_labels_breaks_vote_ties_towards_the_smallest_label():
    dists = np.array([[0.1, 0.2, 0.3, 0.4],
                      [0.4, 0.3, 0.2, 0.1]])
    y_train = np.array([3, 1, 5, 2])
    # k=2: row 0 votes {3 (nearest), 1} -> 1, the smallest label, not the nearest one;
    # row 1 votes {2 (nearest), 5} -> 2
    np.testing.assert_array_equal(predict_labels(dists, y_train, k=2), [1, 2])
    # k=4: four labels, one vote each -> 1 for both rows
    np.testing.assert_array_equal(predict_labels(dists, y_train, k=4), [1, 1])
    # the tie is broken by label, not by nearness: the nearest (label 9) loses to label 0
    assert predict_labels(np.array([[0.0, 1.0]]), np.array([9, 0]), k=2)[0] == 0


def test_predict_labels_matches_loop_reference(rng):
    dists = rng.integers(0, 6, size=(30, 12)).astype(np.float64)  # many equal distances
    y_train = rng.integers(0, 4, size=12)
    for k in (1, 2, 3, 5, 12):
        np.testing.assert_array_equal(predict_labels(dists, y_train, k=k),
                                      predict_labels_naive(dists, y_train, k=k))


def test_predict_labels_returns_labels_in_y_train_dtype_and_keeps_inputs():
    dists = np.array([[1.0, 0.0]])
    y_train = np.array([3, 6], dtype=np.int32)
    copies = dists.copy(), y_train.copy()
    pred = predict_labels(dists, y_train)
    assert pred.dtype == np.int32 and pred.shape == (1,)
    np.testing.assert_array_equal(dists, copies[0])
    np.testing.assert_array_equal(y_train, copies[1])


def test_predict_labels_rejects_bad_arguments(rng):
    dists = rng.random((3, 4))
    y_train = np.array([0, 1, 1, 2])
    with pytest.raises(ValueError, match="k must be at most num_train=4"):
        predict_labels(dists, y_train, k=5)
    with pytest.raises(ValueError, match="k must be a positive int"):
        predict_labels(dists, y_train, k=0)
    with pytest.raises(TypeError, match="k must be a positive int"):
        predict_labels(dists, y_train, k=1.0)
    with pytest.raises(ValueError, match="y_train must have length num_train=4"):
        predict_labels(dists, y_train[:3])
    with pytest.raises(TypeError, match="y_train must be a 1-D NumPy array of integer labels"):
        predict_labels(dists, y_train.astype(np.float64))
    with pytest.raises(ValueError, match="y_train must hold non-negative labels"):
        predict_labels(dists, np.array([0, -1, 1, 2]))
    with pytest.raises(ValueError, match="dists must be 2-D"):
        predict_labels(dists[0], y_train)


# --------------------------------------------------------------------------- linear losses
@pytest.mark.parametrize("name", sorted(LINEAR_LOSSES))
@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_linear_loss_matches_naive_loops(rng, name, reg):
    fast, naive = LINEAR_LOSSES[name]
    W, X, y = linear_problem(rng)
    loss, dW = fast(W, X, y, reg)
    ref_loss, ref_dW = naive(W, X, y, reg)
    assert loss == pytest.approx(ref_loss, rel=1e-13)  # float64, different summation order
    np.testing.assert_allclose(dW, ref_dW, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", sorted(LINEAR_LOSSES))
def test_linear_loss_gradient_matches_numerical_gradient_with_regularisation(rng, name):
    fast, _ = LINEAR_LOSSES[name]
    W, X, y = linear_problem(rng)
    reg = 0.3
    _, dW = fast(W, X, y, reg)
    dW_num = eval_numerical_gradient(lambda W: fast(W, X, y, reg)[0], W, verbose=False)
    # Smooth (softmax) or piecewise linear away from the kinks (svm): O(h^2) or exact; the
    # absolute bound covers the relative error of entries that nearly cancel.
    np.testing.assert_allclose(dW, dW_num, rtol=0, atol=1e-8)
    assert rel_error(dW, dW_num) < 1e-6


@pytest.mark.parametrize("name", sorted(LINEAR_LOSSES))
def test_regularisation_is_half_reg_sum_of_squares_with_gradient_reg_W(rng, name):
    fast, _ = LINEAR_LOSSES[name]
    W, X, y = linear_problem(rng)
    loss0, dW0 = fast(W, X, y, 0.0)
    loss1, dW1 = fast(W, X, y, 2.5)
    assert loss1 - loss0 == pytest.approx(0.5 * 2.5 * np.sum(W ** 2), rel=1e-12)
    np.testing.assert_allclose(dW1 - dW0, 2.5 * W, rtol=1e-12, atol=1e-15)


def test_linear_svm_loss_of_zero_weights_is_number_of_classes_minus_one(rng):
    _, X, y = linear_problem(rng, C=6)
    loss, _ = svm_loss_vectorized(np.zeros((5, 6)), X, y, 1.0)
    assert loss == 5.0
    loss, _ = softmax_loss_vectorized(np.zeros((5, 6)), X, y, 1.0)
    assert loss == pytest.approx(np.log(6), rel=1e-15)


@pytest.mark.parametrize("name", sorted(LINEAR_LOSSES))
def test_linear_loss_dtype_follows_X_and_inputs_are_not_modified(rng, name):
    fast, _ = LINEAR_LOSSES[name]
    W, X, y = linear_problem(rng)
    copies = W.copy(), X.copy(), y.copy()
    _, dW = fast(W, X.astype(np.float32), y, 0.1)
    assert dW.dtype == np.float32
    for original, copy in zip((W, X, y), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


@pytest.mark.parametrize("name", sorted(LINEAR_LOSSES))
def test_linear_loss_rejects_bad_arguments(rng, name):
    fast, _ = LINEAR_LOSSES[name]
    W, X, y = linear_problem(rng, N=7, D=5, C=4)
    with pytest.raises(ValueError, match=r"X must have shape \(N, D\) with D=5"):
        fast(W, X[:, :4], y, 0.1)
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 4\)"):
        fast(W, X, np.full(7, 4), 0.1)
    with pytest.raises(ValueError, match="y must have length 7"):
        fast(W, X, y[:6], 0.1)
    with pytest.raises(TypeError, match="integer labels"):
        fast(W, X, y.astype(float), 0.1)
    with pytest.raises(ValueError, match="reg must be a non-negative finite number"):
        fast(W, X, y, -0.1)
    with pytest.raises(TypeError, match="reg must be a non-negative number"):
        fast(W, X, y, None)
    with pytest.raises(ValueError, match="W must be 2-D"):
        fast(W[:, 0], X, y, 0.1)


# --------------------------------------------------------------------------- LinearClassifier
def blobs(rng, n_per_class=40, centres=((-2, 0), (2, 0.5), (0, -2.5)), spread=0.5):
    X = np.concatenate([np.array(c) + spread * rng.standard_normal((n_per_class, 2))
                        for c in centres])
    return X, np.repeat(np.arange(len(centres)), n_per_class)


@pytest.mark.parametrize("loss", ["softmax", "svm"])
def test_linear_classifier_learns_separable_blobs(rng, loss):
    X, y = blobs(rng)
    clf = LinearClassifier(loss=loss)
    history = clf.train(X, y, learning_rate=0.5, reg=1e-4, num_iters=300, batch_size=60, seed=0)
    assert len(history) == 300
    assert np.mean(history[-20:]) < np.mean(history[:20]) / 3
    pred = clf.predict(X)
    assert pred.shape == (len(X),)
    assert np.mean(pred == y) > 0.95  # the blobs are ~4 spreads apart: linearly separable
    assert clf.W.shape == (2, 3) and clf.b.shape == (3,)


def test_linear_classifier_is_repeatable_with_a_seed(rng):
    X, y = blobs(rng)
    runs = []
    for _ in range(2):
        clf = LinearClassifier()
        runs.append(clf.train(X, y, learning_rate=0.1, num_iters=20, batch_size=10, seed=3))
    assert runs[0] == runs[1]


def test_linear_classifier_uses_the_contract_losses(rng):
    X, y = blobs(rng, n_per_class=5)
    clf = LinearClassifier(loss="svm")
    clf.train(X, y, num_iters=1, seed=0)
    clf.b[:] = 0  # without a bias, the classifier's loss is svm_loss_vectorized exactly
    loss, dW, _ = clf.loss(X, y, reg=0.2)
    ref_loss, ref_dW = svm_loss_vectorized(clf.W, X, y, 0.2)
    assert loss == pytest.approx(ref_loss, rel=1e-14)
    np.testing.assert_allclose(dW, ref_dW, rtol=1e-14)


def test_linear_classifier_rejects_bad_arguments(rng):
    X, y = blobs(rng, n_per_class=5)
    with pytest.raises(ValueError, match="loss must be one of"):
        LinearClassifier(loss="hinge")
    clf = LinearClassifier()
    with pytest.raises(RuntimeError, match="call train"):
        clf.predict(X)
    with pytest.raises(ValueError, match="learning_rate must be a positive finite number"):
        clf.train(X, y, learning_rate=-1.0)
    with pytest.raises(ValueError, match="y must have length"):
        clf.train(X, y[:-1])
    clf.train(X, y, num_iters=2)
    with pytest.raises(ValueError, match=r"X must have shape \(N, D\) with D=2"):
        clf.predict(np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 3\)"):
        clf.train(X, np.full(len(X), 3))
