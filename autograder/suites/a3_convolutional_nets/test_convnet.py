"""Hidden tests of ThreeLayerConvNet (a3_convolutional_nets).

The student's model lives in the sandbox: `student.build("ThreeLayerConvNet", ...)` returns a
`StudentObject`, and the tests call its methods and read or update its `params` through it. To make
the comparison exact, the tests overwrite the (random) initial weights with seeded ones and
give the same weights to course_lib's ThreeLayerConvNet (the oracle); the initial weights
themselves are checked for shapes, dtype, zero biases and their standard deviation only.

Tolerance (float64): scores, loss and gradients of a correct model differ from the reference
by rounding (about 1e-14 relative), so |got - expected| <= 1e-9 + 1e-6 * |expected| accepts
every correct implementation. Weights are drawn with std 0.3 so that scores and gradients are
O(0.01 .. 1), far above that tolerance; forgetting the regulariser's gradient, regularising
the biases or dropping the 0.5 is off by O(reg * |W|) = O(0.1).

Odd sizes: the 2x2 pool with stride 2 floors (CONTRACT.md), so a 7x9 input pools to 3x4 and
W2 has F * 3 * 4 rows; one test builds a model on a 7x9 input and checks the shapes of its
params before its loss and gradients (a model that assumes even sizes, H * W / 4 or a rounded-up
half, fails there only).
"""

import numpy as np
import pytest

from autograder.checks import (
    GradingFailure,
    describe_type,
    expect_array,
    expect_scalar,
    expect_tuple,
)
from autograder.plugin import StudentObject
from course_lib import ThreeLayerConvNet

RTOL, ATOL = 1e-6, 1e-9
PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")
MODEL = "ThreeLayerConvNet"
# numpy type objects cannot cross into the sandbox; a dtype name works wherever np.float64
# does (astype, np.zeros(..., dtype=...), np.dtype(...)).
FLOAT64 = "float64"


# ----------------------------------------------------------------------------- the models

def build(student, **kwargs) -> StudentObject:
    return student.build(MODEL, **kwargs)


def read_params(model: StudentObject) -> dict:
    params = model.get("params")
    if type(params) is not dict:
        raise GradingFailure(f"model.params should be a dict of numpy arrays; got "
                             f"{describe_type(params)}")
    return params


def set_params(model: StudentObject, params: dict) -> None:
    """model.params.update(params) in the sandbox (the model keeps its own dict object)."""
    model.attribute("params").call("update", {k: v.copy() for k, v in params.items()})


def seeded_params(seed: int, reference: ThreeLayerConvNet) -> dict:
    rng = np.random.default_rng(seed)
    return {name: (0.3 if name.startswith("W") else 0.1) * rng.standard_normal(value.shape)
            for name, value in reference.params.items()}


def model_pair(student, seed: int, config: dict, reg: float = 0.0):
    """The student's model and the oracle, both float64 with the same seeded params."""
    kwargs = dict(config, reg=reg, dtype=FLOAT64)
    reference = ThreeLayerConvNet(**kwargs, seed=0)
    params = seeded_params(seed, reference)
    reference.params = {k: v.copy() for k, v in params.items()}
    model = build(student, **kwargs)
    set_params(model, params)
    return model, reference


def model_data(seed: int, config: dict, n: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, *config["input_dim"]))
    y = rng.integers(0, config["num_classes"], size=n)
    return X, y


SMALL = {"input_dim": (2, 6, 8), "num_filters": 3, "filter_size": 3, "hidden_dim": 7,
         "num_classes": 5}
ODD = {"input_dim": (2, 7, 9), "num_filters": 3, "filter_size": 3, "hidden_dim": 6,
       "num_classes": 4}
FIVE_BY_FIVE = {"input_dim": (1, 4, 4), "num_filters": 2, "filter_size": 5, "hidden_dim": 6,
                "num_classes": 3}


def _check_loss(student, seed, config, reg, case):
    model, reference = model_pair(student, seed, config, reg)
    X, y = model_data(seed + 1, config, 4)
    loss, grads = expect_tuple(model.call("loss", X, y), 2, f"{MODEL}.loss(X, y)")
    want_loss, want_grads = reference.loss(X, y)
    expect_scalar(loss, want_loss, f"loss ({case})", rtol=RTOL, atol=ATOL)
    if type(grads) is not dict:
        raise GradingFailure(f"grads should be a dict keyed like params; got "
                             f"{describe_type(grads)}")
    missing = [k for k in PARAM_NAMES if k not in grads]
    if missing:
        raise GradingFailure(f"grads has no {', '.join(missing)} ({case})")
    for name in PARAM_NAMES:
        expect_array(grads[name], want_grads[name], f"grads['{name}'] ({case})", rtol=RTOL,
                     atol=ATOL)


# ----------------------------------------------------------------------------- tests

@pytest.mark.points(1)
@pytest.mark.function(MODEL)
def test_three_layer_convnet_initialises_params_with_the_right_shapes(student):
    kwargs = dict(SMALL, weight_scale=0.1, dtype=FLOAT64)
    params = read_params(build(student, **kwargs))
    reference = ThreeLayerConvNet(**kwargs, seed=0).params
    if sorted(params) != sorted(PARAM_NAMES):
        raise GradingFailure(f"params should have the keys {', '.join(PARAM_NAMES)}; got "
                             f"{', '.join(sorted(map(str, params))) or 'none'}")
    for name in PARAM_NAMES:
        value = params[name]
        if type(value) is not np.ndarray:
            raise GradingFailure(f"params['{name}'] should be a numpy array; got "
                                 f"{describe_type(value)}")
        if value.shape != reference[name].shape:
            raise GradingFailure(f"params['{name}'] has shape {value.shape}; expected "
                                 f"{reference[name].shape} for input_dim (2, 6, 8), 3 filters "
                                 "of 3x3, hidden_dim 7, 5 classes")
        if value.dtype != np.float64:
            raise GradingFailure(f"params['{name}'] has dtype {value.dtype}; expected float64 "
                                 "(dtype=np.float64 was given)")
        if name.startswith("b") and np.any(value != 0):
            raise GradingFailure(f"params['{name}'] should start at zero")


@pytest.mark.points(1)
@pytest.mark.function(MODEL)
def test_three_layer_convnet_draws_weights_with_weight_scale_and_default_dtype(student):
    scale = 0.05
    params = read_params(build(student, input_dim=(1, 8, 8), num_filters=8, filter_size=3,
                               hidden_dim=50, weight_scale=scale))
    for name in PARAM_NAMES:
        value = params.get(name)
        if type(value) is not np.ndarray or value.dtype != np.float32:
            raise GradingFailure(f"params['{name}'] should be a float32 array when dtype is "
                                 f"not given (the default dtype is np.float32); got "
                                 f"{describe_type(value)}")
    # The student's weights come from NumPy's unseeded global generator, so this check is
    # statistical: the std of n draws of N(0, scale^2) has standard error scale / sqrt(2n), and
    # the bounds are 6 standard errors (a false failure has probability ~1e-9): W1 has 72
    # values (+-50%), W2 8 * 4 * 4 * 50 = 6400 (+-6%), W3 500 (+-20%). Ignoring weight_scale
    # (std 1) or squaring it (std 0.0025) is far outside.
    for name, slack in (("W1", 0.5), ("W2", 0.06), ("W3", 0.2)):
        std = float(params[name].astype(np.float64).std())
        if abs(std - scale) > slack * scale:
            raise GradingFailure(f"params['{name}'] has standard deviation {std:.3g}; expected "
                                 f"about weight_scale = {scale} (weight_scale * np.random.randn)")


@pytest.mark.points(2)
@pytest.mark.function(MODEL)
def test_three_layer_convnet_scores_match_the_reference(student):
    model, reference = model_pair(student, 3901, SMALL)
    X, _ = model_data(3902, SMALL, 4)
    scores = model.call("loss", X)
    expect_array(scores, reference.loss(X), "scores = model.loss(X) (input 2x6x8, 3x3 filters)",
                 rtol=RTOL, atol=ATOL)


@pytest.mark.points(2)
@pytest.mark.function(MODEL)
def test_three_layer_convnet_loss_and_gradients_without_regularisation(student):
    _check_loss(student, 3903, SMALL, 0.0, "reg = 0, input 2x6x8, 3x3 filters")


@pytest.mark.points(2)
@pytest.mark.function(MODEL)
def test_three_layer_convnet_loss_and_gradients_with_regularisation(student):
    _check_loss(student, 3905, SMALL, 0.3, "reg = 0.3: 0.5 * reg * sum(W**2) over W1, W2, W3 "
                                           "only, gradient reg * W")


@pytest.mark.points(1)
@pytest.mark.function(MODEL)
def test_three_layer_convnet_with_5x5_filters_on_one_channel(student):
    _check_loss(student, 3907, FIVE_BY_FIVE, 0.1, "5x5 filters (pad 2), one input channel, "
                                                  "reg = 0.1")


@pytest.mark.points(1)
@pytest.mark.function(MODEL)
def test_three_layer_convnet_with_odd_height_and_width(student):
    kwargs = dict(ODD, dtype=FLOAT64)
    params = read_params(build(student, **kwargs))
    reference = ThreeLayerConvNet(**kwargs, seed=0).params
    for name in PARAM_NAMES:
        shape = getattr(params.get(name), "shape", None)
        if shape != reference[name].shape:
            raise GradingFailure(
                f"params['{name}'] has shape {shape}; expected {reference[name].shape} for "
                "input_dim (2, 7, 9), 3 filters of 3x3, hidden_dim 6, 4 classes: the 2x2 pool "
                "with stride 2 floors odd sizes (7x9 -> 3x4, H' = 1 + (H - 2) // 2)")
    _check_loss(student, 3909, ODD, 0.1, "input 2x7x9 (odd height and width), reg = 0.1")
