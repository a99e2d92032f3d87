"""Hidden tests of the training task: train_digits_convnet(data) -> params (a3).

The student's function trains THEIR ThreeLayerConvNet (with their own convolution and pooling)
in the sandbox, within this function's call time limit (90 s; FUNCTIONS in __init__.py). It
gets the training and validation split of the MNIST digits,
`load_mnist(num_validation=500, num_test=500, seed=0)` (X_train (4000, 1, 28, 28), y_train,
X_val (500, 1, 28, 28), y_val), and returns the params of a ThreeLayerConvNet for 28x28
single-channel images and 10 classes with an odd filter size. The accuracy is then computed
here, in the trusted parent, with course_lib's ThreeLayerConvNet, on the validation split (the
stated target, 0.95) and on the 500 test images, which the function never sees (0.93: a model
that merely memorised the validation set fails it).

Measured on this split, single-threaded as in the sandbox, with the notebook's solution
(8 filters of 5x5, 100 hidden units, weight scale 5e-2, Adam 3e-3, batch 50, 5 epochs, float32):
0.972 validation / 0.958 test in about 10 s on an idle core (4 epochs: 7.9 s); with seeds 1-3,
0.954 / 0.952, 0.964 / 0.940 and 0.952 / 0.934; the three alternative solutions of the test
fixtures 0.962-0.972 / 0.946-0.958. The previous assignment's model, a2's TwoLayerNet on the
same split, reaches at most 0.946 validation / 0.944 test (fifteen settings, see the a2 suite's
test_training.py). So the validation target sits above every measured fully connected net and
2.2 points below the reference (2.8 standard errors of a 500-image set at 0.97); students see
their validation accuracy before they submit. The test target guards against tuning on the
validation set only. Training runs once
per submission (a module-scoped fixture); the tests grade its outcome.
"""

from functools import lru_cache

import numpy as np
import pytest

from autograder.checks import GradingFailure, describe_type
from course_lib import ThreeLayerConvNet, load_mnist

pytestmark = pytest.mark.function("train_digits_convnet")
NUM_CLASSES = 10
VAL_TARGET, TEST_TARGET = 0.95, 0.93
LEARNS_SOMETHING = 0.50
PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")
# The oracle model is built from the sizes the student's params imply, in the trusted parent,
# so they are bounded first. The notebook's model (8 filters of 5x5, 100 hidden units) has
# 158,018 parameters; these bounds are far above any model that trains in the time limit.
MAX_FILTERS = 64
MAX_FILTER_SIZE = 7
MAX_PARAMETERS = 2_000_000
POOLED = 14 * 14            # a 28x28 map after a same-size convolution and 2x2 max pooling
SCORE_BATCH = 250           # images per oracle forward pass (bounds the parent's memory)


@lru_cache(maxsize=1)
def digits() -> dict:
    return load_mnist(num_validation=500, num_test=500, seed=0)


@pytest.fixture(scope="module")
def outcome(student):
    """('ok', params) or ('failed', GradingFailure), from one call of train_digits_convnet."""
    data = digits()
    given = {k: data[k].copy() for k in ("X_train", "y_train", "X_val", "y_val")}
    try:
        return "ok", student.train_digits_convnet(given)
    except GradingFailure as failure:
        return "failed", failure


def check_model_size(num_filters: int, filter_size: int, hidden_dim: int) -> None:
    """The model the params describe is one the grader is willing to build."""
    if num_filters < 1 or hidden_dim < 1:
        raise GradingFailure("params['W1'] and params['W2'] must not be empty")
    if num_filters > MAX_FILTERS:
        raise GradingFailure(f"params['W1'] has {num_filters} filters; the grader accepts at "
                             f"most {MAX_FILTERS} (the notebook's model has 8)")
    # W1, b1; W2 (num_filters * 14 * 14 pooled values -> hidden_dim), b2; W3, b3.
    count = (num_filters * (filter_size ** 2 + 1) + (POOLED * num_filters + 1) * hidden_dim
             + (hidden_dim + 1) * NUM_CLASSES)
    if count > MAX_PARAMETERS:
        raise GradingFailure(
            f"the returned params describe a ThreeLayerConvNet with {count:,} parameters "
            f"({num_filters} filters of {filter_size}x{filter_size}, hidden_dim {hidden_dim}); "
            f"the grader accepts at most {MAX_PARAMETERS:,} (the notebook's model has about "
            "158,000)")


def trained_model(outcome) -> ThreeLayerConvNet:
    """course_lib's ThreeLayerConvNet holding the student's trained params (checked)."""
    status, params = outcome
    if status == "failed":
        raise params
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
            or W1.shape[2] > MAX_FILTER_SIZE or W2.ndim != 2:
        raise GradingFailure(f"params['W1'] has shape {W1.shape}; expected (F, 1, fs, fs) with "
                             f"an odd filter size fs <= {MAX_FILTER_SIZE} for 28x28 "
                             "single-channel digits")
    num_filters, filter_size, hidden_dim = W1.shape[0], W1.shape[2], W2.shape[1]
    check_model_size(num_filters, filter_size, hidden_dim)
    model = ThreeLayerConvNet(input_dim=(1, 28, 28), num_filters=num_filters,
                              filter_size=filter_size, hidden_dim=hidden_dim,
                              num_classes=NUM_CLASSES, dtype=np.float64, seed=0)
    for name in PARAM_NAMES:
        want = model.params[name].shape
        if params[name].shape != want:
            raise GradingFailure(
                f"params['{name}'] has shape {params[name].shape}; expected {want} for "
                f"{num_filters} filters of {filter_size}x{filter_size}, hidden_dim {hidden_dim} "
                f"and 10 classes on 28x28 digits")
    model.params = {k: params[k].astype(np.float64) for k in PARAM_NAMES}
    return model


def accuracy(model: ThreeLayerConvNet, split: str) -> float:
    X, y = digits()[f"X_{split}"], digits()[f"y_{split}"]
    predictions = np.concatenate([model.loss(X[i:i + SCORE_BATCH]).argmax(axis=1)
                                  for i in range(0, len(X), SCORE_BATCH)])
    return float(np.mean(predictions == y))


@pytest.mark.points(1)
def test_train_digits_convnet_returns_finite_params_of_a_three_layer_convnet(outcome):
    trained_model(outcome)


@pytest.mark.points(1)
def test_train_digits_convnet_learns_far_better_than_chance(outcome):
    acc = accuracy(trained_model(outcome), "val")
    if acc < LEARNS_SOMETHING:
        raise GradingFailure(f"validation accuracy {acc:.3f} is below {LEARNS_SOMETHING} "
                             f"(chance is 0.10): the network did not learn much")


@pytest.mark.points(2)
def test_train_digits_convnet_reaches_the_validation_target(outcome):
    acc = accuracy(trained_model(outcome), "val")
    if acc < VAL_TARGET:
        raise GradingFailure(f"validation accuracy {acc:.3f} is below the target {VAL_TARGET} "
                             "(a fully connected net reaches about 0.94): tune the learning "
                             "rate, the epochs, the filters or the hidden size")


@pytest.mark.points(1)
def test_train_digits_convnet_generalises_to_unseen_digits(outcome):
    acc = accuracy(trained_model(outcome), "test")
    if acc < TEST_TARGET:
        raise GradingFailure(f"accuracy on digits the function never saw is {acc:.3f}; "
                             f"the target is {TEST_TARGET}")
