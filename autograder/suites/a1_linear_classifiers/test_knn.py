"""Hidden tests of the k-NN part of a1: the three distance functions and predict_labels.

Expected values come from course_lib (compute_distances, predict_labels) on inputs from fixed
seeds. The three distance functions are graded on the same cases (values only; how many loops
a function has is not checked).

Tolerance for distances (float64): the loop versions differ from the reference by rounding
only (~1e-15 relative). The no-loop formula ||a||^2 + ||b||^2 - 2 a.b loses digits by
cancellation: the squared distance is off by about eps * (||a||^2 + ||b||^2) ~ 1e-13 for these
inputs (norms^2 < 500), i.e. ~1e-13 on distances >= 0.5. So |got - expected| <= 1e-8 + 1e-7 *
|expected| accepts every correct formula, while a missing square root, a wrong axis or a
missing term is off by O(1). The case with a distance of exactly 0 uses integer-valued data,
for which every formula is exact in float64 (no tiny negative number under the square root).

predict_labels: distances are random floats (no two training points at the same distance from
a test point, so the order of the k nearest never depends on how ties in distance are broken);
the labels must be exactly right. The tie rule of the vote (CONTRACT.md: a tie goes to the
smallest label) is graded by one test of its own; the labels of the other tests are drawn so
that no vote among the k nearest is tied, so another tie rule costs that one test only.
Any integer dtype is accepted (float too, if whole numbers:
older starter code used np.zeros(num_test)).
"""

import numpy as np
import pytest

from autograder.checks import GradingFailure, describe_type, expect_array, expect_unchanged
from course_lib import compute_distances, predict_labels

RTOL, ATOL = 1e-7, 1e-8

DISTANCE_FUNCTIONS = ["compute_distances_two_loops", "compute_distances_one_loop",
                      "compute_distances_no_loops"]


def each_distance_function(points: int):
    """Parametrize a test over the three distance functions, each graded separately."""
    return pytest.mark.parametrize("name", [
        pytest.param(name, marks=[pytest.mark.function(name), pytest.mark.points(points)],
                     id=name.removeprefix("compute_distances_").replace("_", " "))
        for name in DISTANCE_FUNCTIONS])


def points_sets(seed: int, num_test: int, num_train: int, dim: int, scale: float = 2.0):
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal((num_test, dim)),
            scale * rng.standard_normal((num_train, dim)))


def _check_distances(student, name, X_test, X_train, atol=ATOL):
    dists = getattr(student, name)(X_test, X_train)
    expect_array(dists, compute_distances(X_test, X_train), "dists", rtol=RTOL, atol=atol)


# ----------------------------------------------------------------------------- distances

@each_distance_function(points=2)
def test_distances_match_reference(student, name):
    _check_distances(student, name, *points_sets(1101, 5, 7, 4))


@each_distance_function(points=1)
def test_distances_have_shape_num_test_by_num_train_with_more_test_points(student, name):
    # More test than training points: a transposed result has the wrong shape.
    _check_distances(student, name, *points_sets(1102, 9, 3, 12))


@each_distance_function(points=1)
def test_distances_handle_one_test_point_and_one_feature(student, name):
    _check_distances(student, name, *points_sets(1103, 1, 6, 1))


@each_distance_function(points=1)
def test_distances_are_zero_for_identical_points(student, name):
    # Integer-valued pixels (0..16, as in the digits): training points reappear as test points.
    rng = np.random.default_rng(1104)
    X_train = rng.integers(0, 17, size=(8, 16)).astype(np.float64)
    X_test = np.concatenate([X_train[[5, 0, 5]], rng.integers(0, 17, size=(2, 16))]).astype(
        np.float64)
    _check_distances(student, name, X_test, X_train)


@each_distance_function(points=1)
def test_distances_are_never_nan_for_duplicate_points_with_fractional_values(student, name):
    # Training points reappear as test points, with values like real pixels scaled to [0, 1].
    # Every training point reappears, in another order: ||a||^2 + ||b||^2 - 2 a.b comes out
    # negative at several of the 30 duplicates whichever way the squares are summed (np.sum, **2,
    # einsum, norm**2) and whatever BLAS kernel computes a.b, so an unclamped version gives NaN.
    rng = np.random.default_rng(1106)
    X_train = rng.random((30, 64)) * 3.7
    X_test = np.concatenate([X_train[rng.permutation(30)], rng.random((2, 64))])
    dists = getattr(student, name)(X_test, X_train)
    if type(dists) is np.ndarray and dists.dtype.kind == "f" and np.isnan(dists).any():
        raise GradingFailure(
            f"dists contains NaN ({int(np.isnan(dists).sum())} entries) where a test point "
            "equals a training point: rounding makes ||a||^2 + ||b||^2 - 2 a.b slightly "
            "negative there; clamp it at 0 before np.sqrt (np.maximum(sq, 0))")
    expect_array(dists, compute_distances(X_test, X_train), "dists", rtol=RTOL, atol=1e-6)


@each_distance_function(points=1)
def test_distances_do_not_modify_their_inputs(student, name):
    X_test, X_train = points_sets(1105, 4, 6, 3)
    getattr(student, name)(X_test, X_train)
    after = student.last_call.after
    expect_unchanged({"X_test": X_test, "X_train": X_train},
                     {"X_test": after.get(0), "X_train": after.get(1)}, name)


# ----------------------------------------------------------------------------- predict_labels

def expect_labels(value, expected: np.ndarray) -> None:
    """Predicted labels: an ndarray of shape (num_test,), integer (or whole-number float)."""
    if type(value) is not np.ndarray:
        raise GradingFailure(f"y_pred should be a plain numpy.ndarray; got {describe_type(value)}")
    if value.dtype.kind not in "iuf":
        raise GradingFailure(f"y_pred has dtype {value.dtype}; expected integer labels")
    expect_array(value, expected.astype(value.dtype), "y_pred", rtol=0.0, atol=0.0)


def knn_inputs(seed: int, num_test: int, num_train: int, num_classes: int, k: int):
    """Random distances and labels for which no vote among the k nearest is tied."""
    rng = np.random.default_rng(seed)
    dists = rng.uniform(0.1, 10.0, size=(num_test, num_train))
    nearest = np.argsort(dists, axis=1)[:, :k]
    for _ in range(10_000):
        y_train = rng.integers(0, num_classes, size=num_train)
        counts = np.array([np.bincount(row, minlength=num_classes) for row in y_train[nearest]])
        top_two = np.sort(counts, axis=1)[:, -2:] if num_classes > 1 else None
        if top_two is None or np.all(top_two[:, 1] > top_two[:, 0]):
            return dists, y_train
    raise RuntimeError(f"no tie-free labels for seed {seed}")


def _check_predict(student, dists, y_train, k):
    y_pred = student.predict_labels(dists, y_train, k=k)
    expect_labels(y_pred, predict_labels(dists, y_train, k=k))


@pytest.mark.points(2)
def test_predict_labels_with_k_1_takes_the_nearest_label(student):
    _check_predict(student, *knn_inputs(1201, 12, 20, 4, k=1), k=1)


@pytest.mark.points(2)
def test_predict_labels_takes_a_majority_vote_of_the_k_nearest(student):
    _check_predict(student, *knn_inputs(1202, 15, 30, 3, k=5), k=5)


@pytest.mark.points(2)
def test_predict_labels_breaks_vote_ties_towards_the_smallest_label(student):
    # Every row's 4 nearest points hold two labels twice each; the smaller label must win,
    # wherever the two labels sit among the 4 nearest.
    y_train = np.array([3, 1, 3, 1, 0, 2, 2, 0, 2, 4, 4, 1])
    dists = np.array([
        [0.1, 0.2, 0.3, 0.4, 5.0, 6.0, 7.0, 8.0, 9.0, 9.5, 9.6, 9.7],   # 3, 1, 3, 1 -> 1
        [9.0, 0.4, 9.1, 0.3, 9.2, 0.2, 0.1, 9.3, 9.4, 9.5, 9.6, 9.7],   # 2, 2, 1, 1 -> 1
        [9.0, 9.1, 9.2, 9.3, 0.4, 9.4, 9.5, 0.3, 9.6, 0.1, 0.2, 9.7],   # 4, 4, 0, 0 -> 0
        [9.0, 9.1, 9.2, 9.3, 9.4, 0.1, 9.5, 9.6, 0.2, 0.3, 0.4, 9.7],   # 2, 2, 4, 4 -> 2
    ])
    _check_predict(student, dists, y_train, k=4)


@pytest.mark.points(1)
def test_predict_labels_with_k_equal_to_num_train_votes_over_all_points(student):
    _check_predict(student, *knn_inputs(1204, 6, 9, 3, k=9), k=9)


@pytest.mark.points(1)
def test_predict_labels_returns_label_values_when_some_labels_never_occur(student):
    # Labels 2, 5 and 7 only: the prediction is a label, not a position among present labels.
    dists, index = knn_inputs(1205, 10, 14, 3, k=3)
    _check_predict(student, dists, np.array([2, 5, 7])[index], k=3)


@pytest.mark.points(1)
def test_predict_labels_does_not_modify_its_inputs(student):
    dists, y_train = knn_inputs(1206, 5, 8, 3, k=3)
    student.predict_labels(dists, y_train, k=3)
    after = student.last_call.after
    expect_unchanged({"dists": dists, "y_train": y_train},
                     {"dists": after.get(0), "y_train": after.get(1)}, "predict_labels")
