"""Max and average pooling (fast, Numba), no padding.

Same contract as the assignment's `max_pool_forward_naive` / `max_pool_backward_naive`:
pool_param = {'pool_height': ph, 'pool_width': pw, 'stride': s}, NCHW images, and a window's
gradient goes to its first maximum in row-major order (as np.argmax). Any stride works: the
output size is floored as in PyTorch (H' = 1 + (H - ph) // s); rows and columns that no window
reaches get zero gradient.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from course_lib.kernels import pooling as kernels
from course_lib.validation import (
    check_cache,
    check_dout,
    check_float_array,
    check_param_dict,
    check_positive_int,
    conv_output_size,
)

__all__ = ["avg_pool_backward", "avg_pool_forward", "max_pool_backward", "max_pool_forward"]


def _check_pool_args(x: Any, pool_param: Any) -> tuple[np.ndarray, int, int, int, int, int]:
    """(x as a writeable C-contiguous array, ph, pw, stride, H', W')."""
    check_float_array(x, "x", 4, "(N, C, H, W)")
    check_param_dict(pool_param, "pool_param", ("pool_height", "pool_width", "stride"))
    ph = check_positive_int(pool_param["pool_height"], "pool_param['pool_height']")
    pw = check_positive_int(pool_param["pool_width"], "pool_param['pool_width']")
    stride = check_positive_int(pool_param["stride"], "pool_param['stride']")
    _, _, H, W = x.shape
    if ph > H or pw > W:
        raise ValueError(f"pool window ({ph}, {pw}) must fit in the input ({H}, {W}) of x; got a "
                         f"larger window. Use a smaller pool_height/pool_width.")
    x = np.ascontiguousarray(x)
    return ((x if x.flags.writeable else x.copy()), ph, pw, stride,
            conv_output_size(H, ph, stride), conv_output_size(W, pw, stride))


def _check_pool_cache(cache: Any, length: int, producer: str) -> tuple:
    check_cache(cache, "cache", length, producer)
    if not (isinstance(cache[0], str) and cache[0] == producer):
        origin = cache[0] if isinstance(cache[0], str) else "another function"
        raise TypeError(f"cache must be the cache returned by {producer}; got one from {origin}")
    return cache


def max_pool_forward(x: np.ndarray,
                     pool_param: Mapping[str, int]) -> tuple[np.ndarray, tuple]:
    """Max pooling.

    x: (N, C, H, W); pool_param: pool_height ph, pool_width pw, stride s. Returns
    out: (N, C, H', W'), H' = 1 + (H - ph) // s, W' = 1 + (W - pw) // s (floored), with

        out[n, c, i, j] = max_{k < ph, l < pw} x[n, c, i*s + k, j*s + l]

    and a cache holding each window's argmax (the first maximum in row-major order).
    """
    x, ph, pw, stride, Ho, Wo = _check_pool_args(x, pool_param)
    N, C = x.shape[:2]
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int32)
    kernels.max_pool_forward(x, ph, pw, stride, out, argmax)
    return out, ("max_pool_forward", x.shape, x.dtype, argmax)


def max_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Gradient of max_pool_forward: dout (N, C, H', W') -> dx (N, C, H, W).

    Each dout[n, c, i, j] goes to the position of its window's first maximum; where windows
    overlap and share that position, the gradients add.
    """
    _, x_shape, dtype, argmax = _check_pool_cache(cache, 4, "max_pool_forward")
    check_dout(dout, argmax.shape, "max_pool_forward")
    dx = np.zeros(x_shape, dtype=dtype)
    kernels.max_pool_backward(np.ascontiguousarray(dout, dtype=dtype), argmax, dx)
    return dx


def avg_pool_forward(x: np.ndarray,
                     pool_param: Mapping[str, int]) -> tuple[np.ndarray, tuple]:
    """Average pooling.

    x: (N, C, H, W); pool_param as for max_pool_forward. Returns out: (N, C, H', W') with

        out[n, c, i, j] = 1/(ph*pw) * sum_{k < ph, l < pw} x[n, c, i*s + k, j*s + l]

    and a cache for avg_pool_backward.
    """
    x, ph, pw, stride, Ho, Wo = _check_pool_args(x, pool_param)
    N, C = x.shape[:2]
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    scale = x.dtype.type(1.0 / (ph * pw))
    kernels.avg_pool_forward(x, ph, pw, stride, scale, out)
    return out, ("avg_pool_forward", x.shape, x.dtype, (ph, pw, stride))


def avg_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Gradient of avg_pool_forward: dout (N, C, H', W') -> dx (N, C, H, W).

        dx[n, c, i*s + k, j*s + l] += dout[n, c, i, j] / (ph*pw)   for every window (i, j)
    """
    _, x_shape, dtype, (ph, pw, stride) = _check_pool_cache(cache, 4, "avg_pool_forward")
    N, C, H, W = x_shape
    check_dout(dout, (N, C, conv_output_size(H, ph, stride), conv_output_size(W, pw, stride)),
               "avg_pool_forward")
    dx = np.zeros(x_shape, dtype=dtype)
    scale = dtype.type(1.0 / (ph * pw))
    kernels.avg_pool_backward(np.ascontiguousarray(dout, dtype=dtype), ph, pw, stride, scale, dx)
    return dx
