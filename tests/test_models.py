"""Models: published CS231n values, numerical gradients, initial loss, dtypes, argument errors."""
import numpy as np
import pytest

from course_lib import (
    ConvNet,
    FullyConnectedNet,
    ThreeLayerConvNet,
    TwoLayerNet,
    eval_numerical_gradient,
    rel_error,
)


def max_grad_errors(model, X, y, h=1e-5):
    """rel_error between the model's gradients and centred differences, per parameter."""
    _, grads = model.loss(X, y)
    errors = {}
    for name in sorted(model.params):
        def f(_, name=name):
            return model.loss(X, y)[0]
        numeric = eval_numerical_gradient(f, model.params[name], verbose=False, h=h)
        errors[name] = rel_error(numeric, grads[name])
    return errors


# ---------------------------------------------------------------- TwoLayerNet (REFERENCE T9)

def test_two_layer_net_reproduces_cs231n_reference_values():
    np.random.seed(231)
    N, D, H, C = 3, 5, 50, 7
    std = 1e-3
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=std)
    assert abs(model.params["W1"].std() - std) < std / 10
    assert abs(model.params["W2"].std() - std) < std / 10
    assert np.all(model.params["b1"] == 0) and np.all(model.params["b2"] == 0)

    model.params["W1"] = np.linspace(-0.7, 0.3, num=D * H).reshape(D, H)
    model.params["b1"] = np.linspace(-0.1, 0.9, num=H)
    model.params["W2"] = np.linspace(-0.3, 0.4, num=H * C).reshape(H, C)
    model.params["b2"] = np.linspace(-0.9, 0.1, num=C)
    X = np.linspace(-5.5, 4.5, num=N * D).reshape(D, N).T
    scores = model.loss(X)
    correct_scores = np.asarray(
        [[11.53165108, 12.2917344, 13.05181771, 13.81190102, 14.57198434, 15.33206765,
          16.09215096],
         [12.05769098, 12.74614105, 13.43459113, 14.1230412, 14.81149128, 15.49994135,
          16.18839143],
         [12.58373087, 13.20054771, 13.81736455, 14.43418138, 15.05099822, 15.66781506,
          16.2846319]])
    assert np.abs(scores - correct_scores).sum() < 1e-6

    y = np.asarray([0, 5, 1])
    loss, _ = model.loss(X, y)
    assert abs(loss - 3.4702243556) < 1e-10
    model.reg = 1.0
    loss, _ = model.loss(X, y)
    # 26.5948... pins 0.5 * reg * sum(W**2); the full reg * sum(W**2) would give 49.719...
    assert abs(loss - 26.5948426952) < 1e-10


@pytest.mark.parametrize("reg", [0.0, 0.7])
def test_two_layer_net_gradients_match_numerical_gradients(rng, reg):
    N, D, H, C = 3, 5, 50, 7
    model = TwoLayerNet(input_dim=D, hidden_dim=H, num_classes=C, weight_scale=1e-1, reg=reg,
                        seed=0)
    X, y = rng.standard_normal((N, D)), rng.integers(C, size=N)
    errors = max_grad_errors(model, X, y)
    # CS231n prints errors from 4e-10 to 2.5e-7 for this check ("around e-7 or less").
    assert max(errors.values()) < 1e-6, errors


def test_two_layer_net_accepts_images_and_flattens_them(rng):
    model = TwoLayerNet(input_dim=2 * 3 * 3, hidden_dim=4, num_classes=3, seed=0)
    X = rng.standard_normal((5, 2, 3, 3))
    np.testing.assert_array_equal(model.loss(X), model.loss(X.reshape(5, -1)))


# ---------------------------------------------------------------- FullyConnectedNet (T13)

@pytest.mark.parametrize("reg", [0.0, 3.14])
def test_fc_net_gradients_match_numerical_gradients(rng, reg):
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X, y = rng.standard_normal((N, D)), rng.integers(C, size=N)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=reg, weight_scale=5e-2,
                              dtype=np.float64, seed=0)
    errors = max_grad_errors(model, X, y)
    # CS231n: "e-7 or smaller; W2 e-5 OK at reg=0" (tiny gradients make the ratio noisy).
    assert max(errors.values()) < 1e-5, errors


@pytest.mark.parametrize("normalization", ["batchnorm", "layernorm"])
def test_fc_net_with_normalization_gradients_match_numerical_gradients(rng, normalization):
    N, D, H1, H2, C = 4, 15, 20, 30, 10
    X, y = rng.standard_normal((N, D)), rng.integers(C, size=N)
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, reg=0.5,
                              normalization=normalization, weight_scale=5e-2, dtype=np.float64,
                              seed=0)
    assert {"gamma1", "beta1", "gamma2", "beta2"} <= set(model.params)
    assert "gamma3" not in model.params       # no normalisation after the last affine layer
    errors = max_grad_errors(model, X, y)
    # CS231n: "1e-4~1e-10 for W, 1e-8~1e-10 for b, 1e-8~1e-9 beta/gamma".
    assert max(errors.values()) < 1e-4, errors
    assert max(errors[k] for k in ("gamma1", "beta1", "gamma2", "beta2")) < 1e-6, errors


@pytest.mark.parametrize("dropout", [0.25, 0.5])
def test_fc_net_with_seeded_dropout_gradients_match_numerical_gradients(rng, dropout):
    N, D, H1, H2, C = 2, 15, 20, 30, 10
    X, y = rng.standard_normal((N, D)), rng.integers(C, size=N)
    # An int seed fixes the dropout masks, so every loss call draws the same mask.
    model = FullyConnectedNet([H1, H2], input_dim=D, num_classes=C, dropout=dropout,
                              weight_scale=5e-2, dtype=np.float64, seed=123)
    errors = max_grad_errors(model, X, y)
    # CS231n: "e-6 or less".
    assert max(errors.values()) < 1e-5, errors


def test_fc_net_dropout_is_active_in_training_and_off_at_test_time(rng):
    X, y = rng.standard_normal((50, 10)), rng.integers(3, size=50)
    model = FullyConnectedNet([100], input_dim=10, num_classes=3, dropout=0.5,
                              weight_scale=1e-1, dtype=np.float64, seed=None)
    model_no_drop = FullyConnectedNet([100], input_dim=10, num_classes=3, dropout=0.0,
                                      weight_scale=1e-1, dtype=np.float64)
    model_no_drop.params = {k: v.copy() for k, v in model.params.items()}
    # Test mode is the identity, so scores agree with the dropout-free twin ...
    np.testing.assert_allclose(model.loss(X), model_no_drop.loss(X), rtol=1e-12)
    # ... while training losses differ (a random half of the hidden units is dropped).
    assert model.loss(X, y)[0] != model_no_drop.loss(X, y)[0]


def test_fc_net_batchnorm_running_statistics_are_used_at_test_time(rng):
    X, y = 3 + 2 * rng.standard_normal((40, 6)), rng.integers(4, size=40)
    model = FullyConnectedNet([8], input_dim=6, num_classes=4, normalization="batchnorm",
                              dtype=np.float64, seed=0)
    model.loss(X, y)                       # train mode: creates and updates running stats
    running_mean = model.bn_params[0]["running_mean"].copy()
    scores_before = model.loss(X)          # test mode: must not change running stats
    np.testing.assert_array_equal(model.bn_params[0]["running_mean"], running_mean)
    np.testing.assert_array_equal(model.loss(X), scores_before)
    assert model.bn_params[0]["mode"] == "test"


def test_fc_net_has_cs231n_parameter_names_and_shapes():
    model = FullyConnectedNet([20, 30], input_dim=15, num_classes=10, normalization="batchnorm")
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (15, 20), "b1": (20,), "gamma1": (20,), "beta1": (20,),
                      "W2": (20, 30), "b2": (30,), "gamma2": (30,), "beta2": (30,),
                      "W3": (30, 10), "b3": (10,)}
    assert all(v.dtype == np.float32 for v in model.params.values())


# ---------------------------------------------------------------- ThreeLayerConvNet / ConvNet

def test_three_layer_conv_net_has_contract_parameter_shapes():
    model = ThreeLayerConvNet(input_dim=(3, 32, 32), num_filters=32, filter_size=7,
                              hidden_dim=100, num_classes=10)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == {"W1": (32, 3, 7, 7), "b1": (32,), "W2": (32 * 16 * 16, 100), "b2": (100,),
                      "W3": (100, 10), "b3": (10,)}
    assert all(v.dtype == np.float32 for v in model.params.values())


@pytest.mark.parametrize("reg", [0.0, 0.5])
def test_three_layer_conv_net_gradients_match_numerical_gradients(rng, reg):
    # T13 setup, with weights large enough that the relu/pool kinks are not crossed by h.
    X, y = rng.standard_normal((2, 3, 8, 8)), rng.integers(10, size=2)
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=3, filter_size=3, hidden_dim=7,
                              weight_scale=1e-1, reg=reg, dtype=np.float64, seed=0)
    errors = max_grad_errors(model, X, y)
    # CS231n accepts "up to e-2" with weight_scale 1e-3 and h 1e-6, where round-off dominates;
    # with weights of 0.1 the centred differences are accurate to ~1e-8.
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("hidden_normalization", [None, "batchnorm", "layernorm"])
def test_conv_net_gradients_match_numerical_gradients(rng, hidden_normalization):
    X, y = rng.standard_normal((4, 2, 6, 6)), rng.integers(5, size=4)
    conv_layers = [{"num_filters": 3, "filter_size": 3, "batchnorm": True, "pool": True},
                   {"num_filters": 4, "filter_size": 3}]
    model = ConvNet(input_dim=(2, 6, 6), conv_layers=conv_layers, hidden_dims=[6],
                    num_classes=5, hidden_normalization=hidden_normalization, reg=0.1,
                    dtype=np.float64, seed=0)
    errors = max_grad_errors(model, X, y)
    # Batchnorm subtracts the batch mean, so the bias just before it (b1, and b3 when the
    # hidden layer uses batchnorm) has no effect: its gradient is ~0 and the ratio is noise.
    no_effect = {"b1", "b3"} if hidden_normalization == "batchnorm" else {"b1"}
    assert max(v for k, v in errors.items() if k not in no_effect) < 1e-5, errors
    _, grads = model.loss(X, y)
    assert all(np.abs(grads[k]).max() < 1e-10 for k in no_effect)


def test_conv_net_numbers_layers_in_order_and_keeps_dtype(rng):
    model = ConvNet(input_dim=(1, 8, 8), conv_layers=[
        {"num_filters": 4, "filter_size": 3, "pool": True, "batchnorm": True},
        {"num_filters": 6, "filter_size": 5, "pool": True}], hidden_dims=[10, 12],
        num_classes=3, hidden_normalization="batchnorm", seed=0)
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes["W1"] == (4, 1, 3, 3) and shapes["gamma1"] == (4,)
    assert shapes["W2"] == (6, 4, 5, 5) and "gamma2" not in shapes
    assert shapes["W3"] == (6 * 2 * 2, 10) and shapes["gamma3"] == (10,)
    assert shapes["W4"] == (10, 12) and shapes["gamma4"] == (12,)
    assert shapes["W5"] == (12, 3) and "gamma5" not in shapes
    X = rng.standard_normal((3, 1, 8, 8))
    scores = model.loss(X)
    assert scores.shape == (3, 3) and scores.dtype == np.float32
    _, grads = model.loss(X, np.array([0, 1, 2]))
    assert set(grads) == set(model.params)
    assert all(grads[k].dtype == np.float32 and grads[k].shape == model.params[k].shape
               for k in grads)


@pytest.mark.parametrize("weight_init, expected_std", [("he", np.sqrt(2 / 27)),
                                                       ("xavier", np.sqrt(1 / 27)),
                                                       (0.05, 0.05)])
def test_conv_net_weight_init_sets_the_weight_scale(weight_init, expected_std):
    model = ConvNet(input_dim=(3, 16, 16), conv_layers=[{"num_filters": 200, "filter_size": 3}],
                    hidden_dims=[], weight_init=weight_init, seed=0)
    # 200 * 27 = 5400 draws: the sample std is within ~2% of the true one.
    assert model.params["W1"].std() == pytest.approx(expected_std, rel=0.05)


# ---------------------------------------------------------------- shared behaviour

def small_models():
    return {
        "TwoLayerNet": (TwoLayerNet(input_dim=64, hidden_dim=20, num_classes=10, seed=0),
                        (1, 8, 8)),
        "FullyConnectedNet": (FullyConnectedNet([20, 20], input_dim=64, num_classes=10,
                                                weight_scale=1e-3, dtype=np.float64, seed=0),
                              (1, 8, 8)),
        "ThreeLayerConvNet": (ThreeLayerConvNet(input_dim=(1, 8, 8), num_filters=4,
                                                filter_size=3, hidden_dim=10, dtype=np.float64,
                                                seed=0), (1, 8, 8)),
        "ConvNet": (ConvNet(input_dim=(1, 8, 8), conv_layers=[{"num_filters": 4, "pool": True}],
                            hidden_dims=[10], weight_init=1e-3, dtype=np.float64, seed=0),
                    (1, 8, 8)),
    }


@pytest.mark.parametrize("name", list(small_models()))
def test_initial_loss_with_small_weights_is_log_num_classes(rng, name):
    model, shape = small_models()[name]
    X, y = rng.standard_normal((50, *shape)), rng.integers(10, size=50)
    loss, _ = model.loss(X, y)
    # Near-zero weights give near-uniform scores: loss = -log(1/10) = 2.3026 (CS231n: 2.302586).
    assert loss == pytest.approx(np.log(10), abs=1e-2)


@pytest.mark.parametrize("name", list(small_models()))
def test_regularisation_raises_the_loss_by_half_reg_sum_of_squared_weights(rng, name):
    model, shape = small_models()[name]
    X, y = rng.standard_normal((5, *shape)), rng.integers(10, size=5)
    loss0, grads0 = model.loss(X, y)
    model.reg = 10.0
    loss1, grads1 = model.loss(X, y)
    weights = [k for k in model.params if k.startswith("W")]
    penalty = sum(0.5 * 10.0 * np.sum(model.params[k] ** 2) for k in weights)
    assert loss1 > loss0
    assert loss1 - loss0 == pytest.approx(penalty, rel=1e-9)
    for k in model.params:
        extra = 10.0 * model.params[k] if k.startswith("W") else 0.0   # biases: no penalty
        np.testing.assert_allclose(grads1[k], grads0[k] + extra, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", list(small_models()))
def test_model_rejects_a_wrongly_shaped_batch_with_a_clear_message(rng, name):
    model, _ = small_models()[name]
    with pytest.raises(ValueError, match="X must have shape"):
        model.loss(rng.standard_normal((2, 1, 8, 7)))
    with pytest.raises(TypeError, match="X must have dtype float32 or float64"):
        model.loss(np.zeros((2, 1, 8, 8), dtype=np.int64))
    with pytest.raises(ValueError, match="y must have length 2"):
        model.loss(rng.standard_normal((2, 1, 8, 8)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"y must hold labels in \[0, 10\)"):
        model.loss(rng.standard_normal((2, 1, 8, 8)), np.array([0, 10]))


def test_model_casts_the_batch_to_its_dtype(rng):
    model = ConvNet(input_dim=(1, 8, 8), conv_layers=[{"num_filters": 2}], hidden_dims=[],
                    dtype=np.float32, seed=0)
    assert model.loss(rng.standard_normal((2, 1, 8, 8))).dtype == np.float32
    model64 = TwoLayerNet(input_dim=4, hidden_dim=3, num_classes=2)
    assert model64.loss(rng.standard_normal((2, 4)).astype(np.float32)).dtype == np.float64


def test_seeded_models_are_reproducible_and_unseeded_follow_numpy_global_seed():
    a = ConvNet(input_dim=(1, 8, 8), seed=7)
    b = ConvNet(input_dim=(1, 8, 8), seed=7)
    c = ConvNet(input_dim=(1, 8, 8), seed=8)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert not np.array_equal(a.params["W1"], c.params["W1"])
    np.random.seed(231)
    d = FullyConnectedNet([5], input_dim=4, num_classes=3)
    np.random.seed(231)
    e = FullyConnectedNet([5], input_dim=4, num_classes=3)
    np.testing.assert_array_equal(d.params["W1"], e.params["W1"])


@pytest.mark.parametrize("make, message", [
    (lambda: FullyConnectedNet(20), "hidden_dims must be a list"),
    (lambda: FullyConnectedNet([20, 0]), r"hidden_dims\[1\] must be a positive int"),
    (lambda: FullyConnectedNet([20], normalization="groupnorm"), "normalization must be one of"),
    (lambda: FullyConnectedNet([20], dropout=1.0), r"dropout must be in \[0, 1\)"),
    (lambda: FullyConnectedNet([20], dtype=np.int32), "dtype must be np.float32 or np.float64"),
    (lambda: TwoLayerNet(weight_scale=-1.0), "weight_scale must be a finite number > 0"),
    (lambda: TwoLayerNet(reg=-0.1), "reg must be a finite number >= 0"),
    (lambda: ThreeLayerConvNet(input_dim=(3, 32)), r"input_dim must be a \(C, H, W\) tuple"),
    (lambda: ThreeLayerConvNet(input_dim=(3, 1, 1), filter_size=3), "too small"),
    (lambda: ConvNet(conv_layers=[{"filters": 3}]), r"unknown key\(s\) \['filters'\]"),
    (lambda: ConvNet(conv_layers=[{"filter_size": 3}]), "needs 'num_filters'"),
    (lambda: ConvNet(conv_layers=[{"num_filters": 3, "pool": "yes"}]), "must be True or False"),
    (lambda: ConvNet(input_dim=(1, 2, 2), conv_layers=[{"num_filters": 2, "pool": True}] * 2),
     "too small"),
    (lambda: ConvNet(weight_init="glorot"), "weight_init must be 'he', 'xavier' or a number"),
    (lambda: ConvNet(hidden_normalization="instancenorm"), "hidden_normalization must be"),
])
def test_model_constructors_reject_bad_arguments(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()
