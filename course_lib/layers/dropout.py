"""Inverted dropout.

p is the probability of DROPPING a unit (CS231n 2023+ uses the keep probability instead).
In training each unit is kept independently with probability 1 - p, and the kept units are
scaled by 1 / (1 - p), so E[out] = x and test time needs no rescaling: test mode is the
identity.

The mask is drawn from NumPy's global generator, exactly as

    mask = (np.random.rand(*x.shape) >= p) / (1 - p)       # kept where the draw is >= p

after np.random.seed(seed) when dropout_param holds a seed, so a given seed reproduces the
same mask (and the same mask as any implementation that draws the same way).
"""

from __future__ import annotations

import numpy as np

from course_lib.validation import (
    check_cache,
    check_dout,
    check_float_array,
    check_mode,
    check_param_dict,
    check_probability,
)

__all__ = ["dropout_forward", "dropout_backward"]


def dropout_forward(x: np.ndarray, dropout_param: dict) -> tuple[np.ndarray, tuple]:
    """Inverted dropout. x: any shape. Returns (out (x's shape and dtype), cache).

    dropout_param: 'p' (probability of dropping a unit, in [0, 1); required), 'mode'
    ('train' or 'test'; required), 'seed' (optional int: np.random.seed(seed) is called
    before drawing; None counts as absent).
    train: mask = (np.random.rand(*x.shape) >= p) / (1 - p), out = x * mask
    test:  out = x (a copy)
    """
    check_float_array(x, "x")
    check_param_dict(dropout_param, "dropout_param", required=("p", "mode"))
    p = check_probability(dropout_param["p"], "dropout_param['p']")
    mode = check_mode(dropout_param["mode"], "dropout_param['mode']")
    seed = dropout_param.get("seed")
    if mode == "test":
        return x.copy(), ("dropout", mode, None, x.shape, x.dtype)
    if seed is not None:
        np.random.seed(seed)
    keep = np.random.rand(*x.shape) >= p
    mask = (keep / (1 - p)).astype(x.dtype)  # the mask's dtype follows x
    return x * mask, ("dropout", mode, mask, x.shape, x.dtype)


def dropout_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of dropout_forward. dout: x's shape. Returns dx = dout * mask (train; the
    forward's mask, from the cache) or dx = dout (test), in x's dtype."""
    check_cache(cache, "cache", 5, "dropout_forward")
    tag, mode, mask, shape, dtype = cache
    if not (isinstance(tag, str) and tag == "dropout"):
        raise TypeError(f"cache must be the cache returned by dropout_forward; got a tuple "
                        f"starting with {tag!r}")
    check_dout(dout, shape, "dropout_forward")
    if mode == "test":
        return dout.astype(dtype, copy=True)
    return (dout * mask).astype(dtype, copy=False)
