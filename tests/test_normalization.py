"""Tests for course_lib.layers.normalization: batch, spatial batch, group and layer norm.

The library is checked against tests/naive_normalization.py (an independent loop
implementation with exact fsum statistics and explicit Jacobians), against numerical gradients,
against hand-computed values that pin each convention, and optionally against PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest
from naive_normalization import (
    batchnorm_backward_naive,
    batchnorm_forward_naive,
    groupnorm_backward_naive,
    groupnorm_forward_naive,
    instancenorm_forward_naive,
    layernorm_backward_naive,
    layernorm_forward_naive,
    spatial_batchnorm_backward_naive,
    spatial_batchnorm_forward_naive,
)

from course_lib.gradient_check import eval_numerical_gradient_array, rel_error
from course_lib.layers.dropout import dropout_forward
from course_lib.layers.normalization import (
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

DTYPES = [np.float64, np.float32]

# Tolerances, as a fraction of the largest |expected| value of the array compared.
# float64: the library and the naive loops sum in different orders; both are accurate to
# ~1e-15 here (every test passes at 1e-13), so 1e-12 leaves a margin yet catches any wrong
# formula (those are off by 1e-3 or more).
# float32: outputs are rounded to float32 (eps 6e-8) after a few float32 operations whose
# error grows with |x - mean| / std (here <= ~4): 1e-6 is ~16 ulps. Gradients combine three
# float32 terms that partly cancel: 1e-5. (Observed: every case passes at a third of these.)
TOL = {np.float64: (1e-12, 1e-12), np.float32: (1e-6, 1e-5)}  # (forward, backward)


def assert_close(actual, expected, tol, floor=1e-300):
    """Elementwise |actual - expected| <= tol * max(max|expected|, floor).

    The error is measured against the array's scale; `floor` gives that scale when the
    expected values are themselves the small result of a cancellation (see dx_floor).
    """
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(float(np.max(np.abs(expected))), floor)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=0,
                               atol=tol * scale)


def assert_matches_numerical(analytic, numerical):
    """Centred differences (h = 1e-5) of an O(10) sum carry absolute errors of ~1e-10
    (rounding of f divided by 2h), so compare against the gradient's scale, not per entry:
    1e-7 of the scale. A wrong formula is off by 1e-2 or more."""
    assert_close(analytic, numerical, 1e-7)


def dx_floor(dout, gamma):
    """The size of the terms that make up dx: |dout * gamma| / std(x), with std(x) ~ 5 from
    make(). dx itself can be ~0 by cancellation (e.g. N = 2, where xhat = +-1 exactly
    balances the three terms), and is then compared at the scale of its terms."""
    return float(np.max(np.abs(dout)) * np.max(np.abs(gamma))) / 5.0


def assert_single_value_dx_is_zero(dx, dout, gamma, tol):
    """With one value per normalisation set, xhat = 0 whatever x is, so dx = 0 exactly in
    theory; numerically it is 0 up to the rounding of its terms, whose size is
    |dout * gamma| / sqrt(eps) (var = 0), i.e. ~1e-5 of that size in float32."""
    assert_close(dx, np.zeros(dx.shape), tol, float(np.max(np.abs(dout * gamma))) / np.sqrt(1e-5))


def make(rng, shape, dtype=np.float64, loc=12.0, scale=5.0):
    """Data whose mean is far from 0 and std far from 1, so normalising visibly does something."""
    return (loc + scale * rng.standard_normal(shape)).astype(dtype)


def params(rng, size, dtype=np.float64):
    return rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype)


# =========================================================================== batch norm
BN_SHAPES = [(1, 3), (2, 1), (4, 5), (7, 3), (16, 10), (3, 17)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batchnorm_forward_train_matches_naive(rng, shape, dtype):
    x = make(rng, shape, dtype)
    gamma, beta = params(rng, shape[1], dtype)
    rm0, rv0 = rng.random(shape[1]), rng.random(shape[1]) + 0.5
    bn_param = {"mode": "train", "running_mean": rm0.astype(dtype),
                "running_var": rv0.astype(dtype)}
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    want, want_rm, want_rv = batchnorm_forward_naive(x, gamma, beta, "train",
                                                     running_mean=rm0.astype(dtype),
                                                     running_var=rv0.astype(dtype))
    tol = TOL[dtype][0]
    assert out.dtype == dtype and out.shape == shape
    assert_close(out, want, tol)
    assert_close(bn_param["running_mean"], want_rm, tol)
    assert_close(bn_param["running_var"], want_rv, tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batchnorm_forward_test_mode_matches_naive(rng, dtype):
    x = make(rng, (6, 4), dtype)
    gamma, beta = params(rng, 4, dtype)
    rm, rv = (10 + rng.random(4)).astype(dtype), (20 + rng.random(4)).astype(dtype)
    out, _ = batchnorm_forward(x, gamma, beta, {"mode": "test", "running_mean": rm,
                                                "running_var": rv})
    want, _, _ = batchnorm_forward_naive(x, gamma, beta, "test", running_mean=rm, running_var=rv)
    assert_close(out, want, TOL[dtype][0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
def test_batchnorm_backward_train_matches_naive(rng, shape, dtype, backward):
    x = make(rng, shape, dtype)
    gamma, beta = params(rng, shape[1], dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, dgamma, dbeta = backward(dout, cache)
    want_dx, want_dgamma, want_dbeta = batchnorm_backward_naive(x, gamma, dout, "train")
    tol = TOL[dtype][1]
    assert dx.dtype == dgamma.dtype == dbeta.dtype == dtype
    if shape[0] > 1:  # with N = 1, dx is exactly 0 (checked separately)
        assert_close(dx, want_dx, tol, dx_floor(dout, gamma))
    assert_close(dgamma, want_dgamma, tol)
    assert_close(dbeta, want_dbeta, tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
def test_batchnorm_backward_test_mode_matches_naive(rng, dtype, backward):
    x = make(rng, (5, 3), dtype)
    gamma, beta = params(rng, 3, dtype)
    dout = rng.standard_normal((5, 3)).astype(dtype)
    rm, rv = (11 + rng.random(3)).astype(dtype), (24 + rng.random(3)).astype(dtype)
    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "test", "running_mean": rm,
                                                  "running_var": rv})
    dx, dgamma, dbeta = backward(dout, cache)
    want = batchnorm_backward_naive(x, gamma, dout, "test", running_mean=rm, running_var=rv)
    for got, expected in zip((dx, dgamma, dbeta), want, strict=True):
        assert_close(got, expected, TOL[dtype][1])


@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_backward_alt_equals_graph_backward(rng, mode):
    # CS231n's comparison: N, D = 100, 500; the two derivations agree to rounding (~1e-12).
    x = make(rng, (100, 500))
    gamma, beta = params(rng, 500)
    dout = rng.standard_normal((100, 500))
    bn_param = {"mode": mode, "running_mean": np.full(500, 11.0), "running_var": np.full(500, 30.)}
    _, cache = batchnorm_forward(x, gamma, beta, bn_param)
    dx1, dgamma1, dbeta1 = batchnorm_backward(dout, cache)
    dx2, dgamma2, dbeta2 = batchnorm_backward_alt(dout, cache)
    assert rel_error(dx1, dx2) < 1e-8  # elementwise relative; entries can be small
    assert_close(dx2, dx1, 1e-12)
    assert_close(dgamma2, dgamma1, 1e-12)
    assert_close(dbeta2, dbeta1, 1e-12)


@pytest.mark.parametrize("mode", ["train", "test"])
@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
def test_batchnorm_backward_matches_numerical_gradient(rng, backward, mode):
    x = make(rng, (4, 5))
    gamma, beta = params(rng, 5)
    gamma += 1.0
    dout = rng.standard_normal((4, 5))
    rm, rv = np.full(5, 11.0), np.full(5, 23.0)

    def forward(x, gamma, beta):
        bn_param = {"mode": mode, "running_mean": rm.copy(), "running_var": rv.copy()}
        return batchnorm_forward(x, gamma, beta, bn_param)[0]

    _, cache = batchnorm_forward(x, gamma, beta, {"mode": mode, "running_mean": rm.copy(),
                                                  "running_var": rv.copy()})
    dx, dgamma, dbeta = backward(dout, cache)
    assert_matches_numerical(dx, eval_numerical_gradient_array(
        lambda v: forward(v, gamma, beta), x.copy(), dout))
    assert_matches_numerical(dgamma, eval_numerical_gradient_array(
        lambda v: forward(x, v, beta), gamma.copy(), dout))
    assert_matches_numerical(dbeta, eval_numerical_gradient_array(
        lambda v: forward(x, gamma, v), beta.copy(), dout))


def test_batchnorm_backward_cs231n_setup_reaches_published_accuracy():
    # CS231n BatchNormalization.ipynb: seed 231, N, D = 4, 5, x = 5 * randn + 12;
    # "relative errors should be between 1e-13 and 1e-8" (printed dx 1.7e-9).
    r = np.random.RandomState(231)
    x = 5 * r.randn(4, 5) + 12
    gamma, beta, dout = r.randn(5), r.randn(5), r.randn(4, 5)

    def f(v):
        return batchnorm_forward(v, gamma, beta, {"mode": "train"})[0]

    _, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    dx, _, _ = batchnorm_backward(dout, cache)
    assert rel_error(dx, eval_numerical_gradient_array(f, x.copy(), dout)) < 1e-8


def test_batchnorm_uses_biased_variance():
    # Column [0, 2]: mean 1, biased var 1 (unbiased would be 2, giving +-0.7071).
    x = np.array([[0.0], [2.0]])
    bn_param = {"mode": "train", "eps": 1e-12, "momentum": 0.0}
    out, _ = batchnorm_forward(x, np.ones(1), np.zeros(1), bn_param)
    np.testing.assert_allclose(out, [[-1.0], [1.0]], rtol=1e-10)
    # momentum 0: the running variance is the batch variance itself.
    np.testing.assert_allclose(bn_param["running_var"], [1.0], rtol=1e-12)


def test_batchnorm_puts_eps_inside_the_square_root():
    # var = 1, eps = 0.44: sqrt(var + eps) = 1.2 -> +-1/1.2; sqrt(var) + eps = 1.44 would
    # give +-0.694, and var + eps without the root 1.44 as well.
    x = np.array([[0.0], [2.0]])
    out, _ = batchnorm_forward(x, np.ones(1), np.zeros(1), {"mode": "train", "eps": 0.44})
    np.testing.assert_allclose(out, [[-1 / 1.2], [1 / 1.2]], rtol=1e-12)
    # test mode: (x - 1) / sqrt(0.25 + 0.75) = x - 1
    out, _ = batchnorm_forward(x, np.ones(1), np.zeros(1), {
        "mode": "test", "eps": 0.75, "running_mean": np.ones(1), "running_var": np.full(1, .25)})
    np.testing.assert_allclose(out, [[-1.0], [1.0]], rtol=1e-12)


@pytest.mark.parametrize("momentum", [None, 0.9, 0.5, 0.0, 1.0])
def test_batchnorm_running_average_rule_over_several_steps(rng, momentum):
    D = 3
    bn_param = {"mode": "train"}
    if momentum is not None:
        bn_param["momentum"] = momentum
    m = 0.9 if momentum is None else momentum
    expected_mean, expected_var = np.zeros(D), np.zeros(D)
    for step in range(5):
        x = make(rng, (8, D), loc=step, scale=1 + step)
        batchnorm_forward(x, np.ones(D), np.zeros(D), bn_param)
        expected_mean = m * expected_mean + (1 - m) * x.mean(axis=0)
        expected_var = m * expected_var + (1 - m) * x.var(axis=0)  # biased (ddof=0)
        np.testing.assert_allclose(bn_param["running_mean"], expected_mean, rtol=1e-12,
                                   atol=1e-12)
        np.testing.assert_allclose(bn_param["running_var"], expected_var, rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_creates_running_stats_as_zeros_when_absent(rng, dtype, mode):
    x = make(rng, (6, 4), dtype)
    bn_param = {"mode": mode}
    out, _ = batchnorm_forward(x, np.ones(4, dtype), np.zeros(4, dtype), bn_param)
    rm, rv = bn_param["running_mean"], bn_param["running_var"]
    assert rm.shape == rv.shape == (4,) and rm.dtype == rv.dtype == dtype
    if mode == "test":  # zeros were used: out = x / sqrt(0 + eps)
        assert not rm.any() and not rv.any()
        assert_close(out, x.astype(np.float64) / np.sqrt(1e-5), TOL[dtype][0])
    else:  # started from zeros: one step leaves (1 - 0.9) * batch statistics
        x64 = x.astype(np.float64)
        assert_close(rm, 0.1 * x64.mean(axis=0), TOL[dtype][0])
        assert_close(rv, 0.1 * x64.var(axis=0), 1e-6 if dtype == np.float32 else 1e-12)


def test_batchnorm_updates_running_stats_in_place(rng):
    rm, rv = np.zeros(4), np.ones(4)
    bn_param = {"mode": "train", "running_mean": rm, "running_var": rv}
    batchnorm_forward(make(rng, (5, 4)), np.ones(4), np.zeros(4), bn_param)
    assert bn_param["running_mean"] is rm and bn_param["running_var"] is rv
    assert rm.any() and not np.all(rv == 1)


def test_batchnorm_test_mode_uses_running_stats_not_batch_stats(rng):
    x = make(rng, (10, 3))
    gamma, beta = params(rng, 3)
    rm, rv = np.array([1.0, 2.0, 3.0]), np.array([4.0, 9.0, 16.0])
    bn_param = {"mode": "test", "running_mean": rm.copy(), "running_var": rv.copy()}
    out, _ = batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_allclose(out, gamma * (x - rm) / np.sqrt(rv + 1e-5) + beta, rtol=1e-12)
    train_out, _ = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    assert not np.allclose(out, train_out)
    # test mode never updates the running statistics
    np.testing.assert_array_equal(bn_param["running_mean"], rm)
    np.testing.assert_array_equal(bn_param["running_var"], rv)


@pytest.mark.parametrize("backward", [batchnorm_backward, batchnorm_backward_alt])
def test_batchnorm_batch_of_one_in_train_mode_outputs_beta_and_zero_dx(rng, backward):
    # One sample: x - mean = 0 and var = 0, so xhat = 0 (eps keeps it finite), out = beta,
    # and nothing downstream can depend on x: dx = 0, dgamma = 0, dbeta = dout.
    x = make(rng, (1, 4))
    gamma, beta = params(rng, 4)
    bn_param = {"mode": "train"}
    out, cache = batchnorm_forward(x, gamma, beta, bn_param)
    np.testing.assert_array_equal(out, beta[None, :])
    assert np.all(np.isfinite(bn_param["running_var"])) and not bn_param["running_var"].any()
    dout = rng.standard_normal((1, 4))
    dx, dgamma, dbeta = backward(dout, cache)
    np.testing.assert_allclose(dx, 0.0, atol=1e-12)
    np.testing.assert_allclose(dgamma, 0.0, atol=1e-12)
    np.testing.assert_allclose(dbeta, dout[0], rtol=1e-15)


def test_batchnorm_is_accurate_for_float32_data_with_a_large_mean(rng):
    # mean 1000, std 1 in float32: the one-pass E[x^2] - E[x]^2 in float32 would lose about
    # every digit (float32 eps * 1000^2 ~ 0.06 of a variance of 1). Stats are accumulated in
    # float64 with a shift, so the result matches the float64 reference on the same values.
    x = (1000 + rng.standard_normal((256, 8))).astype(np.float32)
    out, cache = batchnorm_forward(x, np.ones(8, np.float32), np.zeros(8, np.float32),
                                   {"mode": "train"})
    want, _, _ = batchnorm_forward_naive(x, np.ones(8), np.zeros(8), "train")
    # x - mean is formed exactly (two-part mean), so the output keeps float32's ~1e-7; a
    # float32 mean alone would leave errors of eps * 1000 / std ~ 6e-5.
    assert_close(out, want, 1e-6)
    dout = rng.standard_normal(x.shape).astype(np.float32)
    want_dx, _, _ = batchnorm_backward_naive(x, np.ones(8), dout, "train")
    for backward in (batchnorm_backward, batchnorm_backward_alt):
        dx, _, _ = backward(dout, cache)
        assert_close(dx, want_dx, 1e-5)


# =========================================================================== spatial batch norm
SPATIAL_SHAPES = [(1, 1, 1, 1), (1, 3, 2, 2), (2, 3, 4, 5), (4, 2, 3, 3), (3, 5, 1, 7)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SPATIAL_SHAPES)
def test_spatial_batchnorm_matches_naive(rng, shape, dtype):
    x = make(rng, shape, dtype)
    C = shape[1]
    gamma, beta = params(rng, C, dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    rm0 = rng.random(C).astype(dtype)
    bn_param = {"mode": "train", "momentum": 0.7, "running_mean": rm0.copy()}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    want, want_rm, want_rv = spatial_batchnorm_forward_naive(x, gamma, beta, momentum=0.7,
                                                             running_mean=rm0)
    want_dx, want_dgamma, want_dbeta = spatial_batchnorm_backward_naive(x, gamma, dout)
    fwd_tol, bwd_tol = TOL[dtype]
    assert out.dtype == dx.dtype == dgamma.dtype == dbeta.dtype == dtype
    assert out.shape == dx.shape == shape and dgamma.shape == dbeta.shape == (C,)
    assert_close(out, want, fwd_tol)
    assert_close(bn_param["running_mean"], want_rm, fwd_tol)
    assert_close(bn_param["running_var"], want_rv, fwd_tol)
    if shape[0] * shape[2] * shape[3] > 1:  # a single value per channel gives dx = 0 exactly
        assert_close(dx, want_dx, bwd_tol, dx_floor(dout, gamma))
    else:
        assert_single_value_dx_is_zero(dx, dout, gamma, bwd_tol)
    assert_close(dgamma, want_dgamma, bwd_tol)
    assert_close(dbeta, want_dbeta, bwd_tol)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_spatial_batchnorm_equals_batchnorm_on_channels_last_rows(rng, mode):
    N, C, H, W = 3, 4, 5, 2
    x = make(rng, (N, C, H, W))
    gamma, beta = params(rng, C)
    dout = rng.standard_normal((N, C, H, W))
    rm, rv = rng.random(C), rng.random(C) + 1

    def rows(a):  # (N, C, H, W) -> (N*H*W, C): every row one pixel, every column one channel
        return a.transpose(0, 2, 3, 1).reshape(-1, C)

    p_spatial = {"mode": mode, "momentum": 0.8, "running_mean": rm.copy(),
                 "running_var": rv.copy()}
    p_flat = {"mode": mode, "momentum": 0.8, "running_mean": rm.copy(), "running_var": rv.copy()}
    out, cache = spatial_batchnorm_forward(x, gamma, beta, p_spatial)
    out_flat, cache_flat = batchnorm_forward(rows(x), gamma, beta, p_flat)
    assert_close(rows(out), out_flat, 1e-12)
    assert_close(p_spatial["running_mean"], p_flat["running_mean"], 1e-12)
    assert_close(p_spatial["running_var"], p_flat["running_var"], 1e-12)
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    dx_flat, dgamma_flat, dbeta_flat = batchnorm_backward(rows(dout), cache_flat)
    assert_close(rows(dx), dx_flat, 1e-12)
    assert_close(dgamma, dgamma_flat, 1e-12)
    assert_close(dbeta, dbeta_flat, 1e-12)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_spatial_batchnorm_backward_matches_numerical_gradient(rng, mode):
    # CS231n's setup: (2, 3, 4, 5), x = 5 * randn + 12.
    x = make(rng, (2, 3, 4, 5))
    gamma, beta = params(rng, 3)
    dout = rng.standard_normal(x.shape)
    rm, rv = np.full(3, 12.0), np.full(3, 25.0)

    def forward(x, gamma, beta):
        bn_param = {"mode": mode, "running_mean": rm.copy(), "running_var": rv.copy()}
        return spatial_batchnorm_forward(x, gamma, beta, bn_param)[0]

    _, cache = spatial_batchnorm_forward(x, gamma, beta, {
        "mode": mode, "running_mean": rm.copy(), "running_var": rv.copy()})
    dx, dgamma, dbeta = spatial_batchnorm_backward(dout, cache)
    assert_matches_numerical(dx, eval_numerical_gradient_array(
        lambda v: forward(v, gamma, beta), x.copy(), dout))
    assert_matches_numerical(dgamma, eval_numerical_gradient_array(
        lambda v: forward(x, v, beta), gamma.copy(), dout))
    assert_matches_numerical(dbeta, eval_numerical_gradient_array(
        lambda v: forward(x, gamma, v), beta.copy(), dout))


def test_spatial_batchnorm_test_mode_uses_running_stats(rng):
    x = make(rng, (2, 3, 4, 4))
    gamma, beta = params(rng, 3)
    rm, rv = np.array([10.0, 11.0, 12.0]), np.array([20.0, 25.0, 30.0])
    bn_param = {"mode": "test", "running_mean": rm.copy(), "running_var": rv.copy()}
    out, _ = spatial_batchnorm_forward(x, gamma, beta, bn_param)
    c = (None, slice(None), None, None)
    np.testing.assert_allclose(out, gamma[c] * (x - rm[c]) / np.sqrt(rv[c] + 1e-5) + beta[c],
                               rtol=1e-12)
    np.testing.assert_array_equal(bn_param["running_mean"], rm)


@pytest.mark.parametrize("dtype", DTYPES)
def test_spatial_batchnorm_creates_per_channel_running_stats(rng, dtype):
    x = make(rng, (2, 3, 4, 5), dtype)
    bn_param = {"mode": "train"}
    spatial_batchnorm_forward(x, np.ones(3, dtype), np.zeros(3, dtype), bn_param)
    assert bn_param["running_mean"].shape == bn_param["running_var"].shape == (3,)
    assert bn_param["running_mean"].dtype == dtype
    assert_close(bn_param["running_mean"], 0.1 * x.astype(np.float64).mean(axis=(0, 2, 3)),
                 TOL[dtype][0])


# =========================================================================== group norm
GROUP_CASES = [((2, 6, 4, 5), 2), ((1, 4, 3, 3), 4), ((3, 6, 2, 2), 1), ((2, 8, 1, 1), 4),
               ((1, 1, 1, 1), 1), ((2, 6, 3, 1), 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "G"), GROUP_CASES)
def test_spatial_groupnorm_matches_naive(rng, shape, G, dtype):
    x = make(rng, shape, dtype)
    C = shape[1]
    gamma, beta = params(rng, C, dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, G, {})
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    want_dx, want_dgamma, want_dbeta = groupnorm_backward_naive(x, gamma, dout, G)
    fwd_tol, bwd_tol = TOL[dtype]
    assert out.dtype == dx.dtype == dgamma.dtype == dbeta.dtype == dtype
    assert dgamma.shape == dbeta.shape == (C,)
    assert_close(out, groupnorm_forward_naive(x, gamma, beta, G), fwd_tol)
    if C // G * shape[2] * shape[3] > 1:
        assert_close(dx, want_dx, bwd_tol, dx_floor(dout, gamma))
    else:  # one value per group: xhat = 0 whatever x is
        assert_single_value_dx_is_zero(dx, dout, gamma, bwd_tol)
    assert_close(dgamma, want_dgamma, bwd_tol)
    assert_close(dbeta, want_dbeta, bwd_tol)


@pytest.mark.parametrize(("shape", "G"), [((2, 6, 4, 5), 2), ((3, 4, 2, 3), 4), ((2, 3, 2, 2), 1)])
def test_spatial_groupnorm_backward_matches_numerical_gradient(rng, shape, G):
    x = make(rng, shape)
    gamma, beta = params(rng, shape[1])
    dout = rng.standard_normal(shape)
    gn_param = {"eps": 1e-5}

    def forward(x, gamma, beta):
        return spatial_groupnorm_forward(x, gamma, beta, G, gn_param)[0]

    _, cache = spatial_groupnorm_forward(x, gamma, beta, G, gn_param)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    assert_matches_numerical(dx, eval_numerical_gradient_array(
        lambda v: forward(v, gamma, beta), x.copy(), dout))
    assert_matches_numerical(dgamma, eval_numerical_gradient_array(
        lambda v: forward(x, v, beta), gamma.copy(), dout))
    assert_matches_numerical(dbeta, eval_numerical_gradient_array(
        lambda v: forward(x, gamma, v), beta.copy(), dout))


def test_spatial_groupnorm_with_one_group_is_layernorm_over_chw(rng):
    N, C, H, W = 3, 4, 2, 5
    x = make(rng, (N, C, H, W))
    gamma, beta = params(rng, C)
    dout = rng.standard_normal(x.shape)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, 1, {})
    # layer norm over the C*H*W features of a sample, with gamma and beta repeated per pixel
    g_flat, b_flat = np.repeat(gamma, H * W), np.repeat(beta, H * W)
    out_ln, cache_ln = layernorm_forward(x.reshape(N, -1), g_flat, b_flat, {})
    assert_close(out.reshape(N, -1), out_ln, 1e-12)
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    dx_ln, dgamma_ln, dbeta_ln = layernorm_backward(dout.reshape(N, -1), cache_ln)
    assert_close(dx.reshape(N, -1), dx_ln, 1e-12)
    assert_close(dgamma, dgamma_ln.reshape(C, H * W).sum(axis=1), 1e-12)
    assert_close(dbeta, dbeta_ln.reshape(C, H * W).sum(axis=1), 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
def test_spatial_groupnorm_with_one_channel_per_group_is_instance_norm(rng, dtype):
    x = make(rng, (3, 4, 5, 6), dtype)
    out, _ = spatial_groupnorm_forward(x, np.ones(4, dtype), np.zeros(4, dtype), 4, {})
    assert_close(out, instancenorm_forward_naive(x), TOL[dtype][0])


def test_spatial_groupnorm_puts_eps_inside_the_square_root():
    # one group holding [0, 2]: mean 1, var 1, eps 0.44 -> +-1/1.2
    x = np.array([0.0, 2.0]).reshape(1, 2, 1, 1)
    out, _ = spatial_groupnorm_forward(x, np.ones(2), np.zeros(2), 1, {"eps": 0.44})
    np.testing.assert_allclose(out.ravel(), [-1 / 1.2, 1 / 1.2], rtol=1e-12)


def test_spatial_groupnorm_uses_default_eps_and_per_sample_statistics(rng):
    x = make(rng, (2, 4, 3, 3))
    gamma, beta = params(rng, 4)
    out, _ = spatial_groupnorm_forward(x, gamma, beta, 2, {})
    x2 = x.copy()
    x2[1] = 100 * x2[1] + 7  # another sample's values must not change sample 0's output
    out2, _ = spatial_groupnorm_forward(x2, gamma, beta, 2, {"eps": 1e-5})
    np.testing.assert_array_equal(out[0], out2[0])


# =========================================================================== layer norm
LN_SHAPES = [(1, 3), (4, 5), (3, 1), (2, 17), (8, 6)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LN_SHAPES)
def test_layernorm_matches_naive(rng, shape, dtype):
    x = make(rng, shape, dtype)
    gamma, beta = params(rng, shape[1], dtype)
    dout = rng.standard_normal(shape).astype(dtype)
    out, cache = layernorm_forward(x, gamma, beta, {})
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    want_dx, want_dgamma, want_dbeta = layernorm_backward_naive(x, gamma, dout)
    fwd_tol, bwd_tol = TOL[dtype]
    assert out.dtype == dx.dtype == dgamma.dtype == dbeta.dtype == dtype
    assert out.shape == dx.shape == shape and dgamma.shape == dbeta.shape == (shape[1],)
    assert_close(out, layernorm_forward_naive(x, gamma, beta), fwd_tol)
    if shape[1] > 1:
        assert_close(dx, want_dx, bwd_tol, dx_floor(dout, gamma))
    else:
        assert_single_value_dx_is_zero(dx, dout, gamma, bwd_tol)
    assert_close(dgamma, want_dgamma, bwd_tol)
    assert_close(dbeta, want_dbeta, bwd_tol)


def test_layernorm_backward_matches_numerical_gradient(rng):
    # CS231n's setup: 4 x 5
    x = make(rng, (4, 5))
    gamma, beta = params(rng, 5)
    dout = rng.standard_normal((4, 5))

    def forward(x, gamma, beta):
        return layernorm_forward(x, gamma, beta, {})[0]

    _, cache = layernorm_forward(x, gamma, beta, {})
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    assert_matches_numerical(dx, eval_numerical_gradient_array(
        lambda v: forward(v, gamma, beta), x.copy(), dout))
    assert_matches_numerical(dgamma, eval_numerical_gradient_array(
        lambda v: forward(x, v, beta), gamma.copy(), dout))
    assert_matches_numerical(dbeta, eval_numerical_gradient_array(
        lambda v: forward(x, gamma, v), beta.copy(), dout))


def test_layernorm_ignores_mode_and_puts_eps_inside_the_square_root():
    x = np.array([[0.0, 2.0]])
    for ln_param in ({"eps": 0.44}, {"eps": 0.44, "mode": "train"}, {"eps": 0.44, "mode": "test"}):
        out, _ = layernorm_forward(x, np.ones(2), np.zeros(2), ln_param)
        np.testing.assert_allclose(out, [[-1 / 1.2, 1 / 1.2]], rtol=1e-12)


# =========================================================================== all layers
def _bn_train(x, g, b):
    return batchnorm_forward(x, g, b, {"mode": "train"})


def _bn_test(x, g, b):
    D = x.shape[1]
    return batchnorm_forward(x, g, b, {"mode": "test", "running_mean": np.full(D, 11.0),
                                       "running_var": np.full(D, 20.0)})


def _sbn_train(x, g, b):
    return spatial_batchnorm_forward(x, g, b, {"mode": "train"})


def _gn(x, g, b):
    return spatial_groupnorm_forward(x, g, b, 2, {})


def _ln(x, g, b):
    return layernorm_forward(x, g, b, {})


LAYERS = [
    pytest.param(_bn_train, batchnorm_backward, (4, 5), id="batchnorm"),
    pytest.param(_bn_train, batchnorm_backward_alt, (4, 5), id="batchnorm_alt"),
    pytest.param(_bn_test, batchnorm_backward, (4, 5), id="batchnorm_test_mode"),
    pytest.param(_sbn_train, spatial_batchnorm_backward, (2, 4, 3, 3), id="spatial_batchnorm"),
    pytest.param(_gn, spatial_groupnorm_backward, (2, 4, 3, 3), id="spatial_groupnorm"),
    pytest.param(_ln, layernorm_backward, (4, 5), id="layernorm"),
]


@pytest.mark.parametrize(("forward", "backward", "shape"), LAYERS)
def test_normalization_does_not_modify_its_inputs(rng, forward, backward, shape):
    x = make(rng, shape)
    gamma, beta = params(rng, shape[1])
    dout = rng.standard_normal(shape)
    copies = [a.copy() for a in (x, gamma, beta, dout)]
    out, cache = forward(x, gamma, beta)
    backward(dout, cache)
    backward(dout, cache)  # a second backward from the same cache gives the same answer
    for original, copy in zip((x, gamma, beta, dout), copies, strict=True):
        np.testing.assert_array_equal(original, copy)


@pytest.mark.parametrize(("forward", "backward", "shape"), LAYERS)
@pytest.mark.parametrize(("x_dtype", "p_dtype"), [(np.float32, np.float64),
                                                  (np.float64, np.float32)])
def test_normalization_output_dtype_follows_x(rng, forward, backward, shape, x_dtype, p_dtype):
    x = make(rng, shape, x_dtype)
    gamma, beta = params(rng, shape[1], p_dtype)
    out, cache = forward(x, gamma, beta)
    grads = backward(rng.standard_normal(shape).astype(p_dtype), cache)
    assert out.dtype == x_dtype
    assert [g.dtype for g in grads] == [x_dtype] * 3


@pytest.mark.parametrize(("forward", "backward", "shape"), LAYERS)
def test_normalization_accepts_non_contiguous_arrays(rng, forward, backward, shape):
    x = make(rng, shape[::-1]).T  # a transposed view: same values, F order
    gamma, beta = params(rng, shape[1])
    dout = rng.standard_normal(shape[::-1]).T
    out, cache = forward(x, gamma, beta)
    want_out, want_cache = forward(np.ascontiguousarray(x), gamma, beta)
    np.testing.assert_array_equal(out, want_out)
    for got, want in zip(backward(dout, cache), backward(np.ascontiguousarray(dout), want_cache),
                         strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(("forward", "backward", "shape"), LAYERS)
def test_normalization_backward_rejects_dout_of_the_wrong_shape(rng, forward, backward, shape):
    x = make(rng, shape)
    _, cache = forward(x, *params(rng, shape[1]))
    wrong = np.zeros((shape[0] + 1,) + shape[1:])
    with pytest.raises(ValueError, match="dout must have the shape"):
        backward(wrong, cache)


@pytest.mark.parametrize(("forward", "backward", "shape"), LAYERS)
def test_normalization_backward_rejects_a_foreign_cache(rng, forward, backward, shape):
    # a dropout cache, the cache of another normalisation layer, and something not a cache
    _, dropout_cache = dropout_forward(np.ones(shape), {"p": 0.5, "mode": "train", "seed": 0})
    other = _gn if len(shape) == 2 else _ln
    other_shape = (2, 4, 3, 3) if len(shape) == 2 else (4, 5)
    _, other_cache = other(make(rng, other_shape), *params(rng, other_shape[1]))
    dout = np.zeros(shape)
    for cache in (dropout_cache, other_cache, [1, 2, 3], None):
        with pytest.raises(TypeError, match="cache must be the cache returned by"):
            backward(dout, cache)


# =========================================================================== bad input
def _x2(rng):
    return make(rng, (4, 3))


def test_batchnorm_rejects_bn_param_without_mode(rng):
    with pytest.raises(ValueError, match=r"bn_param is missing the key\(s\) \['mode'\]"):
        batchnorm_forward(_x2(rng), np.ones(3), np.zeros(3), {"eps": 1e-5})
    with pytest.raises(ValueError, match="missing"):
        spatial_batchnorm_forward(make(rng, (2, 3, 2, 2)), np.ones(3), np.zeros(3), {})


@pytest.mark.parametrize("mode", ["Train", "eval", None, 1])
def test_batchnorm_rejects_mode_other_than_train_or_test(rng, mode):
    with pytest.raises(ValueError, match=r"bn_param\['mode'\] must be 'train' or 'test'"):
        batchnorm_forward(_x2(rng), np.ones(3), np.zeros(3), {"mode": mode})


def test_batchnorm_rejects_bn_param_that_is_not_a_dict(rng):
    with pytest.raises(TypeError, match="bn_param must be a dict"):
        batchnorm_forward(_x2(rng), np.ones(3), np.zeros(3), None)


@pytest.mark.parametrize("which", ["gamma", "beta"])
def test_normalization_rejects_gamma_or_beta_of_the_wrong_shape(rng, which):
    def args(size):
        g, b = np.ones(size), np.zeros(size)
        wrong = np.ones(size + 1)
        return (wrong, b) if which == "gamma" else (g, wrong)

    pattern = rf"{which} must have shape \(3,\) \(D,\) to match x of shape \(4, 3\); got \(4,\)"
    with pytest.raises(ValueError, match=pattern):
        batchnorm_forward(_x2(rng), *args(3), {"mode": "train"})
    with pytest.raises(ValueError, match=f"{which} must have shape"):
        layernorm_forward(_x2(rng), *args(3), {})
    x4 = make(rng, (2, 4, 2, 2))
    with pytest.raises(ValueError, match=f"{which} must have shape"):
        spatial_batchnorm_forward(x4, *args(4), {"mode": "train"})
    with pytest.raises(ValueError, match=f"{which} must have shape"):
        spatial_groupnorm_forward(x4, *args(4), 2, {})


def test_spatial_groupnorm_rejects_cs231n_shaped_gamma(rng):
    # CS231n uses (1, C, 1, 1); the kit's contract is (C,).
    x4 = make(rng, (2, 4, 2, 2))
    with pytest.raises(ValueError, match=r"gamma must have shape \(4,\)"):
        spatial_groupnorm_forward(x4, np.ones((1, 4, 1, 1)), np.zeros(4), 2, {})


def test_normalization_rejects_non_float_or_non_array_inputs(rng):
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        batchnorm_forward(np.ones((4, 3), dtype=int), np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(TypeError, match="gamma must be a NumPy ndarray"):
        layernorm_forward(_x2(rng), [1.0, 1.0, 1.0], np.zeros(3), {})


def test_normalization_rejects_x_with_the_wrong_number_of_dimensions(rng):
    x3 = make(rng, (2, 3, 4))
    with pytest.raises(ValueError, match=r"x must be 2-D \(N, D\); got 3-D"):
        batchnorm_forward(x3, np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match=r"x must be 2-D \(N, D\)"):
        layernorm_forward(x3, np.ones(3), np.zeros(3), {})
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\); got 3-D"):
        spatial_batchnorm_forward(x3, np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match=r"x must be 4-D \(N, C, H, W\)"):
        spatial_groupnorm_forward(x3, np.ones(3), np.zeros(3), 1, {})


def test_normalization_rejects_empty_x():
    with pytest.raises(ValueError, match="x .* must not be empty"):
        batchnorm_forward(np.ones((0, 3)), np.ones(3), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match="must not be empty"):
        spatial_groupnorm_forward(np.ones((2, 2, 0, 3)), np.ones(2), np.zeros(2), 1, {})


def test_spatial_groupnorm_rejects_G_that_does_not_divide_C(rng):
    x4 = make(rng, (2, 6, 2, 2))
    with pytest.raises(ValueError, match=r"G must divide .* C=6 .* got G=4"):
        spatial_groupnorm_forward(x4, np.ones(6), np.zeros(6), 4, {})
    with pytest.raises(ValueError, match="G must divide"):
        spatial_groupnorm_forward(x4, np.ones(6), np.zeros(6), 7, {})


@pytest.mark.parametrize(("G", "error"), [(0, ValueError), (-2, ValueError), (2.0, TypeError),
                                          (True, TypeError)])
def test_spatial_groupnorm_rejects_G_that_is_not_a_positive_int(rng, G, error):
    with pytest.raises(error, match="G must be a positive int"):
        spatial_groupnorm_forward(make(rng, (2, 6, 2, 2)), np.ones(6), np.zeros(6), G, {})


@pytest.mark.parametrize("eps", [-1e-5, 0.0, float("nan"), float("inf")])
def test_normalization_rejects_eps_that_is_not_positive(rng, eps):
    x4 = make(rng, (2, 4, 2, 2))
    with pytest.raises(ValueError, match=r"bn_param\['eps'\] must be a positive finite number"):
        batchnorm_forward(_x2(rng), np.ones(3), np.zeros(3), {"mode": "train", "eps": eps})
    with pytest.raises(ValueError, match=r"bn_param\['eps'\]"):
        spatial_batchnorm_forward(x4, np.ones(4), np.zeros(4), {"mode": "test", "eps": eps})
    with pytest.raises(ValueError, match=r"gn_param\['eps'\]"):
        spatial_groupnorm_forward(x4, np.ones(4), np.zeros(4), 2, {"eps": eps})
    with pytest.raises(ValueError, match=r"ln_param\['eps'\]"):
        layernorm_forward(_x2(rng), np.ones(3), np.zeros(3), {"eps": eps})


def test_normalization_rejects_eps_that_is_not_a_number(rng):
    with pytest.raises(TypeError, match=r"ln_param\['eps'\] must be a positive number"):
        layernorm_forward(_x2(rng), np.ones(3), np.zeros(3), {"eps": "1e-5"})


@pytest.mark.parametrize("momentum", [-0.1, 1.5])
def test_batchnorm_rejects_momentum_outside_0_1(rng, momentum):
    with pytest.raises(ValueError, match=r"bn_param\['momentum'\] must be in \[0, 1\]"):
        batchnorm_forward(_x2(rng), np.ones(3), np.zeros(3),
                          {"mode": "train", "momentum": momentum})


def test_batchnorm_rejects_running_stats_of_the_wrong_shape_without_touching_bn_param(rng):
    bn_param = {"mode": "train", "running_mean": np.zeros(4)}
    with pytest.raises(ValueError, match=r"bn_param\['running_mean'\] must have shape \(3,\)"):
        batchnorm_forward(_x2(rng), np.ones(3), np.zeros(3), bn_param)
    assert set(bn_param) == {"mode", "running_mean"}  # nothing created on failure
    np.testing.assert_array_equal(bn_param["running_mean"], np.zeros(4))


def test_normalization_rejects_param_dict_that_is_not_a_dict(rng):
    with pytest.raises(TypeError, match="gn_param must be a dict"):
        spatial_groupnorm_forward(make(rng, (2, 4, 2, 2)), np.ones(4), np.zeros(4), 2, None)
    with pytest.raises(TypeError, match="ln_param must be a dict"):
        layernorm_forward(_x2(rng), np.ones(3), np.zeros(3), 1e-5)


# =========================================================================== PyTorch
@pytest.mark.torch
@pytest.mark.parametrize("mode", ["train", "test"])
def test_batchnorm_and_spatial_batchnorm_agree_with_pytorch(rng, mode):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape in [(6, 5), (3, 4, 5, 2)]:
        x = make(rng, shape)
        C = shape[1]
        gamma, beta = params(rng, C)
        dout = rng.standard_normal(shape)
        rm, rv = rng.random(C), rng.random(C) + 1
        bn_param = {"mode": mode, "running_mean": rm.copy(), "running_var": rv.copy()}
        layer = (batchnorm_forward, batchnorm_backward) if len(shape) == 2 else (
            spatial_batchnorm_forward, spatial_batchnorm_backward)
        out, cache = layer[0](x, gamma, beta, bn_param)
        dx, dgamma, dbeta = layer[1](dout, cache)
        tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
        t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
        # PyTorch's momentum is the weight of the NEW batch: ours 0.9 is theirs 0.1.
        t_out = F.batch_norm(tx, t_rm, t_rv, tg, tb, training=(mode == "train"), momentum=0.1,
                             eps=1e-5)
        t_out.backward(torch.tensor(dout))
        assert_close(out, t_out.detach().numpy(), 1e-10)
        assert_close(dx, tx.grad.numpy(), 1e-10)
        assert_close(dgamma, tg.grad.numpy(), 1e-10)
        assert_close(dbeta, tb.grad.numpy(), 1e-10)
        # running_var differs on purpose: PyTorch stores the UNBIASED batch variance.
        assert_close(bn_param["running_mean"], t_rm.numpy(), 1e-10)


@pytest.mark.torch
def test_groupnorm_and_layernorm_agree_with_pytorch(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = make(rng, (3, 6, 4, 5))
    gamma, beta = params(rng, 6)
    dout = rng.standard_normal(x.shape)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, 3, {})
    dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    t_out = F.group_norm(tx, 3, tg, tb, eps=1e-5)
    t_out.backward(torch.tensor(dout))
    for ours, theirs in [(out, t_out.detach()), (dx, tx.grad), (dgamma, tg.grad),
                         (dbeta, tb.grad)]:
        assert_close(ours, theirs.numpy(), 1e-10)

    x2 = make(rng, (4, 7))
    gamma, beta = params(rng, 7)
    dout = rng.standard_normal(x2.shape)
    out, cache = layernorm_forward(x2, gamma, beta, {})
    dx, dgamma, dbeta = layernorm_backward(dout, cache)
    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x2, gamma, beta))
    t_out = F.layer_norm(tx, (7,), tg, tb, eps=1e-5)
    t_out.backward(torch.tensor(dout))
    for ours, theirs in [(out, t_out.detach()), (dx, tx.grad), (dgamma, tg.grad),
                         (dbeta, tb.grad)]:
        assert_close(ours, theirs.numpy(), 1e-10)
