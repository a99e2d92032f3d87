"""Numba kernels for max and average pooling (no padding), one pass over the input each.

Max pooling records, for every output, where its maximum came from (the flat index ih*W + iw
within the image plane), so the backward pass is a scatter-add of dout into those positions.
The first maximum in row-major order wins, as with np.argmax; a NaN counts as the maximum, again
as with np.argmax (and np.max), so NaNs propagate instead of silently disappearing.

Threading: serial, like the conv kernels (see course_lib/kernels/conv.py): pooling is bound by
memory traffic, one pass over an 8 MiB batch takes about a millisecond, and serial kernels keep
Numba's thread pool out of the picture. Compiled once per dtype (float32, float64).
"""

from __future__ import annotations

import numba
import numpy as np

from course_lib.kernels import JIT_OPTIONS

__all__ = ["avg_pool_backward", "avg_pool_forward", "max_pool_backward", "max_pool_forward"]


@numba.njit(**JIT_OPTIONS)
def _keep_first_max(best, best_at, v, v_at):
    """(best, best_at) after looking at v: strictly greater keeps the first maximum, and the
    first NaN wins, as with np.argmax.

    Written without `if`/`or` so it compiles to conditional moves: on random data a branch is
    mispredicted about half the time.
    """
    take = (v > best) | ((v != v) & (best == best))
    return (v if take else best), (v_at if take else best_at)


@numba.njit(**JIT_OPTIONS)
def max_pool_forward(x, pool_h, pool_w, stride, out, argmax):
    """out[n, c, i, j] = max of the window x[n, c, i*s : i*s+ph, j*s : j*s+pw]; argmax its position.

    x: (N, C, H, W); out: (N, C, H', W'); argmax: (N, C, H', W') int32, filled with ih*W + iw.
    """
    if pool_h == 2 and pool_w == 2 and stride == 2:
        _max_pool_2x2(x, out, argmax)
        return
    N, C, H, W = x.shape
    _, _, Ho, Wo = out.shape
    us = np.uint64(stride)  # unsigned indices: no negative-index check, see kernels/conv.py
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                # Sweep the window positions (k, l) in row-major order, each over a whole row of
                # outputs at once (a loop LLVM vectorises); every output still sees its window's
                # elements in row-major order, so the first maximum wins.
                i0 = oh * stride
                for ow in range(np.uint64(Wo)):
                    out[n, c, oh, ow] = x[n, c, i0, ow * us]
                    argmax[n, c, oh, ow] = i0 * W + np.int64(ow * us)
                for i in range(i0, i0 + pool_h):
                    for l in range(np.uint64(pool_w)):
                        for ow in range(np.uint64(Wo)):
                            j = ow * us + l
                            best, best_at = _keep_first_max(out[n, c, oh, ow], argmax[n, c, oh, ow],
                                                            x[n, c, i, j], i * W + np.int64(j))
                            out[n, c, oh, ow] = best
                            argmax[n, c, oh, ow] = best_at


@numba.njit(**JIT_OPTIONS)
def _max_pool_2x2(x, out, argmax):
    """max_pool_forward for the common 2x2 window with stride 2, written out so LLVM vectorises
    the loop over output columns (about 3x faster than the general loop)."""
    N, C, H, W = x.shape
    _, _, Ho, Wo = out.shape
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                top, bottom = 2 * oh, 2 * oh + 1
                for ow in range(np.uint64(Wo)):  # unsigned: no negative-index check, see conv
                    j = 2 * ow
                    at = top * W + np.int64(j)
                    best, best_at = x[n, c, top, j], at
                    best, best_at = _keep_first_max(best, best_at, x[n, c, top, j + 1], at + 1)
                    best, best_at = _keep_first_max(best, best_at, x[n, c, bottom, j], at + W)
                    best, best_at = _keep_first_max(best, best_at, x[n, c, bottom, j + 1],
                                                    at + W + 1)
                    out[n, c, oh, ow] = best
                    argmax[n, c, oh, ow] = best_at


@numba.njit(**JIT_OPTIONS)
def max_pool_backward(dout, argmax, dx):
    """dx[n, c] (flat) [argmax[n, c, i, j]] += dout[n, c, i, j]; dx: (N, C, H, W), zeroed by caller.

    Overlapping windows that share a maximum add their gradients.
    """
    N, C, H, W = dx.shape
    _, _, Ho, Wo = dout.shape
    dx_flat = dx.reshape(N, C, H * W)
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    dx_flat[n, c, argmax[n, c, oh, ow]] += dout[n, c, oh, ow]


@numba.njit(**JIT_OPTIONS)
def avg_pool_forward(x, pool_h, pool_w, stride, scale, out):
    """out[n, c, i, j] = scale * sum of the window x[n, c, i*s : i*s+ph, j*s : j*s+pw].

    scale = 1 / (ph*pw), passed in x's dtype so float32 stays float32.
    """
    N, C, H, W = x.shape
    _, _, Ho, Wo = out.shape
    zero = scale - scale  # of x's dtype: a bare 0.0 would make the sum float64
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    i0 = oh * stride
                    j0 = ow * stride
                    total = zero
                    for i in range(i0, i0 + pool_h):
                        for j in range(j0, j0 + pool_w):
                            total += x[n, c, i, j]
                    out[n, c, oh, ow] = total * scale


@numba.njit(**JIT_OPTIONS)
def avg_pool_backward(dout, pool_h, pool_w, stride, scale, dx):
    """dx[n, c, window(i, j)] += scale * dout[n, c, i, j]; dx: (N, C, H, W), zeroed by caller."""
    N, C, H, W = dx.shape
    _, _, Ho, Wo = dout.shape
    for n in range(N):
        for c in range(C):
            for oh in range(Ho):
                for ow in range(Wo):
                    g = dout[n, c, oh, ow] * scale
                    i0 = oh * stride
                    j0 = ow * stride
                    for i in range(i0, i0 + pool_h):
                        for j in range(j0, j0 + pool_w):
                            dx[n, c, i, j] += g

