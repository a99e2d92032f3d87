"""Convolution layer (fast): im2col in Numba, the matrix products in BLAS.

Same contract as the assignment's `conv_forward_naive` / `conv_backward_naive`: NCHW images,
weights (F, C, HH, WW), cross-correlation (no kernel flip), zero padding.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from course_lib.kernels import conv as kernels
from course_lib.kernels.threads import over_batch
from course_lib.validation import (
    check_cache,
    check_dout,
    check_float_array,
    check_nonnegative_int,
    check_param_dict,
    check_positive_int,
    conv_output_size,
)

__all__ = ["conv_backward", "conv_forward"]

# OpenBLAS (0.3.2x-0.3.31 on x86-64) computes products of at most 10**6 multiply-adds with a
# kernel that skips packing the operands; for the skinny per-image products of a conv layer that
# kernel ran 1.3-1.6x faster (float32; 1.1-1.2x float64), so the forward product and the
# columns' gradient are computed in blocks of columns small enough to qualify, in multiples of
# 32 columns (other widths were slower). Measured; see benchmarks/README.md.
_SMALL_PRODUCT_MACS = 1_000_000

_CACHE_TAG = "conv_forward"


def _kernel_array(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """C-contiguous, writeable, of `dtype`: the one layout the kernels are compiled for."""
    a = np.ascontiguousarray(a, dtype=dtype)
    return a if a.flags.writeable else a.copy()


def _check_conv_args(x: Any, w: Any, b: Any, conv_param: Any):
    check_float_array(x, "x", 4, "(N, C, H, W)")
    check_float_array(w, "w", 4, "(F, C, HH, WW)")
    check_float_array(b, "b", 1, "(F,)")
    check_param_dict(conv_param, "conv_param", ("stride", "pad"))
    stride = check_positive_int(conv_param["stride"], "conv_param['stride']")
    pad = check_nonnegative_int(conv_param["pad"], "conv_param['pad']")
    _, C, H, W = x.shape
    F, Cw, HH, WW = w.shape
    if min(w.shape) < 1:
        raise ValueError(f"w must have shape (F, C, HH, WW) with every size >= 1; got {w.shape}")
    if Cw != C:
        raise ValueError(f"w must have shape (F, C, HH, WW) with C={C} to match x; got {w.shape}")
    if b.shape != (F,):
        raise ValueError(f"b must have shape (F,) with F={F} to match w; got {b.shape}")
    Hp, Wp = H + 2 * pad, W + 2 * pad
    if HH > Hp or WW > Wp:
        raise ValueError(
            f"w's kernel ({HH}, {WW}) must fit in the padded input ({Hp}, {Wp}) "
            f"(x is {H}x{W}, pad={pad}); got a larger kernel. Use a smaller kernel or more pad.")
    dtype = x.dtype
    return (_kernel_array(x, dtype), _kernel_array(w, dtype), np.asarray(b, dtype=dtype),
            stride, pad)


def _column_buffer(K: int, P: int, dtype: np.dtype) -> np.ndarray:
    """Scratch for one unfolded image: (1, K + 1, P), its last row all ones (the bias)."""
    cols = np.empty((1, K + 1, P), dtype=dtype)
    cols[:, K, :] = 1
    return cols


def _column_block(rows: int, inner: int, columns: int) -> int:
    """Columns per block for a (rows, inner) @ (inner, columns) product (see above)."""
    if rows * inner * columns <= _SMALL_PRODUCT_MACS:
        return columns
    block = _SMALL_PRODUCT_MACS // (rows * inner) // 32 * 32
    return block if block >= 32 else columns


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                 conv_param: Mapping[str, int]) -> tuple[np.ndarray, tuple]:
    """Convolution (cross-correlation) with zero padding.

    x: (N, C, H, W); w: (F, C, HH, WW); b: (F,); conv_param: {'stride': s, 'pad': p}.
    Returns out: (N, F, H', W') with H' = 1 + (H + 2p - HH) // s, W' = 1 + (W + 2p - WW) // s,

        out[n, f, i, j] = b[f] + sum_{c, k, l} w[f, c, k, l] * x_pad[n, c, i*s + k, j*s + l]

    and a cache for conv_backward. Any stride works: the division is floored (as in PyTorch),
    so when s does not divide H + 2p - HH, the last rows that no window reaches are skipped
    (likewise columns). Computed as out[n] = [w.reshape(F, K), b] @ [im2col(x[n]); ones] with
    K = C*HH*WW.
    """
    x, w, b, stride, pad = _check_conv_args(x, w, b, conv_param)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = conv_output_size(H, HH, stride, pad), conv_output_size(W, WW, stride, pad)
    K, P = C * HH * WW, Ho * Wo

    out = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    out_rows = out.reshape(N, F, P)
    # The bias rides along in the matrix product: one extra column of w holding b, and one extra
    # row of ones under the unfolded input, so no separate pass over `out` is needed.
    w_rows = np.concatenate([w.reshape(F, K), b[:, None]], axis=1)
    block = _column_block(F, K + 1, P)

    def forward_images(lo: int, hi: int) -> None:
        kernels.conv_forward_images(x, lo, hi, HH, WW, stride, pad, Ho, Wo, w_rows, block,
                                    _column_buffer(K, P, x.dtype), out_rows)

    over_batch(forward_images, N, N * F * K * P)
    return out, (_CACHE_TAG, x, w, stride, pad)


def conv_backward(dout: np.ndarray, cache: tuple, *,
                  need_dx: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of conv_forward.

    dout: (N, F, H', W'); cache from conv_forward. Returns dx (N, C, H, W), dw (F, C, HH, WW),
    db (F,); dx is None when need_dx=False (a model's first layer: nothing upstream needs the
    images' gradient, and skipping it saves the product and the scatter that make it, about a
    third of the backward's work):
        db[f] = sum_{n, i, j} dout[n, f, i, j]
        dw    = sum_n dout[n].reshape(F, P) @ im2col(x[n]).T       (reshaped to w's shape)
        dx[n] = col2im(w.reshape(F, K).T @ dout[n].reshape(F, P))   (scatter-add of the columns)

    Input rows and columns that no window reached (a stride that does not divide) get dx = 0.
    """
    check_cache(cache, "cache", 5, "conv_forward")
    if not (isinstance(cache[0], str) and cache[0] == _CACHE_TAG):
        raise TypeError("cache must be the cache returned by conv_forward; got a cache from "
                        f"{cache[0] if isinstance(cache[0], str) else 'another function'}")
    _, x, w, stride, pad = cache
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho, Wo = conv_output_size(H, HH, stride, pad), conv_output_size(W, WW, stride, pad)
    K, P = C * HH * WW, Ho * Wo
    check_dout(dout, (N, F, Ho, Wo), "conv_forward")
    if not isinstance(need_dx, bool):
        raise TypeError(f"need_dx must be True or False; got {type(need_dx).__name__} "
                        f"{need_dx!r}")
    dout_rows = _kernel_array(dout, x.dtype).reshape(N, F, P)

    dx = np.empty_like(x) if need_dx else np.empty((0, 0, 0, 0), dtype=x.dtype)
    w_mat = w.reshape(F, K)
    block = _column_block(K, F, P)

    def backward_images(lo: int, hi: int) -> np.ndarray:
        # dw and db of these images as one (K+1, F) array (transposed, because BLAS runs this
        # product faster that way round; the ones row of the column buffer makes the last row
        # db). Each thread has its own; dx rows of different images never overlap.
        dwb_t = np.zeros((K + 1, F), dtype=x.dtype)
        kernels.conv_backward_images(x, dout_rows, lo, hi, HH, WW, stride, pad, Ho, Wo, w_mat,
                                     block, _column_buffer(K, P, x.dtype), dwb_t, need_dx, dx)
        return dwb_t

    dwb_t = sum(over_batch(backward_images, N, (1 + need_dx) * N * F * K * P))
    dw = np.ascontiguousarray(dwb_t[:K].T).reshape(w.shape)
    return (dx if need_dx else None), dw, dwb_t[K].copy()
