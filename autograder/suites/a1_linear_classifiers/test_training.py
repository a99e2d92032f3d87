"""Hidden tests of the training task: train_linear_classifier(data) -> W.

The student's function gets the MNIST digits exactly as the notebook prepares them
(load_mnist, 500 validation and 500 test images, seed 0; the training mean subtracted; a last
column of ones, the bias trick) as a dict with X_train (4000, 785), y_train, X_val (500, 785),
y_val, and returns W (785, 10). Here, in the trusted parent, the scores X_test @ W of the 500
held-out test digits (which the function never sees) give the accuracy: >= 0.85 earns the
task's main points; chance is 0.10.

Measured on this split, single-threaded as in the sandbox: the notebook's solution (softmax,
minibatch SGD, 1000 steps of 200) reaches 0.904 test (0.914 validation) in under 1 s in the
sandbox (the whole submission grades in 2.5 s); seven other settings of softmax and SVM reach
0.888-0.906 test, so a linear classifier tops out near 0.91 (chance is 0.10). The bar, 0.85,
is 5 points (about four standard errors of a 500-image test set) below the reference: every
reasonably tuned linear classifier clears it, one whose weights barely move does not.

The student's function is called once per submission; its result is shared by the tests
below (cached per graded submission, never across submissions).
"""

import weakref

import numpy as np
import pytest

from autograder.checks import GradingFailure, describe_type
from autograder.suites.a1_linear_classifiers.data import linear_classifier_data

NUM_CLASSES = 10
TARGET_ACCURACY = 0.85
LEARNS_SOMETHING = 0.50


_RESULTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def trained_weights(student) -> tuple[np.ndarray, dict]:
    """(W, data) from one call of the student's function; a failure is re-raised each time."""
    if student not in _RESULTS:
        data = linear_classifier_data()
        given = {k: data[k].copy() for k in ("X_train", "y_train", "X_val", "y_val")}
        try:
            _RESULTS[student] = ("ok", student.train_linear_classifier(given), data)
        except GradingFailure as failure:
            _RESULTS[student] = ("failed", failure, data)
    status, value, data = _RESULTS[student]
    if status == "failed":
        raise GradingFailure(str(value))
    return value, data


def checked_weights(student) -> tuple[np.ndarray, dict]:
    W, data = trained_weights(student)
    want = (data["X_train"].shape[1], NUM_CLASSES)
    if type(W) is not np.ndarray:
        raise GradingFailure(f"train_linear_classifier should return W as a plain "
                             f"numpy.ndarray of shape {want}; got {describe_type(W)}")
    if W.dtype.kind != "f":
        raise GradingFailure(f"W has dtype {W.dtype}; expected floating-point weights")
    if W.shape != want:
        raise GradingFailure(f"W has shape {W.shape}; expected {want} (D = 784 pixels + 1 bias "
                             "feature, one column per class)")
    if not np.isfinite(W).all():
        raise GradingFailure("W contains NaN or infinite values (learning rate too large?)")
    return W, data


def held_out_accuracy(student) -> float:
    W, data = checked_weights(student)
    predictions = np.argmax(data["X_test"] @ W.astype(np.float64), axis=1)
    return float(np.mean(predictions == data["y_test"]))


@pytest.mark.points(1)
def test_train_linear_classifier_returns_finite_weights_of_shape_785_by_10(student):
    checked_weights(student)


@pytest.mark.points(1)
def test_train_linear_classifier_learns_far_better_than_chance(student):
    accuracy = held_out_accuracy(student)
    if accuracy < LEARNS_SOMETHING:
        raise GradingFailure(f"held-out accuracy {accuracy:.3f} is below {LEARNS_SOMETHING} "
                             f"(chance is 0.10): the weights did not learn much")


@pytest.mark.points(3)
def test_train_linear_classifier_reaches_85_percent_on_held_out_digits(student):
    accuracy = held_out_accuracy(student)
    if accuracy < TARGET_ACCURACY:
        raise GradingFailure(f"held-out accuracy {accuracy:.3f} is below the target "
                             f"{TARGET_ACCURACY:.2f}; tune the learning rate, the number of "
                             "iterations or the regularisation on the validation set")
