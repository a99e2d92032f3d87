"""Tests for course_lib.layers.dropout (inverted dropout, p = probability of DROPPING a unit).

Checked against tests/naive_normalization.py's loop implementation, against numerical
gradients, and statistically. Statistical tests draw from a fixed seed, so they are
deterministic; their tolerances are still stated in binomial standard deviations, so that a
correct implementation would pass for (almost) any seed and a wrong one fails for all.
"""

from __future__ import annotations

import numpy as np
import pytest
from naive_normalization import dropout_forward_naive

from course_lib.gradient_check import eval_numerical_gradient_array, rel_error
from course_lib.layers.dropout import dropout_backward, dropout_forward
from course_lib.layers.normalization import layernorm_forward

DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "p"), [((10, 10), 0.2), ((3, 4, 5), 0.5), ((7,), 0.9),
                                          ((2, 3, 4, 4), 0.0), ((1, 1), 0.3)])
def test_dropout_forward_matches_naive(rng, shape, p, dtype):
    x = (rng.standard_normal(shape) + 10).astype(dtype)
    out, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": 123})
    want, _ = dropout_forward_naive(x, p, "train", seed=123)
    assert out.dtype == dtype and out.shape == shape
    # float32: x * float32(1 / (1 - p)) is within 2 float32 roundings of x / (1 - p)
    np.testing.assert_allclose(out, want, rtol=3e-7 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_dropout_p_is_the_probability_of_dropping_a_unit(p):
    # CS231n's check: randn(500, 500) + 10, fraction of zeros. 250,000 Bernoulli(p) draws have
    # std sqrt(p (1 - p) / 250000) <= 0.001; allow 5 std. Were p the keep probability, the
    # fraction would be 1 - p: off by >= 0.2.
    x = np.random.RandomState(231).randn(500, 500) + 10
    out, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": 7})
    dropped = np.mean(out == 0)
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / x.size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.25, 0.7])
def test_dropout_scales_kept_units_by_one_over_one_minus_p(rng, p, dtype):
    x = (rng.standard_normal((50, 40)) + 10).astype(dtype)
    out, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": 3})
    kept = out != 0
    assert kept.any() and not kept.all()
    np.testing.assert_allclose(out[kept], x[kept].astype(np.float64) / (1 - p),
                               rtol=3e-7 if dtype == np.float32 else 1e-15)


@pytest.mark.parametrize("p", [0.25, 0.4, 0.7])
def test_dropout_preserves_the_mean_in_expectation(p):
    # Inverted dropout: E[out] = x. With x ~ 10, out is 10 / (1 - p) with probability 1 - p,
    # so one unit's std is 10 * sqrt(p / (1 - p)); the mean of 250,000 units has std
    # 10 * sqrt(p / (1 - p)) / 500 (<= 0.031). Allow 5 std; forgetting the 1 / (1 - p) would
    # give 10 * (1 - p): off by >= 2.5.
    x = np.random.RandomState(231).randn(500, 500) + 10
    out, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": 11})
    assert abs(out.mean() - x.mean()) < 5 * 10 * np.sqrt(p / (1 - p)) / 500


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_test_mode_is_the_identity(rng, dtype):
    x = (rng.standard_normal((20, 30)) + 10).astype(dtype)
    out, cache = dropout_forward(x, {"p": 0.6, "mode": "test"})
    np.testing.assert_array_equal(out, x)
    assert out.dtype == dtype and out is not x  # a copy: writing to out must not touch x
    dout = rng.standard_normal(x.shape).astype(dtype)
    dx = dropout_backward(dout, cache)
    np.testing.assert_array_equal(dx, dout)
    assert dx is not dout


def test_dropout_test_mode_ignores_the_seed_and_does_not_draw(rng):
    x = rng.standard_normal((4, 4))
    np.random.seed(5)
    expected_next = np.random.rand()
    np.random.seed(5)
    dropout_forward(x, {"p": 0.5, "mode": "test", "seed": 99})
    assert np.random.rand() == expected_next


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_with_p_zero_keeps_every_unit_unchanged(rng, dtype):
    x = rng.standard_normal((30, 30)).astype(dtype)
    out, cache = dropout_forward(x, {"p": 0.0, "mode": "train"})
    np.testing.assert_array_equal(out, x)
    dout = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)


def test_dropout_seed_reproduces_the_cs231n_style_mask(rng):
    # The convention pinned: np.random.seed(seed); kept where np.random.rand(*shape) >= p.
    x = rng.standard_normal((6, 7)) + 10
    p, seed = 0.3, 2024
    out, _ = dropout_forward(x, {"p": p, "mode": "train", "seed": seed})
    np.random.seed(seed)
    mask = (np.random.rand(*x.shape) >= p) / (1 - p)
    np.testing.assert_array_equal(out, x * mask)


def test_dropout_same_seed_same_mask_different_seed_different_mask(rng):
    x = rng.standard_normal((40, 50)) + 10
    a, _ = dropout_forward(x, {"p": 0.5, "mode": "train", "seed": 1})
    b, _ = dropout_forward(x, {"p": 0.5, "mode": "train", "seed": 1})
    c, _ = dropout_forward(x, {"p": 0.5, "mode": "train", "seed": 2})
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dropout_without_seed_draws_a_new_mask_each_call(rng):
    x = rng.standard_normal((40, 50)) + 10
    np.random.seed(0)  # make this test itself repeatable
    a, _ = dropout_forward(x, {"p": 0.5, "mode": "train"})
    b, _ = dropout_forward(x, {"p": 0.5, "mode": "train", "seed": None})  # None = no seed
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_backward_reuses_the_forward_mask(rng, dtype):
    x = (rng.standard_normal((30, 20)) + 10).astype(dtype)
    out, cache = dropout_forward(x, {"p": 0.4, "mode": "train", "seed": 5})
    dropout_forward(x, {"p": 0.4, "mode": "train", "seed": 6})  # a later draw must not matter
    dout = rng.standard_normal(x.shape).astype(dtype)
    dx = dropout_backward(dout, cache)
    assert dx.dtype == dtype
    mask = out / x  # the forward's own mask: 0 or 1 / (1 - p)
    np.testing.assert_allclose(dx, dout * mask, rtol=1e-6 if dtype == np.float32 else 1e-14)
    np.testing.assert_array_equal(dx == 0, out == 0)


def test_dropout_backward_matches_numerical_gradient():
    # CS231n's check: seed 231, x = randn(10, 10) + 10, p 0.2, seed 123: "e-10 or less".
    x = np.random.RandomState(231).randn(10, 10) + 10
    dout = np.random.RandomState(232).randn(10, 10)
    dropout_param = {"p": 0.2, "mode": "train", "seed": 123}
    _, cache = dropout_forward(x, dropout_param)
    dx = dropout_backward(dout, cache)
    dx_num = eval_numerical_gradient_array(lambda v: dropout_forward(v, dropout_param)[0],
                                           x.copy(), dout)
    assert rel_error(dx, dx_num) < 1e-9


@pytest.mark.parametrize(("x_dtype", "dout_dtype"), [(np.float32, np.float64),
                                                     (np.float64, np.float32)])
def test_dropout_dtypes_follow_x(rng, x_dtype, dout_dtype):
    x = (rng.standard_normal((8, 9)) + 10).astype(x_dtype)
    for mode in ("train", "test"):
        out, cache = dropout_forward(x, {"p": 0.5, "mode": mode, "seed": 0})
        dx = dropout_backward(rng.standard_normal(x.shape).astype(dout_dtype), cache)
        assert out.dtype == dx.dtype == x_dtype


def test_dropout_does_not_modify_its_inputs(rng):
    x = rng.standard_normal((10, 10)) + 10
    dout = rng.standard_normal((10, 10))
    dropout_param = {"p": 0.5, "mode": "train", "seed": 4}
    x0, dout0, param0 = x.copy(), dout.copy(), dict(dropout_param)
    out, cache = dropout_forward(x, dropout_param)
    dropout_backward(dout, cache)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dout, dout0)
    assert dropout_param == param0


# =========================================================================== bad input
@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_p_outside_0_1(rng, p):
    with pytest.raises(ValueError, match=r"dropout_param\['p'\] must be in \[0, 1\)"):
        dropout_forward(rng.standard_normal((3, 3)), {"p": p, "mode": "train"})


def test_dropout_rejects_p_that_is_not_a_number(rng):
    with pytest.raises(TypeError, match=r"dropout_param\['p'\] must be a number"):
        dropout_forward(rng.standard_normal((3, 3)), {"p": "0.5", "mode": "train"})


@pytest.mark.parametrize("missing", ["p", "mode"])
def test_dropout_rejects_dropout_param_without_p_or_mode(rng, missing):
    dropout_param = {"p": 0.5, "mode": "train"}
    del dropout_param[missing]
    with pytest.raises(ValueError, match=rf"dropout_param is missing the key\(s\) \['{missing}'\]"):
        dropout_forward(rng.standard_normal((3, 3)), dropout_param)


@pytest.mark.parametrize("mode", ["eval", "TRAIN", None])
def test_dropout_rejects_mode_other_than_train_or_test(rng, mode):
    with pytest.raises(ValueError, match=r"dropout_param\['mode'\] must be 'train' or 'test'"):
        dropout_forward(rng.standard_normal((3, 3)), {"p": 0.5, "mode": mode})


def test_dropout_rejects_non_float_x_and_non_dict_param(rng):
    with pytest.raises(TypeError, match="x must have dtype float32 or float64"):
        dropout_forward(np.ones((3, 3), dtype=np.int64), {"p": 0.5, "mode": "train"})
    with pytest.raises(TypeError, match="x must be a NumPy ndarray"):
        dropout_forward([[1.0, 2.0]], {"p": 0.5, "mode": "train"})
    with pytest.raises(TypeError, match="dropout_param must be a dict"):
        dropout_forward(rng.standard_normal((3, 3)), 0.5)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_dropout_backward_rejects_dout_of_the_wrong_shape(rng, mode):
    _, cache = dropout_forward(rng.standard_normal((3, 4)), {"p": 0.5, "mode": mode})
    with pytest.raises(ValueError, match=r"dout must have the shape of dropout_forward's output"):
        dropout_backward(np.zeros((4, 3)), cache)


def test_dropout_backward_rejects_a_foreign_cache(rng):
    x = rng.standard_normal((3, 4))
    _, ln_cache = layernorm_forward(x, np.ones(4), np.zeros(4), {})
    for cache in (ln_cache, ("layernorm", "train", None, (3, 4), np.float64), [1, 2], None):
        with pytest.raises(TypeError, match="cache must be the cache returned by dropout_forward"):
            dropout_backward(np.zeros((3, 4)), cache)
