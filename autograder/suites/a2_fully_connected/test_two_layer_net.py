"""Hidden tests of TwoLayerNet (a2_fully_connected).

The student's model is built in the sandbox (`student.build`); its methods are called there.
Expected values come from course_lib.TwoLayerNet (the oracle) with the SAME parameters, set
into both models, so the random initialisation never matters except in the one test about
it. Tolerance (float64): scores, loss and gradients of a correct implementation differ from
the reference by rounding only (~1e-15 relative; the inputs keep every ReLU pre-activation
away from 0, where the gradient is not defined), so |got - expected| <= 1e-9 + 1e-6 *
|expected|; a missing 0.5, a regularised bias or a forgotten reg * W changes values by O(reg).
A loss with reg * sum(W**2) (no 0.5, another course year's convention) gets a message naming
it. The model is built from the student's own layers: a wrong layer also shows here (the
messages say so); grading the model on the reference layers needs the grader to call back
into the trusted parent, which is not built yet.
"""

import numpy as np
import pytest

from autograder.checks import (
    GradingFailure,
    expect_array,
    expect_tuple,
    expect_unchanged,
)
from autograder.suites.a2_fully_connected.conventions import expect_loss, explain_l2
from course_lib import TwoLayerNet

RTOL, ATOL = 1e-6, 1e-9
KEYS = ("W1", "b1", "W2", "b2")
pytestmark = pytest.mark.function("TwoLayerNet")


def problem(seed: int, n: int, d: int, h: int, c: int):
    """Inputs, labels and parameters with no ReLU pre-activation near zero."""
    rng = np.random.default_rng(seed)
    params = {"W1": rng.standard_normal((d, h)) / np.sqrt(d), "b1": rng.standard_normal(h),
              "W2": rng.standard_normal((h, c)) / np.sqrt(h), "b2": rng.standard_normal(c)}
    X = rng.standard_normal((n, d))
    pre = X @ params["W1"] + params["b1"]
    params["b1"] = params["b1"] + np.where(np.abs(pre).min(axis=0) < 1e-3, 0.1, 0.0)
    y = rng.integers(0, c, size=n)
    return X, y, params


def both_models(student, d, h, c, params, reg=0.0):
    model = student.build("TwoLayerNet", input_dim=d, hidden_dim=h, num_classes=c,
                          weight_scale=1e-2, reg=reg)
    model.set("params", {k: v.copy() for k, v in params.items()})
    reference = TwoLayerNet(input_dim=d, hidden_dim=h, num_classes=c, reg=reg, seed=0)
    reference.params = {k: v.copy() for k, v in params.items()}
    return model, reference


LAYERS_HINT = (" (TwoLayerNet is built from your affine, relu and softmax layers: if their "
               "tests fail, fix them first)")


def check_loss_and_grads(got, reference, X, y):
    loss, grads = expect_tuple(got, 2, "TwoLayerNet.loss(X, y)")
    want_loss, want_grads = reference.loss(X, y)
    l2 = sum(float(np.sum(reference.params[k] ** 2)) for k in ("W1", "W2"))
    explain_l2(loss, want_loss, l2, reference.reg, "the loss")
    expect_loss(loss, want_loss, "the loss" + LAYERS_HINT, rtol=RTOL, atol=ATOL)
    if type(grads) is not dict or sorted(grads) != sorted(KEYS):
        keys = sorted(grads) if type(grads) is dict else type(grads).__name__
        raise GradingFailure(f"grads should be a dict with the keys of params {list(KEYS)}; "
                             f"got {keys}")
    for key in KEYS:
        expect_array(grads[key], want_grads[key], f"grads['{key}']", rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- initialisation

@pytest.mark.points(2)
def test_TwoLayerNet_creates_params_with_the_contract_keys_shapes_and_zero_biases(student):
    model = student.build("TwoLayerNet", input_dim=12, hidden_dim=9, num_classes=5,
                          weight_scale=1e-2)
    params = model.get("params")
    if type(params) is not dict or sorted(params) != sorted(KEYS):
        keys = sorted(params) if type(params) is dict else type(params).__name__
        raise GradingFailure(f"params should be a dict with keys {list(KEYS)}; got {keys}")
    shapes = {"W1": (12, 9), "b1": (9,), "W2": (9, 5), "b2": (5,)}
    for key, shape in shapes.items():
        value = params[key]
        if type(value) is not np.ndarray or value.shape != shape or value.dtype != np.float64:
            raise GradingFailure(f"params['{key}'] should be a float64 array of shape {shape} "
                                 f"(input_dim=12, hidden_dim=9, num_classes=5); got "
                                 f"{getattr(value, 'dtype', type(value).__name__)} "
                                 f"{getattr(value, 'shape', '')}")
    for key in ("b1", "b2"):
        if np.any(params[key] != 0):
            raise GradingFailure(f"params['{key}'] should start at zero")


@pytest.mark.points(1)
def test_TwoLayerNet_draws_weights_with_std_weight_scale(student):
    # 20000 and 2000 draws: the sample std is within 2% (W1) / 5% (W2) of weight_scale at 3
    # sigma, and the sample mean within 2% / 7% of it; 15% margins accept every N(0, ws^2)
    # draw and reject uniform draws (std 0.29 ws, mean 0.5 ws) or a wrong scale.
    scale = 3e-2
    model = student.build("TwoLayerNet", input_dim=100, hidden_dim=200, num_classes=10,
                          weight_scale=scale)
    params = model.get("params")
    for key in ("W1", "W2"):
        value = params.get(key) if type(params) is dict else None
        if type(value) is not np.ndarray or value.size == 0:
            raise GradingFailure(f"params['{key}'] is missing or not an array")
        if abs(value.std() - scale) > 0.15 * scale or abs(value.mean()) > 0.15 * scale:
            raise GradingFailure(f"params['{key}'] should be drawn from weight_scale * N(0, 1): "
                                 f"its mean should be about 0 and its std about weight_scale")


# ----------------------------------------------------------------------------- forward / loss

@pytest.mark.points(2)
def test_TwoLayerNet_loss_without_labels_returns_the_reference_scores(student):
    X, _, params = problem(5101, 6, 8, 10, 4)
    model, reference = both_models(student, 8, 10, 4, params)
    scores = model.call("loss", X)
    expect_array(scores, reference.loss(X), "scores = loss(X)", rtol=RTOL, atol=ATOL)


@pytest.mark.points(3)
def test_TwoLayerNet_loss_and_grads_match_reference_without_regularisation(student):
    X, y, params = problem(5102, 7, 6, 9, 5)
    model, reference = both_models(student, 6, 9, 5, params)
    check_loss_and_grads(model.call("loss", X, y), reference, X, y)


@pytest.mark.points(3)
def test_TwoLayerNet_regularises_weights_only_with_half_reg(student):
    X, y, params = problem(5103, 5, 7, 8, 3)
    model, reference = both_models(student, 7, 8, 3, params, reg=0.7)
    check_loss_and_grads(model.call("loss", X, y), reference, X, y)


@pytest.mark.points(1)
def test_TwoLayerNet_flattens_image_shaped_input(student):
    X, y, params = problem(5104, 4, 16, 6, 3)
    X = X.reshape(4, 1, 4, 4)
    model, reference = both_models(student, 16, 6, 3, params, reg=0.1)
    check_loss_and_grads(model.call("loss", X, y), reference, X, y)


@pytest.mark.points(1)
def test_TwoLayerNet_loss_does_not_modify_X_or_params(student):
    X, y, params = problem(5105, 5, 6, 7, 4)
    model, _ = both_models(student, 6, 7, 4, params, reg=0.3)
    model.call("loss", X, y)
    expect_unchanged({"X": X}, {"X": student.last_call.after.get(0)}, "TwoLayerNet.loss")
    after = model.get("params")
    if type(after) is not dict:
        raise GradingFailure("TwoLayerNet.loss replaced params by something that is not a dict")
    changed = [k for k in KEYS if not (type(after.get(k)) is np.ndarray
                                       and np.array_equal(after[k], params[k]))]
    if changed:
        raise GradingFailure(f"TwoLayerNet.loss changed params {changed}; computing the loss "
                             "must leave the parameters alone (the optimizer updates them)")
