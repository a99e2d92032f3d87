"""The affine (fully connected) layer: out = x_flat @ w + b.

Each sample of x, whatever its shape (d1, ..., dk), is flattened in C order into a row of
length D = d1 * ... * dk, so the layer follows a conv or pool layer without a reshape.
The work is matrix products done by BLAS; with more than one BLAS thread configured, the batch
is split over threads with single-threaded BLAS in each, as in the conv layer (see
course_lib/kernels/threads.py for why).
"""

from __future__ import annotations

import numpy as np

from course_lib.kernels.threads import over_batch
from course_lib.validation import check_cache, check_dout, check_float_array

__all__ = ["affine_forward", "affine_backward"]


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Affine layer. x: (N, d1, ..., dk); w: (D, M) with D = d1 * ... * dk; b: (M,).

    Returns (out (N, M), cache) with out = x.reshape(N, D) @ w + b, in x's dtype (w and b are
    cast to it).
    """
    check_float_array(x, "x", layout="(N, d1, ..., dk)")
    if x.ndim < 2:
        raise ValueError(f"x must be at least 2-D (N, d1, ..., dk), one row per sample; got "
                         f"{x.ndim}-D array of shape {x.shape}. For a single sample use "
                         f"x[None].")
    check_float_array(w, "w", 2, "(D, M)")
    check_float_array(b, "b", 1, "(M,)")
    N = x.shape[0]
    D = int(np.prod(x.shape[1:]))
    if w.shape[0] != D:
        dims = " * ".join(str(d) for d in x.shape[1:])
        raise ValueError(f"w must have shape (D, M) with D = {dims} = {D} to match x of shape "
                         f"{x.shape}; got {w.shape}")
    M = w.shape[1]
    if b.shape != (M,):
        raise ValueError(f"b must have shape (M,) with M={M} to match w of shape {w.shape}; "
                         f"got {b.shape}")
    w = w.astype(x.dtype, copy=False)
    b = b.astype(x.dtype, copy=False)
    x_rows = x.reshape(N, D)
    out = np.empty((N, M), dtype=x.dtype)

    def rows(lo: int, hi: int) -> None:
        np.matmul(x_rows[lo:hi], w, out=out[lo:hi])
        out[lo:hi] += b

    over_batch(rows, N, N * D * M)
    return out, ("affine", x, w, b)


def affine_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of affine_forward. dout: (N, M).

    Returns (dx (x's shape), dw (D, M), db (M,)), in x's dtype:
    dx = dout @ w.T (reshaped to x's shape), dw = x_flat.T @ dout, db = sum(dout, axis=0).
    """
    check_cache(cache, "cache", 4, "affine_forward")
    tag, x, w, b = cache
    if not (isinstance(tag, str) and tag == "affine"):
        raise TypeError(f"cache must be the cache returned by affine_forward; got a tuple "
                        f"starting with {tag!r}")
    N = x.shape[0]
    D, M = w.shape
    check_dout(dout, (N, M), "affine_forward")
    dout = dout.astype(x.dtype, copy=False)
    x_rows = x.reshape(N, D)
    dx = np.empty((N, D), dtype=x.dtype)
    dw = np.empty((D, M), dtype=x.dtype)

    def features(lo: int, hi: int) -> None:  # columns lo:hi of dx, rows lo:hi of dw
        np.matmul(dout, w[lo:hi].T, out=dx[:, lo:hi])
        np.matmul(x_rows[:, lo:hi].T, dout, out=dw[lo:hi])

    over_batch(features, D, 2 * N * D * M)
    db = dout.sum(axis=0)
    return dx.reshape(x.shape), dw, db
