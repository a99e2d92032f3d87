"""Hidden tests of the training task: train_digits_convnet(data) -> params.

The student's function gets the digits as the notebook loads them (load_digits with 200
validation and 200 test images, seed 0): a dict with X_train (1397, 1, 8, 8), y_train, X_val
(200, 1, 8, 8), y_val, and returns the trained params of a ThreeLayerConvNet (W1, b1, W2, b2,
W3, b3) for 8x8 single-channel inputs and 10 classes, with an odd filter size. Here, in the
trusted parent, course_lib's ThreeLayerConvNet with those params scores the 200 held-out
test digits (which the function never sees): >= 0.90 accuracy earns the task's main points.
The notebook's solution (8 filters of 3x3, 100 hidden units, Adam, 10 epochs) reaches about
0.98 in about 2 seconds; chance is 0.10.

The function runs under the sandbox's per-call time limit. It is called once per
submission; its result is shared by the tests below (cached per graded submission).
"""

import weakref

import numpy as np
import pytest

from autograder.checks import GradingFailure, describe_type
from course_lib import ThreeLayerConvNet, load_digits

NUM_CLASSES = 10
TARGET_ACCURACY = 0.90
LEARNS_SOMETHING = 0.50
PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")
# The oracle model is built from the sizes the student's params imply, in the trusted parent,
# so they are bounded first. The notebook's model (8 filters of 3x3, 100 hidden units) has
# 13,990 parameters; these bounds are far above any sensible model of 8x8 digits.
MAX_FILTERS = 256
MAX_PARAMETERS = 2_000_000

_RESULTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def digits_data() -> dict:
    return load_digits(num_validation=200, num_test=200, seed=0)


def trained_params(student) -> tuple[object, dict]:
    """(params, data) from one call of the student's function; a failure is re-raised."""
    if student not in _RESULTS:
        data = digits_data()
        given = {k: data[k].copy() for k in ("X_train", "y_train", "X_val", "y_val")}
        try:
            _RESULTS[student] = ("ok", student.train_digits_convnet(given), data)
        except GradingFailure as failure:
            _RESULTS[student] = ("failed", failure, data)
    status, value, data = _RESULTS[student]
    if status == "failed":
        raise GradingFailure(str(value))
    return value, data


def check_model_size(num_filters: int, filter_size: int, hidden_dim: int) -> None:
    """The model the params describe is one the grader is willing to build."""
    if num_filters < 1 or hidden_dim < 1:
        raise GradingFailure("params['W1'] and params['W2'] must not be empty")
    if num_filters > MAX_FILTERS:
        raise GradingFailure(f"params['W1'] has {num_filters} filters; the grader accepts at "
                             f"most {MAX_FILTERS} for 8x8 digits (the notebook's model has 8)")
    # W1, b1; W2 (num_filters * 4 * 4 pooled values -> hidden_dim), b2; W3, b3.
    count = (num_filters * (filter_size ** 2 + 1) + (16 * num_filters + 1) * hidden_dim
             + (hidden_dim + 1) * NUM_CLASSES)
    if count > MAX_PARAMETERS:
        raise GradingFailure(
            f"the returned params describe a ThreeLayerConvNet with {count:,} parameters "
            f"({num_filters} filters of {filter_size}x{filter_size}, hidden_dim {hidden_dim}); "
            f"the grader accepts at most {MAX_PARAMETERS:,} for 8x8 digits (the notebook's "
            "model has about 14,000)")


def trained_model(student) -> tuple[ThreeLayerConvNet, dict]:
    """course_lib's ThreeLayerConvNet holding the student's trained params (checked)."""
    params, data = trained_params(student)
    if type(params) is not dict:
        raise GradingFailure(f"train_digits_convnet should return the model's params dict; "
                             f"got {describe_type(params)}")
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise GradingFailure(f"the returned params have no {', '.join(missing)}")
    for name in PARAM_NAMES:
        value = params[name]
        if type(value) is not np.ndarray or value.dtype.kind != "f":
            raise GradingFailure(f"params['{name}'] should be a float numpy array; got "
                                 f"{describe_type(value)}")
        if not np.isfinite(value).all():
            raise GradingFailure(f"params['{name}'] contains NaN or infinite values "
                                 "(learning rate too large?)")
    W1, W2 = params["W1"], params["W2"]
    if W1.ndim != 4 or W1.shape[1] != 1 or W1.shape[2] != W1.shape[3] or W1.shape[2] % 2 == 0 \
            or W1.shape[2] > 7 or W2.ndim != 2:
        raise GradingFailure(f"params['W1'] has shape {W1.shape}; expected (F, 1, fs, fs) with "
                             "an odd filter size fs <= 7 for 8x8 single-channel digits")
    num_filters, filter_size, hidden_dim = W1.shape[0], W1.shape[2], W2.shape[1]
    check_model_size(num_filters, filter_size, hidden_dim)
    model = ThreeLayerConvNet(input_dim=(1, 8, 8), num_filters=num_filters,
                              filter_size=filter_size, hidden_dim=hidden_dim,
                              num_classes=NUM_CLASSES, dtype=np.float64, seed=0)
    for name in PARAM_NAMES:
        want = model.params[name].shape
        if params[name].shape != want:
            raise GradingFailure(
                f"params['{name}'] has shape {params[name].shape}; expected {want} for "
                f"{num_filters} filters of {filter_size}x{filter_size}, hidden_dim {hidden_dim} "
                f"and 10 classes on 8x8 digits")
    model.params = {k: params[k].astype(np.float64) for k in PARAM_NAMES}
    return model, data


def held_out_accuracy(student) -> float:
    model, data = trained_model(student)
    predictions = np.argmax(model.loss(data["X_test"]), axis=1)
    return float(np.mean(predictions == data["y_test"]))


@pytest.mark.points(1)
def test_train_digits_convnet_returns_finite_params_of_a_three_layer_convnet(student):
    trained_model(student)


@pytest.mark.points(1)
def test_train_digits_convnet_learns_far_better_than_chance(student):
    accuracy = held_out_accuracy(student)
    if accuracy < LEARNS_SOMETHING:
        raise GradingFailure(f"held-out accuracy {accuracy:.3f} is below {LEARNS_SOMETHING} "
                             f"(chance is 0.10): the network did not learn much")


@pytest.mark.points(3)
def test_train_digits_convnet_reaches_90_percent_on_held_out_digits(student):
    accuracy = held_out_accuracy(student)
    if accuracy < TARGET_ACCURACY:
        raise GradingFailure(f"held-out accuracy {accuracy:.3f} is below the target "
                             f"{TARGET_ACCURACY:.2f}; tune the learning rate, the number of "
                             "epochs, the filters or the hidden size on the validation set")
