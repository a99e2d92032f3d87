"""Sandwich layers: common layer sequences as one forward/backward pair (CS231n `layer_utils`).

Each forward composes the public layers and returns `(out, cache)`, the cache being the tuple of
the parts' caches; each backward undoes the sequence in reverse order. The parts validate their
own arguments, so these functions only check that a backward gets its own forward's cache.
"""

from __future__ import annotations

import numpy as np

from course_lib.layers.activations import relu_backward, relu_forward
from course_lib.layers.affine import affine_backward, affine_forward
from course_lib.layers.conv import conv_backward, conv_forward
from course_lib.layers.normalization import (
    batchnorm_backward_alt,
    batchnorm_forward,
    layernorm_backward,
    layernorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from course_lib.layers.pooling import max_pool_backward, max_pool_forward
from course_lib.validation import check_cache

__all__ = [
    "affine_relu_forward", "affine_relu_backward",
    "affine_norm_relu_forward", "affine_norm_relu_backward",
    "conv_relu_forward", "conv_relu_backward",
    "conv_relu_pool_forward", "conv_relu_pool_backward",
    "conv_bn_relu_forward", "conv_bn_relu_backward",
]

# The values accepted for `norm` / `normalization` by the sandwich layers and the models.
NORMALIZATIONS = (None, "batchnorm", "layernorm")


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """x: (N, d1, ..., dk), w: (D, M), b: (M,) -> out: (N, M) = relu(x.reshape(N, D) @ w + b)."""
    a, fc_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, relu_cache)


def affine_relu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, ...]:
    """dout: (N, M) -> (dx, dw, db) with the shapes of x, w, b."""
    fc_cache, relu_cache = check_cache(cache, "cache", 2, "affine_relu_forward")
    da = relu_backward(dout, relu_cache)
    return affine_backward(da, fc_cache)


def _check_norm(norm) -> None:
    if norm not in NORMALIZATIONS:
        raise ValueError(f"norm must be one of {NORMALIZATIONS}; got {norm!r}")


def affine_norm_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                             gamma: np.ndarray | None, beta: np.ndarray | None,
                             norm_param: dict | None,
                             norm: str | None = "batchnorm") -> tuple[np.ndarray, tuple]:
    """affine - norm - relu. x: (N, d1, ..., dk), w: (D, M), b, gamma, beta: (M,) -> out (N, M).

    norm: 'batchnorm' (norm_param is a bn_param: mode, running statistics updated in place),
    'layernorm' (norm_param is an ln_param) or None (plain affine - relu; gamma, beta and
    norm_param are ignored and may be None).
    """
    _check_norm(norm)
    a, fc_cache = affine_forward(x, w, b)
    if norm == "batchnorm":
        a, norm_cache = batchnorm_forward(a, gamma, beta, norm_param)
    elif norm == "layernorm":
        a, norm_cache = layernorm_forward(a, gamma, beta, norm_param)
    else:
        norm_cache = None
    out, relu_cache = relu_forward(a)
    return out, (fc_cache, norm_cache, relu_cache, norm)


def affine_norm_relu_backward(dout: np.ndarray, cache: tuple) -> tuple:
    """dout: (N, M) -> (dx, dw, db, dgamma, dbeta); dgamma and dbeta are None when norm is None."""
    fc_cache, norm_cache, relu_cache, norm = check_cache(cache, "cache", 4,
                                                         "affine_norm_relu_forward")
    da = relu_backward(dout, relu_cache)
    dgamma = dbeta = None
    if norm == "batchnorm":
        da, dgamma, dbeta = batchnorm_backward_alt(da, norm_cache)
    elif norm == "layernorm":
        da, dgamma, dbeta = layernorm_backward(da, norm_cache)
    dx, dw, db = affine_backward(da, fc_cache)
    return dx, dw, db, dgamma, dbeta


def conv_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                      conv_param: dict) -> tuple[np.ndarray, tuple]:
    """x: (N, C, H, W), w: (F, C, HH, WW), b: (F,) -> out: (N, F, H', W') = relu(conv(x, w) + b)."""
    a, conv_cache = conv_forward(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout: np.ndarray, cache: tuple, *,
                       need_dx: bool = True) -> tuple[np.ndarray | None, ...]:
    """dout: (N, F, H', W') -> (dx, dw, db); dx is None when need_dx=False (see conv_backward)."""
    conv_cache, relu_cache = check_cache(cache, "cache", 2, "conv_relu_forward")
    da = relu_backward(dout, relu_cache)
    return conv_backward(da, conv_cache, need_dx=need_dx)


def conv_relu_pool_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict,
                           pool_param: dict) -> tuple[np.ndarray, tuple]:
    """conv - relu - max pool. x: (N, C, H, W) -> out: (N, F, H'', W'') after pooling."""
    a, conv_cache = conv_forward(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: np.ndarray, cache: tuple, *,
                            need_dx: bool = True) -> tuple[np.ndarray | None, ...]:
    """dout: (N, F, H'', W'') -> (dx, dw, db); dx is None when need_dx=False (see
    conv_backward)."""
    conv_cache, relu_cache, pool_cache = check_cache(cache, "cache", 3, "conv_relu_pool_forward")
    ds = max_pool_backward(dout, pool_cache)
    da = relu_backward(ds, relu_cache)
    return conv_backward(da, conv_cache, need_dx=need_dx)


def conv_bn_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray,
                         beta: np.ndarray, conv_param: dict,
                         bn_param: dict) -> tuple[np.ndarray, tuple]:
    """conv - spatial batchnorm - relu. gamma, beta: (F,); bn_param updated in place (train)."""
    a, conv_cache = conv_forward(x, w, b, conv_param)
    an, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(an)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout: np.ndarray, cache: tuple, *,
                          need_dx: bool = True) -> tuple[np.ndarray | None, ...]:
    """dout: (N, F, H', W') -> (dx, dw, db, dgamma, dbeta); dx is None when need_dx=False (see
    conv_backward)."""
    conv_cache, bn_cache, relu_cache = check_cache(cache, "cache", 3, "conv_bn_relu_forward")
    dan = relu_backward(dout, relu_cache)
    da, dgamma, dbeta = spatial_batchnorm_backward(dan, bn_cache)
    dx, dw, db = conv_backward(da, conv_cache, need_dx=need_dx)
    return dx, dw, db, dgamma, dbeta
