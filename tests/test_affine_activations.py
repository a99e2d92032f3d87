"""Tests for course_lib.layers.affine and course_lib.layers.activations.

Checked against CS231n's published vectors (T6, T7 of REFERENCE_VALUES.md), against the loop
implementations in tests/naive_dense.py, and against numerical gradients (float64).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from naive_dense import (
    SELU_ALPHA_REF,
    SELU_SCALE_REF,
    activation_naive,
    affine_backward_naive,
    affine_forward_naive,
    prelu_forward_naive,
)

from course_lib.gradient_check import eval_numerical_gradient_array, rel_error
from course_lib.layers import activations as act
from course_lib.layers.affine import affine_backward, affine_forward

DTYPES = [np.float64, np.float32]


def away_from_zero(rng, shape, gap=0.1):
    """Normal draws pushed at least `gap` away from 0, so no numerical-gradient step (h = 1e-5)
    crosses the kink of relu, leaky relu, prelu or elu."""
    z = rng.standard_normal(shape)
    return np.sign(z) * (gap + np.abs(z))


# Every elementwise activation: name -> (forward, backward, keyword arguments of the forward).
ACTIVATIONS = {
    "relu": (act.relu_forward, act.relu_backward, {}),
    "leaky_relu": (act.leaky_relu_forward, act.leaky_relu_backward, {"alpha": 0.2}),
    "sigmoid": (act.sigmoid_forward, act.sigmoid_backward, {}),
    "tanh": (act.tanh_forward, act.tanh_backward, {}),
    "elu": (act.elu_forward, act.elu_backward, {"alpha": 1.3}),
    "selu": (act.selu_forward, act.selu_backward, {}),
    "swish": (act.swish_forward, act.swish_backward, {"beta": 1.7}),
}


# --------------------------------------------------------------------------- affine
def test_affine_forward_matches_cs231n_reference_T6():
    num_inputs, input_shape, output_dim = 2, (4, 5, 6), 3
    input_size = num_inputs * np.prod(input_shape)
    weight_size = output_dim * np.prod(input_shape)
    x = np.linspace(-0.1, 0.5, num=input_size).reshape(num_inputs, *input_shape)
    w = np.linspace(-0.2, 0.3, num=weight_size).reshape(np.prod(input_shape), output_dim)
    b = np.linspace(-0.3, 0.1, num=output_dim)
    out, _ = affine_forward(x, w, b)
    correct_out = np.array([[1.49834967, 1.70660132, 1.91485297],
                            [3.25553199, 3.5141327, 3.77273342]])
    # The published values are rounded to 8 decimals (|error| <= 5e-9 on values >= 1.49), so
    # rel_error <= 5e-9 / 2.99 = 1.7e-9 (CS231n prints 9.77e-10; "around e-9 or less").
    assert rel_error(out, correct_out) < 2e-9


def test_affine_backward_matches_numerical_gradient_cs231n_setup():
    np.random.seed(231)
    x = np.random.randn(10, 2, 3)
    w = np.random.randn(6, 5)
    b = np.random.randn(5)
    dout = np.random.randn(10, 5)
    dx_num = eval_numerical_gradient_array(lambda x: affine_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: affine_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: affine_forward(x, w, b)[0], b, dout)
    dx, dw, db = affine_backward(dout, affine_forward(x, w, b)[1])
    # CS231n: "around e-10" (printed dx 5.4e-11, dw 9.9e-11, db 2.4e-11); the forward is
    # linear, so the centred difference is exact up to rounding (~1e-16 / h = 1e-11).
    assert rel_error(dx, dx_num) < 1e-9
    assert rel_error(dw, dw_num) < 1e-9
    assert rel_error(db, db_num) < 1e-9


def test_affine_matches_loop_reference_on_4d_input(rng):
    x = rng.standard_normal((3, 2, 3, 4))
    w = rng.standard_normal((24, 5))
    b = rng.standard_normal(5)
    dout = rng.standard_normal((3, 5))
    out, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(dout, cache)
    ref_dx, ref_dw, ref_db = affine_backward_naive(dout, x, w)
    # float64, different summation orders on sums of ~24 terms of size ~1: 1e-12 is ~1e4 ulps.
    np.testing.assert_allclose(out, affine_forward_naive(x, w, b), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=0, atol=1e-12)
    np.testing.assert_allclose(dw, ref_dw, rtol=0, atol=1e-12)
    np.testing.assert_allclose(db, ref_db, rtol=0, atol=1e-12)
    assert dx.shape == x.shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_output_and_gradients_follow_x_dtype(rng, dtype):
    x = rng.standard_normal((4, 6)).astype(dtype)
    w = rng.standard_normal((6, 3))            # float64 parameters are cast to x's dtype
    b = rng.standard_normal(3).astype(np.float32)
    out, cache = affine_forward(x, w, b)
    dx, dw, db = affine_backward(np.ones((4, 3)), cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    # float32: 6-term dot products of O(1) values, relative rounding ~1e-7 each.
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(out, affine_forward_naive(x, w, b), rtol=0, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_split_over_threads_gives_the_single_thread_result(rng, monkeypatch, dtype):
    # With several BLAS threads configured, the forward splits the batch's rows and the
    # backward the features over threads (course_lib/kernels/threads.py); force it on a small
    # problem with uneven slices and compare with the plain products.
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import course_lib.kernels.threads as threads
    monkeypatch.setattr(threads, "MIN_MACS_PER_THREAD", 1)
    x = rng.standard_normal((7, 3, 5, 3)).astype(dtype)        # D = 45 features
    w = rng.standard_normal((45, 11)).astype(dtype)
    b = rng.standard_normal(11).astype(dtype)
    dout = rng.standard_normal((7, 11)).astype(dtype)
    with threadpoolctl.threadpool_limits(limits=3, user_api="blas"):
        out, cache = affine_forward(x, w, b)
        dx, dw, db = affine_backward(dout, cache)
    x_rows = x.reshape(7, 45)
    tol = 1e-5 if dtype == np.float32 else 1e-12  # float32: BLAS blocking may differ by ulps
    np.testing.assert_allclose(out, x_rows @ w + b, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, (dout @ w.T).reshape(x.shape), rtol=tol, atol=tol)
    np.testing.assert_allclose(dw, x_rows.T @ dout, rtol=tol, atol=tol)
    np.testing.assert_allclose(db, dout.sum(axis=0), rtol=tol, atol=tol)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == dtype


def test_affine_does_not_modify_its_inputs(rng):
    x, w, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((6, 5)), rng.standard_normal(5)
    dout = rng.standard_normal((4, 5))
    copies = [a.copy() for a in (x, w, b, dout)]
    affine_backward(dout, affine_forward(x, w, b)[1])
    for original, copy in zip((x, w, b, dout), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


def test_affine_rejects_mismatched_shapes_with_clear_messages(rng):
    x = rng.standard_normal((2, 4, 5, 6))
    with pytest.raises(ValueError, match=r"w must have shape \(D, M\) with D = 4 \* 5 \* 6 = 120"):
        affine_forward(x, rng.standard_normal((60, 3)), rng.standard_normal(3))
    with pytest.raises(ValueError, match=r"b must have shape \(M,\) with M=3"):
        affine_forward(x, rng.standard_normal((120, 3)), rng.standard_normal(4))
    with pytest.raises(ValueError, match="x must be at least 2-D"):
        affine_forward(rng.standard_normal(6), rng.standard_normal((6, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="w must be 2-D"):
        affine_forward(x, rng.standard_normal((120, 3, 1)), np.zeros(3))
    with pytest.raises(TypeError, match="w must be a NumPy ndarray"):
        affine_forward(x, [[1.0] * 3] * 120, np.zeros(3))
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        affine_forward(np.ones((2, 6), dtype=np.int64), rng.standard_normal((6, 3)), np.zeros(3))


def test_affine_backward_rejects_wrong_dout_shape_and_foreign_cache(rng):
    x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 3)), np.zeros(3)
    _, cache = affine_forward(x, w, b)
    with pytest.raises(ValueError, match=r"dout must have the shape of affine_forward's output"):
        affine_backward(np.ones((4, 4)), cache)
    _, relu_cache = act.relu_forward(x)
    with pytest.raises(TypeError, match="cache returned by affine_forward"):
        affine_backward(np.ones((4, 3)), relu_cache)
    _, swish_cache = act.swish_forward(x)  # same tuple length as affine's cache, other tag
    with pytest.raises(TypeError, match="cache returned by affine_forward"):
        affine_backward(np.ones((4, 3)), swish_cache)


# --------------------------------------------------------------------------- relu (CS231n)
def test_relu_forward_matches_cs231n_reference_T7():
    x = np.linspace(-0.5, 0.5, num=12).reshape(3, 4)
    out, _ = act.relu_forward(x)
    correct_out = np.array([[0., 0., 0., 0.],
                            [0., 0., 0.04545455, 0.13636364],
                            [0.22727273, 0.31818182, 0.40909091, 0.5]])
    # CS231n: "on the order of e-8" (printed 5.0e-8, from the 8-decimal rounding).
    assert rel_error(out, correct_out) < 1e-7


def test_relu_backward_matches_numerical_gradient_cs231n_setup():
    np.random.seed(231)
    x = np.random.randn(10, 10)
    dout = np.random.randn(*x.shape)
    dx_num = eval_numerical_gradient_array(lambda x: act.relu_forward(x)[0], x, dout)
    dx = act.relu_backward(dout, act.relu_forward(x)[1])
    assert rel_error(dx, dx_num) < 1e-10  # CS231n: "e-12" (printed 3.28e-12)


def test_relu_gradient_at_zero_is_zero():
    x = np.array([[-1.0, 0.0, 2.0]])
    dx = act.relu_backward(np.ones_like(x), act.relu_forward(x)[1])
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 1.0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward_is_a_select_not_a_product(dtype):
    # dx = dout where x > 0, else exactly 0, even where dout is inf or NaN (a product with the
    # mask would give NaN there) and where x is NaN (not > 0).
    x = np.array([[-1.0, 0.0, 2.0, np.nan, 3.0, -2.0]], dtype=dtype)
    dout = np.array([[np.inf, np.nan, -np.inf, 1.0, np.nan, -np.inf]], dtype=dtype)
    dx = act.relu_backward(dout, act.relu_forward(x)[1])
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, [[0.0, 0.0, -np.inf, 0.0, np.nan, 0.0]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_backward_takes_strided_views_and_matches_np_where(rng, dtype):
    # The kernel works on contiguous copies: views with strides and negative steps must give
    # np.where's answer bit for bit (a large batch, so the vector loop and its tail both run).
    x = rng.standard_normal((7, 33, 9, 11)).astype(dtype).transpose(0, 2, 3, 1)[:, ::-1]
    dout = rng.standard_normal((33, 7, 9, 11)).astype(dtype).transpose(1, 2, 3, 0)[:, ::-1]
    dx = act.relu_backward(dout, act.relu_forward(x)[1])
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_array_equal(dx, np.where(x > 0, dout, 0))


# --------------------------------------------------------------------------- all activations
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_forward_matches_scalar_loop_reference(rng, name):
    forward, _, kwargs = ACTIVATIONS[name]
    x = 3 * rng.standard_normal((4, 5))
    out, _ = forward(x, **kwargs)
    # float64 elementwise functions: libm vs NumPy differ by a few ulps at most.
    np.testing.assert_allclose(out, activation_naive(name, x, **kwargs), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_matches_numerical_gradient(rng, name):
    forward, backward, kwargs = ACTIVATIONS[name]
    x = away_from_zero(rng, (3, 2, 4))
    dout = rng.standard_normal(x.shape)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x, **kwargs)[0], x, dout)
    dx = backward(dout, forward(x, **kwargs)[1])
    # Smooth away from the kinks: centred differences are O(h^2) = 1e-10 accurate.
    assert rel_error(dx, dx_num) < 1e-8


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_output_and_gradient_follow_x_dtype(rng, name, dtype):
    forward, backward, kwargs = ACTIVATIONS[name]
    x = rng.standard_normal((3, 4)).astype(dtype)
    out, cache = forward(x, **kwargs)
    dx = backward(np.ones((3, 4)), cache)  # a float64 dout does not promote dx
    assert out.dtype == dx.dtype == dtype
    assert out.shape == dx.shape == x.shape


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_does_not_modify_its_inputs(rng, name):
    forward, backward, kwargs = ACTIVATIONS[name]
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    x_copy, dout_copy = x.copy(), dout.copy()
    backward(dout, forward(x, **kwargs)[1])
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dout, dout_copy)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_rejects_wrong_dout_shape_and_foreign_cache(rng, name):
    forward, backward, kwargs = ACTIVATIONS[name]
    x = rng.standard_normal((3, 4))
    _, cache = forward(x, **kwargs)
    with pytest.raises(ValueError, match="dout must have the shape"):
        backward(np.ones((4, 3)), cache)
    _, foreign = affine_forward(x, np.ones((4, 2)), np.zeros(2))
    with pytest.raises(TypeError, match="cache"):
        backward(np.ones((3, 4)), foreign)
    other = "tanh" if name != "tanh" else "sigmoid"  # (relu: same cache length, other tag)
    _, foreign = ACTIVATIONS[other][0](x)
    with pytest.raises(TypeError, match=f"cache returned by {name}_forward"):
        backward(np.ones((3, 4)), foreign)


def test_activations_reject_non_float_input():
    for forward, _, kwargs in ACTIVATIONS.values():
        with pytest.raises(TypeError, match="x must"):
            forward(np.arange(4), **kwargs)
        with pytest.raises(TypeError, match="x must be a NumPy ndarray"):
            forward([1.0, -1.0], **kwargs)


def test_leaky_relu_default_slope_is_0_01():
    out, _ = act.leaky_relu_forward(np.array([-2.0, 3.0]))
    np.testing.assert_array_equal(out, [-0.02, 3.0])


def test_leaky_relu_rejects_non_numeric_alpha():
    with pytest.raises(TypeError, match="alpha must be a real number"):
        act.leaky_relu_forward(np.ones(3), alpha="0.1")
    with pytest.raises(ValueError, match="alpha must be a finite number"):
        act.leaky_relu_forward(np.ones(3), alpha=float("nan"))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_is_stable_for_huge_inputs_without_warnings(dtype):
    x = np.array([-1e4, -1000.0, -50.0, 0.0, 50.0, 1000.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow RuntimeWarning would fail the test
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out, cache = act.sigmoid_forward(x)
            dx = act.sigmoid_backward(np.ones_like(x), cache)
    assert out.dtype == dtype and np.all(np.isfinite(out)) and np.all(np.isfinite(dx))
    assert out[0] == 0.0 and out[-1] == 1.0 and out[3] == 0.5
    # sigmoid(-x) = 1 - sigmoid(x) (exact where both sides are representable)
    np.testing.assert_allclose(out[::-1], 1 - out, atol=np.finfo(dtype).eps)


def test_elu_does_not_overflow_for_large_positive_inputs():
    x = np.array([-1000.0, 0.5, 1000.0, 1e300])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            out, cache = act.elu_forward(x)
            dx = act.elu_backward(np.ones_like(x), cache)
            selu_out, _ = act.selu_forward(x)
    np.testing.assert_array_equal(out, [-1.0, 0.5, 1000.0, 1e300])
    np.testing.assert_array_equal(dx, [0.0, 1.0, 1.0, 1.0])
    assert selu_out[0] == pytest.approx(-SELU_SCALE_REF * SELU_ALPHA_REF, rel=1e-15)


def test_selu_uses_the_standard_constants_and_self_normalises():
    assert act.SELU_ALPHA == pytest.approx(1.6732632423543772, rel=1e-15)
    assert act.SELU_SCALE == pytest.approx(1.0507009873554805, rel=1e-15)
    out, _ = act.selu_forward(np.array([1.0, -np.inf]))
    assert out[0] == pytest.approx(1.0507009873554805, rel=1e-15)
    assert out[1] == pytest.approx(-1.0507009873554805 * 1.6732632423543772, rel=1e-15)
    # The defining property: N(0, 1) in -> mean 0, variance 1 out. With 10^6 draws the standard
    # error of the mean is ~1e-3 and of the variance ~2e-3; 1e-2 is > 4 standard errors.
    z = np.random.default_rng(0).standard_normal(1_000_000)
    s, _ = act.selu_forward(z)
    assert abs(s.mean()) < 1e-2
    assert abs(s.var() - 1) < 1e-2


def test_swish_with_beta_zero_is_half_x_and_beta_one_is_silu(rng):
    x = rng.standard_normal(7)
    np.testing.assert_allclose(act.swish_forward(x, beta=0.0)[0], x / 2, rtol=1e-15)
    np.testing.assert_allclose(act.swish_forward(x)[0], x / (1 + np.exp(-x)), rtol=1e-14)


def test_tanh_and_sigmoid_backward_use_the_cached_output():
    x = np.array([0.0, 1.0])
    dx = act.tanh_backward(np.ones(2), act.tanh_forward(x)[1])
    np.testing.assert_allclose(dx, [1.0, 1 - np.tanh(1.0) ** 2], rtol=1e-15)
    dx = act.sigmoid_backward(np.ones(2), act.sigmoid_forward(x)[1])
    s = 1 / (1 + np.exp(-1.0))
    np.testing.assert_allclose(dx, [0.25, s * (1 - s)], rtol=1e-15)


# --------------------------------------------------------------------------- prelu
PRELU_CASES = {
    "scalar": ((4, 5), lambda rng: 0.25),
    "0-d array": ((4, 5), lambda rng: np.array(0.3)),
    "per feature (N, D)": ((4, 5), lambda rng: rng.uniform(0.05, 0.5, 5)),
    "per channel (N, C, H, W)": ((2, 3, 4, 4), lambda rng: rng.uniform(0.05, 0.5, 3)),
}


@pytest.mark.parametrize("case", sorted(PRELU_CASES))
def test_prelu_matches_loop_reference_and_numerical_gradients(rng, case):
    shape, make_alpha = PRELU_CASES[case]
    x = away_from_zero(rng, shape)
    alpha = make_alpha(rng)
    dout = rng.standard_normal(shape)
    out, cache = act.prelu_forward(x, alpha)
    np.testing.assert_allclose(out, prelu_forward_naive(x, alpha), rtol=1e-15, atol=0)
    dx, dalpha = act.prelu_backward(dout, cache)
    assert dalpha.shape == np.shape(alpha) and dalpha.dtype == np.float64
    dx_num = eval_numerical_gradient_array(lambda x: act.prelu_forward(x, alpha)[0], x, dout)
    alpha_arr = np.array(alpha, dtype=np.float64)
    dalpha_num = eval_numerical_gradient_array(
        lambda a: act.prelu_forward(x, a)[0], alpha_arr, dout)
    # prelu is linear in alpha and piecewise linear in x: the differences are exact up to
    # rounding (~1e-16 / 1e-5).
    assert rel_error(dx, dx_num) < 1e-9
    assert rel_error(dalpha, dalpha_num) < 1e-9


def test_prelu_with_fixed_alpha_equals_leaky_relu(rng):
    x = rng.standard_normal((5, 6)).astype(np.float32)
    out, cache = act.prelu_forward(x, 0.1)
    ref, ref_cache = act.leaky_relu_forward(x, alpha=0.1)
    np.testing.assert_array_equal(out, ref)
    dout = np.ones_like(x)
    dx, dalpha = act.prelu_backward(dout, cache)
    np.testing.assert_array_equal(dx, act.leaky_relu_backward(dout, ref_cache))
    assert out.dtype == dx.dtype == dalpha.dtype == np.float32


def test_prelu_rejects_alpha_of_the_wrong_shape(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"alpha of shape \(C,\) must have C=3"):
        act.prelu_forward(x, np.ones(4))
    with pytest.raises(ValueError, match="alpha must be 0-D or 1-D"):
        act.prelu_forward(x, np.ones((3, 1)))
    with pytest.raises(TypeError, match="alpha must be a real number"):
        act.prelu_forward(x, None)
    with pytest.raises(ValueError, match="must have C=x.shape"):
        act.prelu_forward(np.ones(3), np.ones(3))
