"""Hidden tests of FullyConnectedNet (a2_fully_connected).

The student's model is built in the sandbox (`student.build`) with CS231n's interface and the
course's dropout convention: FullyConnectedNet(hidden_dims, input_dim, num_classes, dropout
(probability of DROPPING a hidden unit, 0 = none), normalization (None, 'batchnorm',
'layernorm'), reg, weight_scale, dtype, seed). Expected values come from
course_lib.FullyConnectedNet (the oracle) with the SAME parameters set into both models, so the
random initialisation matters only in the test about it. Depths 1 to 4 hidden layers, odd and
unequal sizes (a loop that assumes two hidden layers or equal widths fails).

Dropout: how a mask is drawn is the student's choice (`rand >= p` or `rand < 1 - p`), so a
model with dropout is graded by what every correct one satisfies: in test mode (y None) it
equals the reference without dropout; in train mode with a seed its loss is deterministic,
differs from the no-dropout loss, and its analytic gradients agree with central differences
of its own loss (float64, h = 1e-6 on 5 sampled entries, relative error < 1e-5 where the
exact values agree to ~1e-8).

Tolerance otherwise (float64): rounding only (~1e-14 relative through four layers), so
|got - expected| <= 1e-8 + 1e-6 * |expected|. The inputs are random floats, so no ReLU input
is exactly 0 and no test depends on relu'(0). The model is built from the student's
own layers: a wrong layer also shows here (the messages say so); grading the model on the
reference layers needs the grader to call back into the trusted parent (not built yet).
"""

import numpy as np
import pytest

from autograder.checks import GradingFailure, expect_array, expect_tuple, expect_unchanged
from autograder.suites.a2_fully_connected.conventions import expect_loss, explain_l2
from course_lib import FullyConnectedNet

RTOL, ATOL = 1e-6, 1e-8
FLOAT64 = "float64"     # numpy type objects cannot cross into the sandbox; a name can
LAYERS_HINT = (" (FullyConnectedNet is built from your layers: if their tests fail, fix "
               "them first)")
pytestmark = pytest.mark.function("FullyConnectedNet")


def param_names(num_hidden: int, normalization: str | None) -> list[str]:
    names = [f"{kind}{i}" for i in range(1, num_hidden + 2) for kind in ("W", "b")]
    if normalization is not None:
        names += [f"{kind}{i}" for i in range(1, num_hidden + 1) for kind in ("gamma", "beta")]
    return sorted(names)


def problem(seed: int, n: int, d: int, hidden: list[int], c: int, normalization=None):
    """X, y and parameters (with gamma, beta when normalised) for a net of these sizes."""
    rng = np.random.default_rng(seed)
    dims = [d, *hidden, c]
    params = {}
    for i in range(1, len(dims)):
        params[f"W{i}"] = rng.standard_normal((dims[i - 1], dims[i])) / np.sqrt(dims[i - 1])
        params[f"b{i}"] = 0.1 * rng.standard_normal(dims[i])
        if normalization is not None and i < len(dims) - 1:
            params[f"gamma{i}"] = 1.0 + 0.3 * rng.standard_normal(dims[i])
            params[f"beta{i}"] = 0.2 * rng.standard_normal(dims[i])
    X = rng.standard_normal((n, d))
    return X, rng.integers(0, c, size=n), params


def both_models(student, hidden, d, c, params, **options):
    kwargs = dict(hidden_dims=list(hidden), input_dim=d, num_classes=c, weight_scale=1e-2,
                  **options)
    model = student.build("FullyConnectedNet", **kwargs, dtype=FLOAT64)
    model.set("params", {k: v.copy() for k, v in params.items()})
    reference = FullyConnectedNet(**{**kwargs, "seed": kwargs.get("seed", 0)}, dtype=np.float64)
    reference.params = {k: v.copy() for k, v in params.items()}
    return model, reference


def expect_grads(grads, want: dict, when: str = "") -> None:
    if type(grads) is not dict or sorted(grads) != sorted(want):
        keys = sorted(grads) if type(grads) is dict else type(grads).__name__
        raise GradingFailure(f"grads should be a dict with the keys of params {sorted(want)}"
                             f"{when}; got {keys}")
    for key in sorted(want):
        expect_array(grads[key], want[key], f"grads['{key}']{when}" + LAYERS_HINT,
                     rtol=RTOL, atol=ATOL)


def check_loss_and_grads(model, reference, X, y, when: str = "") -> None:
    loss, grads = expect_tuple(model.call("loss", X, y), 2, "FullyConnectedNet.loss(X, y)")
    want_loss, want_grads = reference.loss(X, y)
    weights = [v for k, v in reference.params.items() if k.startswith("W")]
    explain_l2(loss, want_loss, sum(float(np.sum(w * w)) for w in weights), reference.reg,
               f"the loss{when}")
    expect_loss(loss, want_loss, f"the loss{when}" + LAYERS_HINT, rtol=RTOL, atol=ATOL)
    expect_grads(grads, want_grads, when)


# ----------------------------------------------------------------------------- initialisation

@pytest.mark.points(2)
@pytest.mark.parametrize("normalization", [None, "batchnorm"])
def test_FullyConnectedNet_creates_params_of_every_layer(student, normalization):
    hidden = [7, 5, 9]
    model = student.build("FullyConnectedNet", hidden_dims=hidden, input_dim=11, num_classes=4,
                          normalization=normalization, weight_scale=0.05, dtype=FLOAT64)
    params = model.get("params")
    names = param_names(len(hidden), normalization)
    if type(params) is not dict or sorted(params) != names:
        keys = sorted(params) if type(params) is dict else type(params).__name__
        raise GradingFailure(f"with hidden_dims={hidden} and normalization={normalization!r} "
                             f"params should have the keys {names}; got {keys}")
    dims = [11, *hidden, 4]
    for i in range(1, len(dims)):
        shapes = {f"W{i}": (dims[i - 1], dims[i]), f"b{i}": (dims[i],)}
        if normalization is not None and i < len(dims) - 1:
            shapes |= {f"gamma{i}": (dims[i],), f"beta{i}": (dims[i],)}
        for key, shape in shapes.items():
            value = params[key]
            if type(value) is not np.ndarray or value.shape != shape or \
                    value.dtype != np.float64:
                raise GradingFailure(
                    f"params['{key}'] should be a float64 array of shape {shape} (dtype="
                    f"np.float64 was given); got {getattr(value, 'dtype', type(value).__name__)}"
                    f" {getattr(value, 'shape', '')}")
        starts = {f"b{i}": 0.0, f"gamma{i}": 1.0, f"beta{i}": 0.0}
        for key, start in starts.items():
            if key in shapes and np.any(params[key] != start):
                raise GradingFailure(f"params['{key}'] should start at {start:g}")


@pytest.mark.points(1)
def test_FullyConnectedNet_draws_weights_with_std_weight_scale_in_the_default_dtype(student):
    # 30000 draws in W1: the sample std is within 1% of weight_scale at 3 sigma; 15% margins
    # accept every N(0, ws^2) draw and reject uniform draws or a wrong scale.
    scale = 4e-2
    model = student.build("FullyConnectedNet", hidden_dims=[150, 30], input_dim=200,
                          num_classes=10, weight_scale=scale)
    params = model.get("params")
    for key in ("W1", "W2", "W3"):
        value = params.get(key) if type(params) is dict else None
        if type(value) is not np.ndarray or value.size == 0:
            raise GradingFailure(f"params['{key}'] is missing or not an array")
        if value.dtype != np.float32:
            raise GradingFailure(f"params['{key}'] has dtype {value.dtype}; without a dtype "
                                 "argument the parameters are float32 (the default dtype)")
        if abs(value.std() - scale) > 0.15 * scale or abs(value.mean()) > 0.15 * scale:
            raise GradingFailure(f"params['{key}'] should be drawn from weight_scale * N(0, 1): "
                                 "its mean should be about 0 and its std about weight_scale")


# ----------------------------------------------------------------------------- forward / loss

@pytest.mark.points(2)
def test_FullyConnectedNet_loss_without_labels_returns_the_reference_scores(student):
    X, _, params = problem(5201, 6, 9, [7, 5, 8], 4)
    model, reference = both_models(student, [7, 5, 8], 9, 4, params)
    scores = model.call("loss", X)
    expect_array(scores, reference.loss(X), "scores = loss(X)" + LAYERS_HINT,
                 rtol=RTOL, atol=ATOL)


@pytest.mark.points(2)
@pytest.mark.parametrize("hidden", [[5], [7, 3, 6, 9]], ids=["one hidden layer", "four"])
def test_FullyConnectedNet_loss_and_grads_match_reference_at_any_depth(student, hidden):
    X, y, params = problem(5202 + len(hidden), 5, 7, hidden, 3)
    model, reference = both_models(student, hidden, 7, 3, params)
    check_loss_and_grads(model, reference, X, y)


@pytest.mark.points(2)
def test_FullyConnectedNet_regularises_every_weight_with_half_reg(student):
    X, y, params = problem(5207, 4, 6, [5, 7], 3)
    model, reference = both_models(student, [5, 7], 6, 3, params, reg=0.6)
    check_loss_and_grads(model, reference, X, y)


@pytest.mark.points(2)
@pytest.mark.parametrize("normalization", ["batchnorm", "layernorm"])
def test_FullyConnectedNet_normalises_every_hidden_layer_in_train_and_test_mode(
        student, normalization):
    # One training call (batch statistics; batchnorm updates its running averages from zero
    # with momentum 0.9), then scores in test mode (running averages; layer norm unchanged).
    hidden = [6, 9, 5]
    X, y, params = problem(5211, 8, 7, hidden, 4, normalization)
    model, reference = both_models(student, hidden, 7, 4, params, normalization=normalization)
    check_loss_and_grads(model, reference, X, y, f" with normalization={normalization!r}")
    X_test = np.random.default_rng(5212).standard_normal((3, 7))
    expect_array(model.call("loss", X_test), reference.loss(X_test),
                 f"scores in test mode (after one training call) with normalization="
                 f"{normalization!r}" + LAYERS_HINT, rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_FullyConnectedNet_with_dropout_is_deterministic_in_test_mode(student):
    X, _, params = problem(5221, 6, 8, [9, 7], 3)
    model, reference = both_models(student, [9, 7], 8, 3, params, dropout=0.5, seed=3)
    first, second = model.call("loss", X), model.call("loss", X)
    expect_array(first, reference.loss(X), "scores = loss(X) with dropout=0.5 (dropout is the "
                 "identity in test mode)" + LAYERS_HINT, rtol=RTOL, atol=ATOL)
    expect_array(second, first, "scores of a second call in test mode", rtol=0, atol=0)


@pytest.mark.points(2)
def test_FullyConnectedNet_with_dropout_has_gradients_of_its_own_seeded_loss(student):
    hidden, d, c = [9, 7], 8, 3
    X, y, params = problem(5231, 6, d, hidden, c)
    model, reference = both_models(student, hidden, d, c, params, dropout=0.3, seed=5)
    loss, grads = expect_tuple(model.call("loss", X, y), 2, "FullyConnectedNet.loss(X, y)")
    again, _ = expect_tuple(model.call("loss", X, y), 2, "FullyConnectedNet.loss(X, y)")
    loss = expect_loss(loss, 0.0, "the loss", rtol=0, atol=np.inf)
    if expect_loss(again, 0.0, "the loss", rtol=0, atol=np.inf) != loss:
        raise GradingFailure("with seed given, two training calls gave different losses; the "
                             "seed goes into dropout_param, so every call draws the same mask")
    no_dropout = FullyConnectedNet(hidden, input_dim=d, num_classes=c, dtype=np.float64, seed=0)
    no_dropout.params = {k: v.copy() for k, v in params.items()}
    if abs(loss - no_dropout.loss(X, y)[0]) < 1e-9:
        raise GradingFailure("with dropout=0.3 the training loss equals the loss without "
                             "dropout; apply dropout after every hidden ReLU in train mode")
    if type(grads) is not dict or sorted(grads) != sorted(params) or any(
            type(grads[k]) is not np.ndarray or grads[k].shape != v.shape
            for k, v in params.items()):
        raise GradingFailure(f"grads should be a dict of arrays shaped like params, with the "
                             f"keys {sorted(params)}")
    rng = np.random.default_rng(5232)
    h = 1e-6
    for key in ("W1", "b1", "W2", "b2", "W3"):
        for index in [tuple(rng.integers(0, s) for s in params[key].shape)]:
            shifted = {}
            for sign in (1, -1):
                moved = {k: v.copy() for k, v in params.items()}
                moved[key][index] += sign * h
                model.set("params", moved)
                value, _ = expect_tuple(model.call("loss", X, y), 2, "FullyConnectedNet.loss")
                shifted[sign] = expect_loss(value, 0.0, "the loss", rtol=0, atol=np.inf)
            numeric = (shifted[1] - shifted[-1]) / (2 * h)
            analytic = float(grads[key][index])
            error = abs(numeric - analytic) / max(1e-8, abs(numeric) + abs(analytic))
            if error > 1e-5 and abs(numeric - analytic) > 1e-7:
                raise GradingFailure(
                    f"grads['{key}'] disagrees with the numerical gradient of your own loss "
                    f"with dropout=0.3 and a seed (relative error {error:.1g}); the backward "
                    "pass must use the forward pass's dropout masks" + LAYERS_HINT)


@pytest.mark.points(1)
def test_FullyConnectedNet_loss_does_not_modify_X_or_params(student):
    X, y, params = problem(5241, 5, 6, [7, 4], 3, "batchnorm")
    model, _ = both_models(student, [7, 4], 6, 3, params, reg=0.2, normalization="batchnorm")
    model.call("loss", X, y)
    expect_unchanged({"X": X}, {"X": student.last_call.after.get(0)}, "FullyConnectedNet.loss")
    after = model.get("params")
    if type(after) is not dict:
        raise GradingFailure("FullyConnectedNet.loss replaced params by something that is not "
                             "a dict")
    changed = sorted(k for k in params if not (type(after.get(k)) is np.ndarray
                                               and np.array_equal(after[k], params[k])))
    if changed:
        raise GradingFailure(f"FullyConnectedNet.loss changed params {changed}; computing the "
                             "loss must leave the parameters alone (the optimizer updates them)")
