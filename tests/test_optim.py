"""Tests for course_lib.optim: the six update rules of CONTRACT.md.

Checked against CS231n's published vectors (T10 sgd_momentum, T11 rmsprop, T12 adam of
REFERENCE_VALUES.md) and against the contract's formulas written out by hand, step by step.
The published vectors are printed to 8 decimals, so they agree with exact float64 results to
within 5e-9 in absolute terms: the tests use atol=6e-9 (and also CS231n's relative bounds).
"""

from __future__ import annotations

import numpy as np
import pytest

from course_lib.gradient_check import rel_error
from course_lib.optim import adagrad, adam, rmsprop, sgd, sgd_momentum, sgd_nesterov

RULES = {"sgd": sgd, "sgd_momentum": sgd_momentum, "sgd_nesterov": sgd_nesterov,
         "adagrad": adagrad, "rmsprop": rmsprop, "adam": adam}
STATE_KEYS = {"sgd": (), "sgd_momentum": ("velocity",), "sgd_nesterov": ("velocity",),
              "adagrad": ("cache",), "rmsprop": ("cache",), "adam": ("m", "v")}
ROUNDED_8 = 6e-9  # half a unit in the 8th decimal, plus float64 slack


@pytest.fixture
def cs231n_w_dw():
    N, D = 4, 5
    w = np.linspace(-0.4, 0.6, num=N * D).reshape(N, D)
    dw = np.linspace(-0.6, 0.4, num=N * D).reshape(N, D)
    return w, dw


# --------------------------------------------------------------------------- CS231n vectors
def test_sgd_momentum_matches_cs231n_reference_T10(cs231n_w_dw):
    w, dw = cs231n_w_dw
    v = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    config = {"learning_rate": 1e-3, "velocity": v}
    next_w, _ = sgd_momentum(w, dw, config=config)
    expected_next_w = np.asarray([
        [0.1406, 0.20738947, 0.27417895, 0.34096842, 0.40775789],
        [0.47454737, 0.54133684, 0.60812632, 0.67491579, 0.74170526],
        [0.80849474, 0.87528421, 0.94207368, 1.00886316, 1.07565263],
        [1.14244211, 1.20923158, 1.27602105, 1.34281053, 1.4096]])
    expected_velocity = np.asarray([
        [0.5406, 0.55475789, 0.56891579, 0.58307368, 0.59723158],
        [0.61138947, 0.62554737, 0.63970526, 0.65386316, 0.66802105],
        [0.68217895, 0.69633684, 0.71049474, 0.72465263, 0.73881053],
        [0.75296842, 0.76712632, 0.78128421, 0.79544211, 0.8096]])
    np.testing.assert_allclose(next_w, expected_next_w, rtol=0, atol=ROUNDED_8)
    np.testing.assert_allclose(config["velocity"], expected_velocity, rtol=0, atol=ROUNDED_8)
    assert rel_error(next_w, expected_next_w) < 1e-8         # "around e-8 or less"
    assert rel_error(config["velocity"], expected_velocity) < 1e-8
    assert config["momentum"] == 0.9                          # the default was filled in


def test_rmsprop_matches_cs231n_reference_T11(cs231n_w_dw):
    w, dw = cs231n_w_dw
    cache = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    config = {"learning_rate": 1e-2, "cache": cache}
    next_w, _ = rmsprop(w, dw, config=config)
    expected_next_w = np.asarray([
        [-0.39223849, -0.34037513, -0.28849239, -0.23659121, -0.18467247],
        [-0.132737, -0.08078555, -0.02881884, 0.02316247, 0.07515774],
        [0.12716641, 0.17918792, 0.23122175, 0.28326742, 0.33532447],
        [0.38739248, 0.43947102, 0.49155973, 0.54365823, 0.59576619]])
    expected_cache = np.asarray([
        [0.5976, 0.6126277, 0.6277108, 0.64284931, 0.65804321],
        [0.67329252, 0.68859723, 0.70395734, 0.71937285, 0.73484377],
        [0.75037008, 0.7659518, 0.78158892, 0.79728144, 0.81302936],
        [0.82883269, 0.84469141, 0.86060554, 0.87657507, 0.8926]])
    np.testing.assert_allclose(next_w, expected_next_w, rtol=0, atol=ROUNDED_8)
    np.testing.assert_allclose(config["cache"], expected_cache, rtol=0, atol=ROUNDED_8)
    assert rel_error(next_w, expected_next_w) < 1e-7          # "around e-7 or less"
    assert rel_error(config["cache"], expected_cache) < 1e-7


def test_adam_matches_cs231n_reference_T12(cs231n_w_dw):
    w, dw = cs231n_w_dw
    m = np.linspace(0.6, 0.9, num=20).reshape(4, 5)
    v = np.linspace(0.7, 0.5, num=20).reshape(4, 5)
    config = {"learning_rate": 1e-2, "m": m, "v": v, "t": 5}
    next_w, _ = adam(w, dw, config=config)
    expected_next_w = np.asarray([
        [-0.40094747, -0.34836187, -0.29577703, -0.24319299, -0.19060977],
        [-0.1380274, -0.08544591, -0.03286534, 0.01971428, 0.0722929],
        [0.1248705, 0.17744702, 0.23002243, 0.28259667, 0.33516969],
        [0.38774145, 0.44031188, 0.49288093, 0.54544852, 0.59801459]])
    expected_v = np.asarray([
        [0.69966, 0.68908382, 0.67851319, 0.66794809, 0.65738853],
        [0.64683452, 0.63628604, 0.6257431, 0.61520571, 0.60467385],
        [0.59414753, 0.58362676, 0.57311152, 0.56260183, 0.55209767],
        [0.54159906, 0.53110598, 0.52061845, 0.51013645, 0.49966]])
    expected_m = np.asarray([
        [0.48, 0.49947368, 0.51894737, 0.53842105, 0.55789474],
        [0.57736842, 0.59684211, 0.61631579, 0.63578947, 0.65526316],
        [0.67473684, 0.69421053, 0.71368421, 0.73315789, 0.75263158],
        [0.77210526, 0.79157895, 0.81105263, 0.83052632, 0.85]])
    # Pins t incremented before use: with t = 5 in the bias correction next_w[0, 0] would be
    # -0.40098988, 4e-5 away, far outside these bounds.
    np.testing.assert_allclose(next_w, expected_next_w, rtol=0, atol=ROUNDED_8)
    np.testing.assert_allclose(config["v"], expected_v, rtol=0, atol=ROUNDED_8)
    np.testing.assert_allclose(config["m"], expected_m, rtol=0, atol=ROUNDED_8)
    assert rel_error(next_w, expected_next_w) < 1e-6          # "e-7 or less"; <= 1e-6 per notes
    assert config["t"] == 6


# --------------------------------------------------------------------------- formulas by hand
def test_sgd_is_w_minus_learning_rate_times_dw_with_default_1e_2(rng):
    w, dw = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    next_w, config = sgd(w, dw)
    assert config == {"learning_rate": 1e-2}
    np.testing.assert_allclose(next_w, w - 1e-2 * dw, rtol=1e-15)
    next_w, _ = sgd(w, dw, {"learning_rate": 0.5})
    np.testing.assert_allclose(next_w, w - 0.5 * dw, rtol=1e-15)


def test_sgd_momentum_accumulates_velocity_over_steps(rng):
    w = rng.standard_normal(5)
    grads = rng.standard_normal((3, 5))
    lr, mu = 0.1, 0.8
    config = {"learning_rate": lr, "momentum": mu}
    v, expected_w = np.zeros(5), w.copy()
    for g in grads:
        w, config = sgd_momentum(w, g, config)
        v = mu * v - lr * g
        expected_w = expected_w + v
        np.testing.assert_allclose(w, expected_w, rtol=1e-14)
        np.testing.assert_allclose(config["velocity"], v, rtol=1e-14)


def test_sgd_nesterov_follows_the_contract_formula_exactly(rng):
    w, v0 = rng.standard_normal(6), rng.standard_normal(6)
    grads = rng.standard_normal((3, 6))
    lr, mu = 0.05, 0.9
    config = {"learning_rate": lr, "momentum": mu, "velocity": v0}
    v, expected_w = v0.copy(), w.copy()
    for g in grads:
        w, config = sgd_nesterov(w, g, config)
        v_prev = v
        v = mu * v - lr * g
        expected_w = expected_w - mu * v_prev + (1 + mu) * v
        np.testing.assert_allclose(w, expected_w, rtol=1e-14, atol=1e-15)
        np.testing.assert_allclose(config["velocity"], v, rtol=1e-14, atol=1e-15)
    # ... which differs from plain momentum (w + v) by mu * (v - v_prev)
    w2, _ = sgd_momentum(np.zeros(6), grads[0], {"learning_rate": lr, "velocity": v0})
    w3, _ = sgd_nesterov(np.zeros(6), grads[0], {"learning_rate": lr, "velocity": v0})
    assert rel_error(w2, w3) > 1e-2


def test_adagrad_accumulates_squared_gradients(rng):
    w = rng.standard_normal(4)
    grads = rng.standard_normal((3, 4))
    config = {"learning_rate": 0.3}
    cache, expected_w = np.zeros(4), w.copy()
    for g in grads:
        w, config = adagrad(w, g, config)
        cache = cache + g ** 2
        expected_w = expected_w - 0.3 * g / (np.sqrt(cache) + 1e-8)
        np.testing.assert_allclose(w, expected_w, rtol=1e-14)
        np.testing.assert_allclose(config["cache"], cache, rtol=1e-14)
    assert config["epsilon"] == 1e-8


def test_rmsprop_defaults_and_leaky_average(rng):
    w, g = rng.standard_normal(4), rng.standard_normal(4)
    next_w, config = rmsprop(w, g)
    assert (config["learning_rate"], config["decay_rate"], config["epsilon"]) == (1e-2, 0.99,
                                                                                   1e-8)
    cache = 0.01 * g ** 2
    np.testing.assert_allclose(config["cache"], cache, rtol=1e-15)
    np.testing.assert_allclose(next_w, w - 1e-2 * g / (np.sqrt(cache) + 1e-8), rtol=1e-14)


def test_adam_increments_t_before_use_so_the_first_step_is_lr_times_sign(rng):
    w = rng.standard_normal(5)
    dw = np.array([0.5, -2.0, 1e-3, -1e-3, 7.0])
    next_w, config = adam(w, dw)
    assert config["t"] == 1
    assert (config["learning_rate"], config["beta1"], config["beta2"], config["epsilon"]) == (
        1e-3, 0.9, 0.999, 1e-8)
    # t = 1: m_hat = dw and v_hat = dw**2, so the step is lr * dw / (|dw| + eps) ~ lr * sign(dw)
    np.testing.assert_allclose(w - next_w, 1e-3 * dw / (np.abs(dw) + 1e-8), rtol=1e-12)
    np.testing.assert_allclose(w - next_w, 1e-3 * np.sign(dw), rtol=1e-5)
    next_w2, config = adam(next_w, dw, config)
    assert config["t"] == 2


def test_adam_matches_hand_written_loop_over_several_steps(rng):
    w = rng.standard_normal(3)
    grads = rng.standard_normal((4, 3))
    b1, b2, lr, eps = 0.8, 0.95, 0.1, 1e-8
    config = {"learning_rate": lr, "beta1": b1, "beta2": b2}
    m = v = np.zeros(3)
    expected = w.copy()
    for t, g in enumerate(grads, start=1):
        w, config = adam(w, g, config)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g ** 2
        expected = expected - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        np.testing.assert_allclose(w, expected, rtol=1e-13)
        assert config["t"] == t


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_kernel_equals_the_numpy_formula_bit_for_bit(rng, dtype):
    # The update runs as one Numba pass (course_lib/kernels/optim.py); it must give exactly
    # the formula's result in w's dtype, NumPy evaluating it with Python-float scalars (cast
    # to w's dtype), on a large non-contiguous w with tiny, huge and zero gradients.
    w = rng.standard_normal((70, 130)).astype(dtype).T                    # 9,100 values
    grads = [rng.standard_normal(w.shape).astype(dtype) * scale for scale in (1e-6, 1e3, 0.0)]
    lr, b1, b2, eps = 3e-3, 0.85, 0.995, 1e-7
    config = {"learning_rate": lr, "beta1": b1, "beta2": b2, "epsilon": eps}
    m = v = np.zeros_like(w)
    expected = w
    for t, g in enumerate(grads, start=1):
        w, config = adam(w, g, config)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * (g * g)
        expected = expected - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        assert w.dtype == config["m"].dtype == config["v"].dtype == dtype
        np.testing.assert_array_equal(w, expected)
        np.testing.assert_array_equal(config["m"], m)
        np.testing.assert_array_equal(config["v"], v)


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_decreases_a_quadratic(name):
    # f(w) = 0.5 * |w|^2 (gradient w), 50 steps with the defaults except the learning rate:
    # every rule must at least halve f (from 6.5).
    w = np.array([3.0, -2.0])
    config = {"learning_rate": 0.1}
    for _ in range(50):
        w, config = RULES[name](w, w.copy(), config)
    assert 0.5 * np.sum(w ** 2) < 6.5 / 2


# --------------------------------------------------------------------------- conventions
@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_does_not_modify_w_dw_or_the_state_arrays_it_was_given(rng, name):
    w, dw = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    state = {key: rng.random((3, 2)) for key in STATE_KEYS[name]}
    config = {"learning_rate": 0.1, **state}
    copies = {key: value.copy() for key, value in state.items()}
    w_copy, dw_copy = w.copy(), dw.copy()
    next_w, returned = RULES[name](w, dw, config)
    np.testing.assert_array_equal(w, w_copy)
    np.testing.assert_array_equal(dw, dw_copy)
    assert next_w is not w and not np.shares_memory(next_w, w)
    for key, value in state.items():
        np.testing.assert_array_equal(value, copies[key])      # the old array is untouched
        assert returned[key] is not value                       # the dict holds the new state
    assert returned is config                                   # the dict itself is updated


@pytest.mark.parametrize("name", sorted(RULES))
def test_config_none_creates_a_fresh_dict_with_defaults(name):
    w, dw = np.ones(3), np.ones(3)
    _, config1 = RULES[name](w, dw)
    _, config2 = RULES[name](w, dw)
    assert config1 is not config2
    assert config1["learning_rate"] == (1e-3 if name == "adam" else 1e-2)
    for key in STATE_KEYS[name]:
        assert config1[key].shape == w.shape


@pytest.mark.parametrize("name", sorted(RULES))
def test_next_w_and_state_follow_w_dtype(rng, name):
    w = rng.standard_normal((2, 3)).astype(np.float32)
    dw = rng.standard_normal((2, 3))               # float64 gradient
    next_w, config = RULES[name](w, dw, {"learning_rate": np.float64(0.1)})
    assert next_w.dtype == np.float32
    for key in STATE_KEYS[name]:
        assert config[key].dtype == np.float32
    next_w64, _ = RULES[name](w.astype(np.float64), dw, {"learning_rate": 0.1})
    # one float32 rounding of values of size ~1
    np.testing.assert_allclose(next_w, next_w64, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_rejects_negative_learning_rate_and_mismatched_shapes(name):
    w = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"config\['learning_rate'\] must be >= 0"):
        RULES[name](w, w, {"learning_rate": -1e-3})
    with pytest.raises(ValueError, match=r"config\['learning_rate'\] must be finite"):
        RULES[name](w, w, {"learning_rate": float("inf")})
    with pytest.raises(TypeError, match=r"config\['learning_rate'\] must be a number"):
        RULES[name](w, w, {"learning_rate": "0.1"})
    with pytest.raises(ValueError, match=r"dw must have w's shape \(2, 3\); got \(3, 2\)"):
        RULES[name](w, np.ones((3, 2)))
    with pytest.raises(TypeError, match="w must have dtype float32 or float64"):
        RULES[name](np.ones(3, dtype=int), np.ones(3))
    with pytest.raises(TypeError, match="config must be a dict"):
        RULES[name](w, w, [("learning_rate", 0.1)])
    for key in STATE_KEYS[name]:
        with pytest.raises(ValueError, match=rf"config\['{key}'\] must have w's shape"):
            RULES[name](w, w, {key: np.zeros(3)})


def test_zero_learning_rate_is_allowed_and_leaves_w_unchanged(rng):
    w = rng.standard_normal(3)
    for rule in RULES.values():
        next_w, _ = rule(w, rng.standard_normal(3), {"learning_rate": 0.0})
        np.testing.assert_array_equal(next_w, w)


@pytest.mark.parametrize("name, key, value", [
    ("sgd_momentum", "momentum", 1.0), ("sgd_momentum", "momentum", -0.1),
    ("sgd_nesterov", "momentum", 1.5),
    ("rmsprop", "decay_rate", 1.0), ("rmsprop", "decay_rate", -0.5),
    ("adam", "beta1", 1.0), ("adam", "beta2", -0.1),
])
def test_rule_rejects_decay_factors_outside_0_1(name, key, value):
    with pytest.raises(ValueError, match=rf"config\['{key}'\] must be in \[0, 1\)"):
        RULES[name](np.ones(2), np.ones(2), {key: value})


@pytest.mark.parametrize("name", ["adagrad", "rmsprop", "adam"])
def test_rule_rejects_non_positive_epsilon(name):
    with pytest.raises(ValueError, match=r"config\['epsilon'\] must be > 0"):
        RULES[name](np.ones(2), np.ones(2), {"epsilon": 0.0})


def test_adam_rejects_bad_step_counter():
    with pytest.raises(ValueError, match=r"config\['t'\] must be >= 0"):
        adam(np.ones(2), np.ones(2), {"t": -1})
    with pytest.raises(TypeError, match=r"config\['t'\] must be an int"):
        adam(np.ones(2), np.ones(2), {"t": 1.5})
