"""Normalisation layers: batch norm, spatial batch norm, group norm and layer norm.

Every layer normalises a set of values to zero mean and unit variance, then scales and shifts
them per feature (or channel) with learnable gamma and beta:

    xhat = (x - mean) / sqrt(var + eps),     out = gamma * xhat + beta

with the biased variance var = mean((x - mean)**2) (divided by the count, not count - 1). The
layers differ only in which values share a mean and a variance:

    batchnorm          x: (N, D)        per feature d, over the N samples
    spatial batchnorm  x: (N, C, H, W)  per channel c, over N, H and W
    groupnorm          x: (N, C, H, W)  per sample n and group of C // G channels, over them, H, W
    layernorm          x: (N, D)        per sample n, over its D features

The backward passes use the closed form for the gradient through the normalisation: with M the
number of values sharing one mean and variance and sums over those M values,

    dxhat = dout * gamma
    dx    = (1 / sqrt(var + eps)) * (dxhat - sum(dxhat) / M - xhat * sum(dxhat * xhat) / M)

`batchnorm_backward` instead walks the computational graph node by node, as in the lecture.
The loops are Numba kernels in course_lib/kernels/normalization.py.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from numbers import Real

import numpy as np

from course_lib.kernels import normalization as kernels
from course_lib.validation import (
    check_cache,
    check_dout,
    check_float_array,
    check_mode,
    check_param_dict,
    check_positive_int,
    check_shape,
)

__all__ = [
    "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
    "spatial_batchnorm_forward", "spatial_batchnorm_backward",
    "spatial_groupnorm_forward", "spatial_groupnorm_backward",
    "layernorm_forward", "layernorm_backward",
]

DEFAULT_EPS = 1e-5
DEFAULT_MOMENTUM = 0.9


# --------------------------------------------------------------------------- argument checks
def _check_not_empty(x: np.ndarray, layout: str) -> None:
    if x.size == 0:
        raise ValueError(f"x {layout} must not be empty; got shape {x.shape}")


def _check_gamma_beta(gamma, beta, size: int, what: str, x: np.ndarray):
    """gamma, beta: float arrays of shape (size,), returned contiguous in x's dtype."""
    result = []
    for name, value in (("gamma", gamma), ("beta", beta)):
        check_float_array(value, name)
        check_shape(value, name, (size,), f"({what},) to match x of shape {x.shape}")
        result.append(np.ascontiguousarray(value, dtype=x.dtype))
    return result


def _check_eps(params, name: str) -> float:
    eps = params.get("eps", DEFAULT_EPS)
    if isinstance(eps, bool) or not isinstance(eps, Real):
        raise TypeError(f"{name}['eps'] must be a positive number; got {type(eps).__name__}")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"{name}['eps'] must be a positive finite number (it keeps "
                         f"1 / sqrt(var + eps) finite); got {eps}")
    return float(eps)


def _check_momentum(bn_param) -> float:
    momentum = bn_param.get("momentum", DEFAULT_MOMENTUM)
    if isinstance(momentum, bool) or not isinstance(momentum, Real):
        raise TypeError(f"bn_param['momentum'] must be a number in [0, 1]; got "
                        f"{type(momentum).__name__}")
    if not 0 <= momentum <= 1:
        raise ValueError(f"bn_param['momentum'] must be in [0, 1]; got {momentum}")
    return float(momentum)


def _check_bn_param(bn_param, size: int, what: str, dtype) -> tuple:
    """Validate bn_param; create running_mean/running_var (zeros of x's dtype) when absent.

    Returns (mode, eps, momentum, running_mean, running_var). bn_param is changed only after
    every check has passed.
    """
    check_param_dict(bn_param, "bn_param", required=("mode",))
    if not isinstance(bn_param, MutableMapping):
        raise TypeError(f"bn_param must be a dict (it receives the running statistics); got "
                        f"{type(bn_param).__name__}")
    mode = check_mode(bn_param["mode"], "bn_param['mode']")
    eps = _check_eps(bn_param, "bn_param")
    momentum = _check_momentum(bn_param)
    running = {}
    for key in ("running_mean", "running_var"):
        if key in bn_param:
            value = check_float_array(bn_param[key], f"bn_param['{key}']")
            check_shape(value, f"bn_param['{key}']", (size,), f"({what},) to match x")
            running[key] = value
    for key in ("running_mean", "running_var"):
        if key not in running:
            running[key] = bn_param[key] = np.zeros(size, dtype=dtype)
    return mode, eps, momentum, running["running_mean"], running["running_var"]


def _split(mean: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray]:
    """float64 mean -> (hi, lo) in dtype with hi + lo ~ mean to twice dtype's precision.

    The kernels form x - mean as (x - hi) - lo, exact for x near the mean (see the kernels'
    module docstring); for float64 data lo is 0.
    """
    hi = mean.astype(dtype)
    return hi, (mean - hi).astype(dtype)


def _open_cache(cache, tag: str, length: int, producer: str) -> tuple:
    """The cache must be the tuple made by `producer` (tagged with `tag` in position 0)."""
    check_cache(cache, "cache", length, producer)
    if not (isinstance(cache[0], str) and cache[0] == tag):
        raise TypeError(f"cache must be the cache returned by {producer}; got a tuple starting "
                        f"with {cache[0]!r}")
    return cache[1:]


# --------------------------------------------------------------------------- shared internals
def _batchnorm_channels(x3, gamma, beta, mode, eps, momentum, running_mean, running_var):
    """Batch norm on x3: (N, C, L), statistics per channel over N and L.

    Returns out3 and the float64 statistics (mean, var, inv_std) that were used.
    """
    if mode == "train":
        mean, var = kernels.channel_moments(x3)  # biased: divided by N * L
        # In place, so the caller's arrays (e.g. a model's bn_params) see the update.
        running_mean[...] = momentum * running_mean + (1 - momentum) * mean
        running_var[...] = momentum * running_var + (1 - momentum) * var
    else:
        mean = running_mean.astype(np.float64)  # copies: later updates must not reach the cache
        var = running_var.astype(np.float64)
    inv_std = 1.0 / np.sqrt(var + eps)
    dt = x3.dtype
    out3 = np.empty_like(x3)
    kernels.channel_normalize(x3, *_split(mean, dt), (gamma * inv_std).astype(dt), beta, out3)
    return out3, mean, var, inv_std


def _batchnorm_channels_backward(dout3, x3, gamma, mean, inv_std, mode):
    """Closed-form backward of _batchnorm_channels; returns (dx3, dgamma, dbeta) in x's dtype."""
    dt = x3.dtype
    count = x3.shape[0] * x3.shape[2]
    sum_d, sum_dxc = kernels.channel_backward_sums(dout3, x3, mean)
    dbeta = sum_d
    dgamma = sum_dxc * inv_std  # sum(dout * xhat)
    g = gamma.astype(np.float64)
    k_dout = g * inv_std
    if mode == "train":
        # dx = gamma * inv_std / M * (M * dout - dbeta - xhat * dgamma)
        k_xc = -g * inv_std**2 * dgamma / count
        k_const = -g * inv_std * dbeta / count
    else:
        # test mode: mean and var are the running statistics, constants with respect to x
        k_xc = np.zeros_like(g)
        k_const = np.zeros_like(g)
    dx3 = np.empty_like(x3)
    kernels.channel_backward_dx(dout3, x3, *_split(mean, dt), k_dout.astype(dt),
                                k_xc.astype(dt), k_const.astype(dt), dx3)
    return dx3, dgamma.astype(dt), dbeta.astype(dt)


def _groupnorm_groups(x4, gamma2, beta2, eps):
    """Normalisation of x4: (N, G, Cg, L) per sample and group; gamma2, beta2: (G, Cg)."""
    N, G, Cg, L = x4.shape
    dt = x4.dtype
    mean, var = kernels.group_moments(x4.reshape(N, G, Cg * L))  # biased
    inv_std = 1.0 / np.sqrt(var + eps)
    out4 = np.empty_like(x4)
    kernels.group_normalize(x4, *_split(mean, dt), inv_std.astype(dt), gamma2, beta2, out4)
    return out4, mean, inv_std


def _groupnorm_groups_backward(dout4, x4, gamma2, mean, inv_std):
    """Closed-form backward of _groupnorm_groups; dgamma, dbeta returned as (G, Cg)."""
    N, G, Cg, L = x4.shape
    dt = x4.dtype
    count = Cg * L
    sum_d, sum_dxc = kernels.group_backward_sums(dout4, x4, mean)  # (N, G, Cg) each
    inv_std3 = inv_std[:, :, None]
    dbeta = sum_d.sum(axis=0)
    dgamma = (sum_dxc * inv_std3).sum(axis=0)  # sum(dout * xhat)
    g = gamma2.astype(np.float64)
    sum_dxhat = (g * sum_d).sum(axis=2)  # (N, G)
    sum_dxhat_xhat = (g * sum_dxc).sum(axis=2) * inv_std
    # dx = inv_std * (dxhat - sum(dxhat) / M - xhat * sum(dxhat * xhat) / M)
    k_xc = -inv_std**2 * sum_dxhat_xhat / count
    k_const = -inv_std * sum_dxhat / count
    dx4 = np.empty_like(x4)
    kernels.group_backward_dx(dout4, x4, *_split(mean, dt), inv_std.astype(dt), gamma2,
                              k_xc.astype(dt), k_const.astype(dt), dx4)
    return dx4, dgamma.astype(dt), dbeta.astype(dt)


# --------------------------------------------------------------------------- batch norm
def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      bn_param: dict) -> tuple[np.ndarray, tuple]:
    """Batch normalisation. x: (N, D); gamma, beta: (D,). Returns (out (N, D), cache).

    train: mean = x.mean(axis=0), var = x.var(axis=0) (biased, divided by N),
           out = gamma * (x - mean) / sqrt(var + eps) + beta, and in place in bn_param
           running_mean = momentum * running_mean + (1 - momentum) * mean (running_var alike)
    test:  the same formula with mean, var = running_mean, running_var.
    bn_param: 'mode' ('train' or 'test', required), 'eps' (1e-5), 'momentum' (0.9),
    'running_mean', 'running_var' ((D,); created as zeros of x's dtype when absent).
    """
    check_float_array(x, "x", 2, "(N, D)")
    _check_not_empty(x, "(N, D)")
    N, D = x.shape
    gamma, beta = _check_gamma_beta(gamma, beta, D, "D", x)
    mode, eps, momentum, running_mean, running_var = _check_bn_param(bn_param, D, "D", x.dtype)
    x3 = np.ascontiguousarray(x).reshape(N, D, 1)
    out3, mean, var, inv_std = _batchnorm_channels(x3, gamma, beta, mode, eps, momentum,
                                                   running_mean, running_var)
    cache = ("batchnorm", x3, gamma, mean, var, inv_std, eps, mode)
    return out3.reshape(N, D), cache


def _open_batchnorm_cache(dout, cache):
    x3, gamma, mean, var, inv_std, eps, mode = _open_cache(cache, "batchnorm", 8,
                                                           "batchnorm_forward")
    N, D, _ = x3.shape
    check_dout(dout, (N, D), "batchnorm_forward")
    dout = np.ascontiguousarray(dout, dtype=x3.dtype)
    return dout, x3.reshape(N, D), gamma, mean, var, inv_std, eps, mode


def batchnorm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """Backward of batchnorm_forward through its computational graph, one node at a time.

    dout: (N, D). Returns (dx (N, D), dgamma (D,), dbeta (D,)).
    Forward graph: mu = mean(x); xmu = x - mu; sq = xmu**2; var = mean(sq);
    sqrtvar = sqrt(var + eps); ivar = 1 / sqrtvar; xhat = xmu * ivar; out = gamma * xhat + beta.
    Same values as batchnorm_backward_alt, which uses the simplified closed form.
    """
    dout, x, gamma, mean, var, _, eps, mode = _open_batchnorm_cache(dout, cache)
    N = x.shape[0]
    # Forward nodes, recomputed from the cached input and statistics (in x's dtype; x - mu is
    # formed in float64 first, so it stays accurate when |mu| >> std in float32).
    xmu = (x - mean).astype(x.dtype)
    sqrtvar = np.sqrt(var + eps).astype(x.dtype)
    ivar = 1 / sqrtvar
    xhat = xmu * ivar
    # Backward, from the output towards x.
    dbeta = dout.sum(axis=0)               # out = gammax + beta
    dgamma = (dout * xhat).sum(axis=0)     # gammax = gamma * xhat
    dxhat = dout * gamma
    dxmu1 = dxhat * ivar                   # xhat = xmu * ivar, through xmu
    if mode == "test":
        return dxmu1, dgamma, dbeta        # mu and var are running stats: constants
    divar = (dxhat * xmu).sum(axis=0)      # xhat = xmu * ivar, through ivar
    dsqrtvar = -divar / sqrtvar**2         # ivar = 1 / sqrtvar
    dvar = 0.5 * dsqrtvar / sqrtvar        # sqrtvar = sqrt(var + eps)
    dsq = np.ones_like(x) * dvar / N       # var = mean(sq, axis=0)
    dxmu2 = 2 * xmu * dsq                  # sq = xmu**2
    dx1 = dxmu1 + dxmu2                    # xmu = x - mu, through x
    dmu = -dx1.sum(axis=0)                 # xmu = x - mu, through mu
    dx2 = np.ones_like(x) * dmu / N        # mu = mean(x, axis=0)
    dx = dx1 + dx2
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """Backward of batchnorm_forward in the simplified closed form (same values as the graph).

    dout: (N, D). Returns (dx (N, D), dgamma (D,), dbeta (D,)):
    dbeta = sum(dout, 0), dgamma = sum(dout * xhat, 0),
    dx = gamma / sqrt(var + eps) / N * (N * dout - dbeta - xhat * dgamma)   (train mode)
    dx = gamma / sqrt(var + eps) * dout                                     (test mode)
    """
    dout, x, gamma, mean, _, inv_std, _, mode = _open_batchnorm_cache(dout, cache)
    N, D = x.shape
    dx3, dgamma, dbeta = _batchnorm_channels_backward(dout.reshape(N, D, 1), x.reshape(N, D, 1),
                                                      gamma, mean, inv_std, mode)
    return dx3.reshape(N, D), dgamma, dbeta


# --------------------------------------------------------------------------- spatial batch norm
def spatial_batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                              bn_param: dict) -> tuple[np.ndarray, tuple]:
    """Batch normalisation per channel. x: (N, C, H, W); gamma, beta: (C,).

    Returns (out (N, C, H, W), cache). mean and var (biased) of channel c are taken over N, H
    and W; otherwise exactly batchnorm_forward, including every bn_param rule (running stats
    of shape (C,)). Equals batchnorm_forward on x.transpose(0, 2, 3, 1).reshape(-1, C).
    """
    check_float_array(x, "x", 4, "(N, C, H, W)")
    _check_not_empty(x, "(N, C, H, W)")
    N, C, H, W = x.shape
    gamma, beta = _check_gamma_beta(gamma, beta, C, "C", x)
    mode, eps, momentum, running_mean, running_var = _check_bn_param(bn_param, C, "C", x.dtype)
    x3 = np.ascontiguousarray(x).reshape(N, C, H * W)
    out3, mean, _, inv_std = _batchnorm_channels(x3, gamma, beta, mode, eps, momentum,
                                                 running_mean, running_var)
    cache = ("spatial_batchnorm", x3, gamma, mean, inv_std, mode, x.shape)
    return out3.reshape(x.shape), cache


def spatial_batchnorm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
    """Backward of spatial_batchnorm_forward. dout: (N, C, H, W).

    Returns (dx (N, C, H, W), dgamma (C,), dbeta (C,)); batchnorm's closed form per channel
    with M = N * H * W values per channel.
    """
    x3, gamma, mean, inv_std, mode, shape = _open_cache(cache, "spatial_batchnorm", 7,
                                                        "spatial_batchnorm_forward")
    check_dout(dout, shape, "spatial_batchnorm_forward")
    dout3 = np.ascontiguousarray(dout, dtype=x3.dtype).reshape(x3.shape)
    dx3, dgamma, dbeta = _batchnorm_channels_backward(dout3, x3, gamma, mean, inv_std, mode)
    return dx3.reshape(shape), dgamma, dbeta


# --------------------------------------------------------------------------- group norm
def spatial_groupnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int,
                              gn_param: dict) -> tuple[np.ndarray, tuple]:
    """Group normalisation. x: (N, C, H, W); gamma, beta: (C,); G groups, C % G == 0.

    Returns (out (N, C, H, W), cache). For each sample n and group g of C // G consecutive
    channels: mean and var (biased) over those channels and H, W, then
    out[n, c] = gamma[c] * (x[n, c] - mean) / sqrt(var + eps) + beta[c].
    gn_param: 'eps' (1e-5); other keys are ignored. G = 1 is layer norm over (C, H, W),
    G = C is instance norm. The same in train and test mode (no running statistics).
    """
    check_float_array(x, "x", 4, "(N, C, H, W)")
    _check_not_empty(x, "(N, C, H, W)")
    N, C, H, W = x.shape
    gamma, beta = _check_gamma_beta(gamma, beta, C, "C", x)
    G = check_positive_int(G, "G")
    if C % G:
        raise ValueError(f"G must divide the number of channels C={C} of x (shape {x.shape}) "
                         f"into equal groups; got G={G}")
    check_param_dict(gn_param, "gn_param")
    eps = _check_eps(gn_param, "gn_param")
    Cg = C // G
    x4 = np.ascontiguousarray(x).reshape(N, G, Cg, H * W)
    gamma2 = gamma.reshape(G, Cg)
    out4, mean, inv_std = _groupnorm_groups(x4, gamma2, beta.reshape(G, Cg), eps)
    cache = ("spatial_groupnorm", x4, gamma2, mean, inv_std, x.shape)
    return out4.reshape(x.shape), cache


def spatial_groupnorm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
    """Backward of spatial_groupnorm_forward. dout: (N, C, H, W).

    Returns (dx (N, C, H, W), dgamma (C,), dbeta (C,)); the closed form of the module
    docstring per sample and group, with M = (C // G) * H * W.
    """
    x4, gamma2, mean, inv_std, shape = _open_cache(cache, "spatial_groupnorm", 6,
                                                   "spatial_groupnorm_forward")
    check_dout(dout, shape, "spatial_groupnorm_forward")
    dout4 = np.ascontiguousarray(dout, dtype=x4.dtype).reshape(x4.shape)
    dx4, dgamma, dbeta = _groupnorm_groups_backward(dout4, x4, gamma2, mean, inv_std)
    return dx4.reshape(shape), dgamma.reshape(-1), dbeta.reshape(-1)


# --------------------------------------------------------------------------- layer norm
def layernorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                      ln_param: dict) -> tuple[np.ndarray, tuple]:
    """Layer normalisation. x: (N, D); gamma, beta: (D,). Returns (out (N, D), cache).

    Per sample n: mean = x[n].mean(), var = x[n].var() (biased, divided by D),
    out[n] = gamma * (x[n] - mean) / sqrt(var + eps) + beta.
    ln_param: 'eps' (1e-5); other keys (such as 'mode') are ignored: train and test agree.
    """
    check_float_array(x, "x", 2, "(N, D)")
    _check_not_empty(x, "(N, D)")
    N, D = x.shape
    gamma, beta = _check_gamma_beta(gamma, beta, D, "D", x)
    check_param_dict(ln_param, "ln_param")
    eps = _check_eps(ln_param, "ln_param")
    # Layer norm is group norm with one group of D "channels" of one value each.
    x4 = np.ascontiguousarray(x).reshape(N, 1, D, 1)
    gamma2 = gamma.reshape(1, D)
    out4, mean, inv_std = _groupnorm_groups(x4, gamma2, beta.reshape(1, D), eps)
    cache = ("layernorm", x4, gamma2, mean, inv_std)
    return out4.reshape(N, D), cache


def layernorm_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """Backward of layernorm_forward. dout: (N, D).

    Returns (dx (N, D), dgamma (D,), dbeta (D,)); the closed form of the module docstring per
    sample, with M = D.
    """
    x4, gamma2, mean, inv_std = _open_cache(cache, "layernorm", 5, "layernorm_forward")
    N, _, D, _ = x4.shape
    check_dout(dout, (N, D), "layernorm_forward")
    dout4 = np.ascontiguousarray(dout, dtype=x4.dtype).reshape(x4.shape)
    dx4, dgamma, dbeta = _groupnorm_groups_backward(dout4, x4, gamma2, mean, inv_std)
    return dx4.reshape(N, D), dgamma.reshape(D), dbeta.reshape(D)
