"""Hidden tests of the training task: train_digits_model(data) -> params (a2_fully_connected).

The student's function trains THEIR TwoLayerNet with course_lib's Solver and their own update
rule, in the sandbox, within the call time limit (30 s; FUNCTIONS in __init__.py). It gets the
training and validation split of the MNIST digits,
`load_mnist(num_validation=500, num_test=500, seed=0, flatten=True)` (X_train (4000, 784),
y_train, X_val (500, 784), y_val), and returns the parameters; the accuracy is then computed
here, in the trusted parent, with course_lib's TwoLayerNet, on the validation split (the stated
target, 0.92) and on the 500 test images, which the function never sees (0.91: a model that
merely memorised the validation set fails it).

Measured on this split, single-threaded as in the sandbox: the notebook's solution (100
hidden units, Adam, 12 epochs) reaches 0.938 validation / 0.932 test in 1-2 s in the sandbox
(the whole submission grades in 2.7 s); the three alternative solutions of the test fixtures
0.934-0.946 / 0.926-0.938; twelve other settings of the same net 0.924-0.944 / 0.912-0.944.
The previous assignment's model, a1's linear classifier on the same split, reaches at most
0.914 validation / 0.906 test (eight settings of softmax and SVM). So the targets sit just
above the best linear classifier and 1.8 (validation) and 2.2 (test) points below the
reference, 1.5-2 standard errors of a 500-image set: the margins are thin because the gap
between the two models on 4,000 MNIST digits is only about 3 points. Training
runs once per submission (a module-scoped fixture); the three tests grade its outcome.
"""

from functools import lru_cache

import numpy as np
import pytest

from autograder.checks import GradingFailure
from course_lib import TwoLayerNet, load_mnist

pytestmark = pytest.mark.function("train_digits_model")
KEYS = ("W1", "b1", "W2", "b2")
VAL_TARGET, TEST_TARGET = 0.92, 0.91


@lru_cache(maxsize=1)
def digits() -> dict:
    return load_mnist(num_validation=500, num_test=500, seed=0, flatten=True)


@pytest.fixture(scope="module")
def outcome(student):
    """('ok', params) or ('failed', GradingFailure), from one call of train_digits_model."""
    data = digits()
    given = {k: data[k].copy() for k in ("X_train", "y_train", "X_val", "y_val")}
    try:
        return "ok", student.train_digits_model(given)
    except GradingFailure as failure:
        return "failed", failure


def trained_model(outcome) -> TwoLayerNet:
    status, value = outcome
    if status == "failed":
        raise value
    params = value
    if type(params) is not dict or not set(KEYS) <= set(params):
        keys = sorted(params) if type(params) is dict else type(params).__name__
        raise GradingFailure(f"train_digits_model should return the params dict with keys "
                             f"{list(KEYS)} of your TwoLayerNet; got {keys}")
    arrays = {k: params[k] for k in KEYS}
    bad = [k for k, v in arrays.items() if type(v) is not np.ndarray or v.dtype.kind != "f"]
    if bad:
        raise GradingFailure(f"params {bad} should be float arrays")
    hidden = arrays["W1"].shape[1] if arrays["W1"].ndim == 2 else -1
    shapes = {"W1": (784, hidden), "b1": (hidden,), "W2": (hidden, 10), "b2": (10,)}
    wrong = [f"{k} {arrays[k].shape} (expected {shapes[k]})" for k in KEYS
             if arrays[k].shape != shapes[k]]
    if hidden < 1 or wrong:
        raise GradingFailure("the returned params do not fit a TwoLayerNet with input_dim=784 "
                             f"and num_classes=10: {', '.join(wrong) or 'W1 is not 2-D'}")
    if not all(np.isfinite(v).all() for v in arrays.values()):
        raise GradingFailure("the returned params contain NaN or infinite values")
    model = TwoLayerNet(input_dim=784, hidden_dim=hidden, num_classes=10, seed=0)
    model.params = {k: v.astype(np.float64) for k, v in arrays.items()}
    return model


def accuracy(model: TwoLayerNet, split: str) -> float:
    data = digits()
    return float(np.mean(model.loss(data[f"X_{split}"]).argmax(axis=1) == data[f"y_{split}"]))


@pytest.mark.points(1)
def test_train_digits_model_returns_two_layer_net_params(outcome):
    trained_model(outcome)


@pytest.mark.points(3)
def test_train_digits_model_reaches_the_validation_target(outcome):
    acc = accuracy(trained_model(outcome), "val")
    if acc < VAL_TARGET:
        raise GradingFailure(f"validation accuracy {acc:.3f} is below the target {VAL_TARGET}")


@pytest.mark.points(1)
def test_train_digits_model_generalises_to_unseen_digits(outcome):
    acc = accuracy(trained_model(outcome), "test")
    if acc < TEST_TARGET:
        raise GradingFailure(f"accuracy on digits the function never saw is {acc:.3f}; "
                             f"the target is {TEST_TARGET}")
