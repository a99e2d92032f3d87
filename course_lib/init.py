"""Weight initialisation.

A weight's fan-in is the number of inputs that feed one output unit, its fan-out the number of
outputs one input feeds:

    affine weight (D, M)            fan_in = D,            fan_out = M
    conv weight   (F, C, HH, WW)    fan_in = C * HH * WW,  fan_out = F * HH * WW

    gaussian   std = weight_scale                    (CS231n's models)
    xavier     std = sqrt(1 / fan_in)                (LeCun / "Xavier" in CS231n's lecture)
               std = sqrt(2 / (fan_in + fan_out))    (mode="fan_avg": Glorot & Bengio 2010)
    he         std = sqrt(2 / fan_in)                (He et al. 2015, for ReLU networks)

Draws are normal with mean 0, or uniform on [-a, a] with a = sqrt(3) * std (same std).
rng: a np.random.Generator, an int seed, or None for NumPy's global generator (so
np.random.seed(...) makes the draws repeatable, as in the CS231n notebooks). Values are drawn
in float64 and cast to dtype, so a seed gives the same weights (to rounding) in both dtypes.
Biases are not drawn: they start at zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np

from course_lib.validation import FLOAT_DTYPES

__all__ = ["fan_in_fan_out", "gaussian_init", "xavier_init", "he_init", "init_weights",
           "INIT_METHODS"]


# --------------------------------------------------------------------------- argument checks
def _check_shape(shape) -> tuple[int, ...]:
    if isinstance(shape, Integral) or not isinstance(shape, Sequence) or not all(
            isinstance(d, Integral) and not isinstance(d, bool) for d in shape):
        raise TypeError(f"shape must be a tuple of ints such as (D, M) or (F, C, HH, WW); got "
                        f"{shape!r}")
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2 or any(d <= 0 for d in shape):
        raise ValueError(f"shape must have at least 2 positive dimensions, (D, M) or "
                         f"(F, C, HH, WW) (biases start at zero and are not drawn); got {shape}")
    return shape


def _check_dtype(dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be np.float32 or np.float64; got {dtype!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be np.float32 or np.float64; got {dtype}")
    return dtype


def _generator(rng):
    """Anything with standard_normal and uniform: a Generator, a RandomState or np.random."""
    if rng is None:
        return np.random
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a np.random.Generator, an int seed or None; got "
                    f"{type(rng).__name__}")


def _draw(shape, std: float, distribution: str, rng, dtype) -> np.ndarray:
    shape = _check_shape(shape)
    dtype = _check_dtype(dtype)
    gen = _generator(rng)
    if distribution == "normal":
        values = std * gen.standard_normal(shape)
    elif distribution == "uniform":
        bound = math.sqrt(3.0) * std  # the variance of U(-a, a) is a**2 / 3
        values = gen.uniform(-bound, bound, size=shape)
    else:
        raise ValueError(f"distribution must be 'normal' or 'uniform'; got {distribution!r}")
    return np.asarray(values, dtype=np.float64).astype(dtype)


# --------------------------------------------------------------------------- public
def fan_in_fan_out(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight. shape: (D, M) for an affine layer -> (D, M);
    (F, C, k1, ..., kn) for a conv layer -> (C * k1 * ... * kn, F * k1 * ... * kn)."""
    shape = _check_shape(shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def gaussian_init(shape: Sequence[int], weight_scale: float = 1e-2, rng=None,
                  dtype=np.float64) -> np.ndarray:
    """weight_scale * N(0, 1) of the given shape: std = weight_scale (>= 0)."""
    if isinstance(weight_scale, bool) or not isinstance(weight_scale, Real) or not (
            math.isfinite(weight_scale) and weight_scale >= 0):
        raise ValueError(f"weight_scale must be a non-negative finite number (the standard "
                         f"deviation); got {weight_scale!r}")
    return _draw(shape, float(weight_scale), "normal", rng, dtype)


def xavier_init(shape: Sequence[int], rng=None, dtype=np.float64, mode: str = "fan_in",
                distribution: str = "normal") -> np.ndarray:
    """Xavier initialisation. mode="fan_in": std = sqrt(1 / fan_in);
    mode="fan_avg": std = sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio).
    distribution: "normal" or "uniform" (on [-sqrt(3) std, sqrt(3) std])."""
    fan_in, fan_out = fan_in_fan_out(shape)
    if mode == "fan_in":
        std = math.sqrt(1.0 / fan_in)
    elif mode == "fan_avg":
        std = math.sqrt(2.0 / (fan_in + fan_out))
    else:
        raise ValueError(f"mode must be 'fan_in' or 'fan_avg'; got {mode!r}")
    return _draw(shape, std, distribution, rng, dtype)


def he_init(shape: Sequence[int], rng=None, dtype=np.float64,
            distribution: str = "normal") -> np.ndarray:
    """He (Kaiming) initialisation for ReLU layers: std = sqrt(2 / fan_in).
    distribution: "normal" or "uniform" (on [-sqrt(3) std, sqrt(3) std])."""
    fan_in, _ = fan_in_fan_out(shape)
    return _draw(shape, math.sqrt(2.0 / fan_in), distribution, rng, dtype)


INIT_METHODS = ("gaussian", "xavier", "he")


def init_weights(shape: Sequence[int], method: str = "gaussian", weight_scale: float = 1e-2,
                 rng=None, dtype=np.float64, **kwargs) -> np.ndarray:
    """A weight of the given shape, initialised by `method`: "gaussian" (std weight_scale),
    "xavier" or "he" (weight_scale is not used by those two). kwargs go to xavier_init /
    he_init (mode, distribution)."""
    if method == "gaussian":
        if kwargs:
            raise TypeError(f"gaussian_init takes no options {sorted(kwargs)}")
        return gaussian_init(shape, weight_scale, rng=rng, dtype=dtype)
    if method == "xavier":
        return xavier_init(shape, rng=rng, dtype=dtype, **kwargs)
    if method == "he":
        return he_init(shape, rng=rng, dtype=dtype, **kwargs)
    raise ValueError(f"unknown init method {method!r}; choose one of {list(INIT_METHODS)}")
