"""Sandwich layers (course_lib.layers.composite): numerical gradients, composition, errors.

The parts (conv, relu, pool, norms, affine) have their own tests; here we check that each
sandwich chains them correctly, forward and backward.
"""
import numpy as np
import pytest

from course_lib import (
    affine_norm_relu_backward,
    affine_norm_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
    eval_numerical_gradient_array,
    max_pool_forward,
    rel_error,
    relu_forward,
)

POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def numerical_grads(forward, arrays, dout):
    """Numerical gradient of sum(forward(*arrays) * dout) with respect to every array."""
    grads = []
    for k, a in enumerate(arrays):
        def f(value, k=k):
            args = list(arrays)
            args[k] = value
            return forward(*args)
        grads.append(eval_numerical_gradient_array(f, a, dout))
    return grads


def test_affine_relu_backward_matches_numerical_gradient(rng):
    # CS231n T7 shapes: x (2, 3, 4) is flattened to (2, 12).
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((12, 10)), rng.standard_normal(10)
    dout = rng.standard_normal((2, 10))
    out, cache = affine_relu_forward(x, w, b)
    analytic = affine_relu_backward(dout, cache)
    numeric = numerical_grads(lambda x, w, b: affine_relu_forward(x, w, b)[0], [x, w, b], dout)
    # Centred differences in float64 reach ~1e-10 here (CS231n prints "e-10").
    for a, n in zip(analytic, numeric, strict=True):
        assert rel_error(a, n) < 1e-8


def test_affine_relu_forward_is_relu_of_affine(rng):
    x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((6, 3)), rng.standard_normal(3)
    out, _ = affine_relu_forward(x, w, b)
    np.testing.assert_allclose(out, np.maximum(x @ w + b, 0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm", None])
def test_affine_norm_relu_backward_matches_numerical_gradient(rng, norm):
    N, D, M = 5, 6, 7
    x = rng.standard_normal((N, D))
    w = rng.standard_normal((D, M))
    b = rng.standard_normal(M)
    gamma = 1 + 0.1 * rng.standard_normal(M)
    beta = 0.1 * rng.standard_normal(M)
    dout = rng.standard_normal((N, M))
    param = {"mode": "train"}

    def forward(x, w, b, gamma, beta):
        return affine_norm_relu_forward(x, w, b, gamma, beta, param, norm)[0]

    _, cache = affine_norm_relu_forward(x, w, b, gamma, beta, param, norm)
    dx, dw, db, dgamma, dbeta = affine_norm_relu_backward(dout, cache)
    num = numerical_grads(forward, [x, w, b, gamma, beta], dout)
    # Normalisation divides by a batch std; float64 centred differences still give < 1e-7.
    assert rel_error(dx, num[0]) < 1e-7
    assert rel_error(dw, num[1]) < 1e-7
    if norm == "batchnorm":
        # Batchnorm subtracts the batch mean of every feature, so b has no effect at all.
        assert np.abs(num[2]).max() < 1e-6 and np.abs(db).max() < 1e-6
    else:
        assert rel_error(db, num[2]) < 1e-7
    if norm is None:
        assert dgamma is None and dbeta is None
    else:
        assert rel_error(dgamma, num[3]) < 1e-7
        assert rel_error(dbeta, num[4]) < 1e-7


def test_affine_norm_relu_batchnorm_test_mode_uses_running_statistics(rng):
    x, w, b = rng.standard_normal((8, 4)), rng.standard_normal((4, 3)), np.zeros(3)
    gamma, beta = np.ones(3), np.zeros(3)
    bn_param = {"mode": "train"}
    affine_norm_relu_forward(x, w, b, gamma, beta, bn_param, "batchnorm")
    assert "running_mean" in bn_param            # created and updated in place in train mode
    bn_param["mode"] = "test"
    out, _ = affine_norm_relu_forward(x, w, b, gamma, beta, bn_param, "batchnorm")
    a = x @ w
    expected = np.maximum((a - bn_param["running_mean"])
                          / np.sqrt(bn_param["running_var"] + 1e-5), 0)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-12)


def test_affine_norm_relu_rejects_an_unknown_norm(rng):
    x, w, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), np.zeros(4)
    with pytest.raises(ValueError, match="norm must be one of"):
        affine_norm_relu_forward(x, w, b, np.ones(4), np.zeros(4), {}, "groupnorm")


def test_conv_relu_backward_matches_numerical_gradient(rng):
    # CS231n T5 shapes: x (2, 3, 8, 8), w (3, 3, 3, 3), stride 1, pad 1.
    x, w, b = (rng.standard_normal((2, 3, 8, 8)), rng.standard_normal((3, 3, 3, 3)),
               rng.standard_normal(3))
    dout = rng.standard_normal((2, 3, 8, 8))
    conv_param = {"stride": 1, "pad": 1}
    _, cache = conv_relu_forward(x, w, b, conv_param)
    analytic = conv_relu_backward(dout, cache)
    numeric = numerical_grads(lambda x, w, b: conv_relu_forward(x, w, b, conv_param)[0],
                              [x, w, b], dout)
    # CS231n prints dx 1.5e-9, dw 2.7e-10, db 1.5e-10.
    for a, n in zip(analytic, numeric, strict=True):
        assert rel_error(a, n) < 1e-7


def test_conv_relu_pool_backward_matches_numerical_gradient(rng):
    # CS231n T5 shapes: x (2, 3, 16, 16), w (3, 3, 3, 3), pool 2x2 stride 2.
    x, w, b = (rng.standard_normal((2, 3, 16, 16)), rng.standard_normal((3, 3, 3, 3)),
               rng.standard_normal(3))
    dout = rng.standard_normal((2, 3, 8, 8))
    conv_param = {"stride": 1, "pad": 1}
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, POOL)
    assert out.shape == (2, 3, 8, 8)
    analytic = conv_relu_pool_backward(dout, cache)
    numeric = numerical_grads(
        lambda x, w, b: conv_relu_pool_forward(x, w, b, conv_param, POOL)[0], [x, w, b], dout)
    # CS231n prints dx 9.6e-9, dw 5.8e-9, db 1.0e-9 ("around e-8 or less").
    for a, n in zip(analytic, numeric, strict=True):
        assert rel_error(a, n) < 1e-7


def test_conv_relu_pool_forward_is_pool_of_relu_of_conv(rng):
    x, w, b = (rng.standard_normal((2, 2, 6, 6)), rng.standard_normal((4, 2, 3, 3)),
               rng.standard_normal(4))
    conv_param = {"stride": 1, "pad": 1}
    out, _ = conv_relu_pool_forward(x, w, b, conv_param, POOL)
    conv, _ = conv_forward(x, w, b, conv_param)
    relu, _ = relu_forward(conv)
    expected, _ = max_pool_forward(relu, POOL)
    np.testing.assert_array_equal(out, expected)


def test_conv_bn_relu_backward_matches_numerical_gradient(rng):
    x, w, b = (rng.standard_normal((3, 2, 5, 5)), rng.standard_normal((4, 2, 3, 3)),
               rng.standard_normal(4))
    gamma, beta = 1 + 0.1 * rng.standard_normal(4), 0.1 * rng.standard_normal(4)
    dout = rng.standard_normal((3, 4, 5, 5))
    conv_param, bn_param = {"stride": 1, "pad": 1}, {"mode": "train"}

    def forward(x, w, b, gamma, beta):
        return conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param)[0]

    _, cache = conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param)
    dx, dw, db, dgamma, dbeta = conv_bn_relu_backward(dout, cache)
    num = numerical_grads(forward, [x, w, b, gamma, beta], dout)
    # CS231n's spatial batchnorm check prints dx 2.8e-7 on a similar scale; 1e-6 allows that.
    assert rel_error(dx, num[0]) < 1e-6
    assert rel_error(dw, num[1]) < 1e-6
    assert rel_error(dgamma, num[3]) < 1e-6
    assert rel_error(dbeta, num[4]) < 1e-6
    # Batchnorm removes the per-channel mean, so the conv bias has no effect on the output.
    assert np.abs(num[2]).max() < 1e-6 and np.abs(db).max() < 1e-6


def test_sandwich_layers_keep_float32(rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = np.zeros(4, np.float32)
    out, cache = conv_relu_pool_forward(x, w, b, {"stride": 1, "pad": 1}, POOL)
    assert out.dtype == np.float32
    dx, dw, db = conv_relu_pool_backward(np.ones_like(out), cache)
    assert dx.dtype == dw.dtype == db.dtype == np.float32
    h, cache = affine_norm_relu_forward(out, rng.standard_normal((64, 5)).astype(np.float32),
                                        np.zeros(5, np.float32), np.ones(5, np.float32),
                                        np.zeros(5, np.float32), {"mode": "train"}, "batchnorm")
    assert h.dtype == np.float32
    assert all(g.dtype == np.float32 for g in affine_norm_relu_backward(np.ones_like(h), cache))


@pytest.mark.parametrize("backward", [affine_relu_backward, affine_norm_relu_backward,
                                      conv_relu_backward, conv_relu_pool_backward,
                                      conv_bn_relu_backward])
def test_sandwich_backward_rejects_a_foreign_cache(backward):
    for foreign in [("a", "b", "c", "d", "e"), ("a",), [1, 2, 3], None]:
        with pytest.raises(TypeError, match="cache must be the cache returned by"):
            backward(np.ones((2, 4)), foreign)
