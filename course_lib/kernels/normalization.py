"""Numba kernels for batch, spatial batch, group and layer normalisation.

Two layouts cover all four layers (the public functions in course_lib/layers/normalization.py
reshape, validate and own the formulas):

- per channel, `x: (N, C, L)`: statistics of channel c over all N and L (batch norm with L = 1,
  spatial batch norm with L = H*W);
- per group, `x: (N, G, Cg, L)`: statistics of every (sample n, group g) over its Cg*L
  contiguous values (group norm with L = H*W, layer norm with G = 1, Cg = D, L = 1).

Numerics, chosen deliberately:
- Statistics are accumulated in float64 for float32 and float64 inputs alike. The library is
  the grading oracle, so its statistics should be exact to the last digits that matter: with
  float64 accumulators the variance of a (64, 32, 32, 32) float32 tensor is good to ~1e-15
  (relative), with float32 accumulators only to ~1e-6 even with the shift below. The price is
  small: the statistics pass takes ~0.25 ms instead of ~0.13 ms (4 instead of 8 SIMD lanes)
  out of ~0.7 ms for the whole forward, on the course machine.
- Each reduction is shifted by one sample of its own set (t = x - x_first), so the one-pass
  variance does not cancel catastrophically when |mean| >> std (e.g. x = 1000 + randn).
- The elementwise passes (out, dx) run in x's dtype with coefficients the caller has already
  cast to that dtype, so float32 loops stay 8 lanes wide (no float64 promotion). The mean
  arrives as two parts in x's dtype, mean = mean_hi + mean_lo, and x - mean is formed as
  (x - mean_hi) - mean_lo: the first difference is exact for x near the mean, so x - mean keeps
  float32's relative precision even when |mean| >> std (a plain float32 mean would carry an
  error of eps * |mean|, i.e. eps * |mean| / std in xhat).
- fastmath reassoc lets LLVM vectorise the reductions; the elementwise kernels get only
  contract (fused multiply-adds), since reassociation could fold the two-part mean back into
  one. Results differ from NumPy's summation order in the last bits only.
Kernels are serial: parallel=True would need per-thread channel accumulators, and a single
thread already streams at memory speed on the course's 2 shared cores.
"""

from __future__ import annotations

import numba
import numpy as np

from course_lib.kernels import JIT_OPTIONS

__all__: list[str] = []  # kernels are internal; the layers are the public API

# Vectorising a float reduction needs reassociation; contract allows fused multiply-adds.
_REDUCE = {"reassoc", "contract"}
# Elementwise loops vectorise without reassociation, which must not undo (x - hi) - lo.
_ELEMENTWISE = {"contract"}


# --------------------------------------------------------------------------- per channel
@numba.jit(**JIT_OPTIONS, fastmath=_REDUCE)
def channel_moments(x):
    """x: (N, C, L) -> (mean (C,), var (C,)) float64 over axes N and L; biased variance."""
    N, C, L = x.shape
    shift = np.empty(C)
    for c in range(C):
        shift[c] = x[0, c, 0]
    s1 = np.zeros(C)
    s2 = np.zeros(C)
    for n in range(N):
        for c in range(C):
            k = shift[c]
            a = 0.0
            b = 0.0
            for i in range(L):
                t = np.float64(x[n, c, i]) - k
                a += t
                b += t * t
            s1[c] += a
            s2[c] += b
    count = N * L
    mean = np.empty(C)
    var = np.empty(C)
    for c in range(C):
        d = s1[c] / count
        mean[c] = shift[c] + d
        var[c] = max(s2[c] / count - d * d, 0.0)  # rounding can give -1e-17 for constants
    return mean, var


@numba.jit(**JIT_OPTIONS, fastmath=_ELEMENTWISE)
def channel_normalize(x, mean_hi, mean_lo, scale, beta, out):
    """out[n, c, i] = (x[n, c, i] - mean[c]) * scale[c] + beta[c]; all arrays of x's dtype,
    mean = mean_hi + mean_lo."""
    N, C, L = x.shape
    for n in range(N):
        for c in range(C):
            hi = mean_hi[c]
            lo = mean_lo[c]
            s = scale[c]
            b = beta[c]
            for i in range(L):
                out[n, c, i] = ((x[n, c, i] - hi) - lo) * s + b


@numba.jit(**JIT_OPTIONS, fastmath=_REDUCE)
def channel_backward_sums(dout, x, mean):
    """dout, x: (N, C, L); mean: (C,) float64.

    Returns float64 (sum of dout, sum of dout * (x - mean)) per channel, over axes N and L.
    """
    N, C, L = x.shape
    sum_d = np.zeros(C)
    sum_dxc = np.zeros(C)
    for n in range(N):
        for c in range(C):
            m = mean[c]
            a = 0.0
            b = 0.0
            for i in range(L):
                d = np.float64(dout[n, c, i])
                a += d
                b += d * (np.float64(x[n, c, i]) - m)
            sum_d[c] += a
            sum_dxc[c] += b
    return sum_d, sum_dxc


@numba.jit(**JIT_OPTIONS, fastmath=_ELEMENTWISE)
def channel_backward_dx(dout, x, mean_hi, mean_lo, k_dout, k_xc, k_const, dx):
    """dx[n, c, i] = k_dout[c] * dout + k_xc[c] * (x - mean[c]) + k_const[c]; x's dtype,
    mean = mean_hi + mean_lo."""
    N, C, L = x.shape
    for n in range(N):
        for c in range(C):
            hi = mean_hi[c]
            lo = mean_lo[c]
            a = k_dout[c]
            b = k_xc[c]
            k = k_const[c]
            for i in range(L):
                dx[n, c, i] = a * dout[n, c, i] + (b * ((x[n, c, i] - hi) - lo) + k)


# --------------------------------------------------------------------------- per group
@numba.jit(**JIT_OPTIONS, fastmath=_REDUCE)
def group_moments(x):
    """x: (N, G, M) -> (mean (N, G), var (N, G)) float64 over the last axis; biased variance."""
    N, G, M = x.shape
    mean = np.empty((N, G))
    var = np.empty((N, G))
    for n in range(N):
        for g in range(G):
            k = np.float64(x[n, g, 0])
            a = 0.0
            b = 0.0
            for i in range(M):
                t = np.float64(x[n, g, i]) - k
                a += t
                b += t * t
            d = a / M
            mean[n, g] = k + d
            var[n, g] = max(b / M - d * d, 0.0)
    return mean, var


@numba.jit(**JIT_OPTIONS, fastmath=_ELEMENTWISE)
def group_normalize(x, mean_hi, mean_lo, inv_std, gamma, beta, out):
    """x, out: (N, G, Cg, L); mean_hi, mean_lo, inv_std: (N, G); gamma, beta: (G, Cg); all of
    x's dtype.

    out = (x - mean[n, g]) * (gamma[g, c] * inv_std[n, g]) + beta[g, c], mean = mean_hi + mean_lo
    """
    N, G, Cg, L = x.shape
    for n in range(N):
        for g in range(G):
            hi = mean_hi[n, g]
            lo = mean_lo[n, g]
            r = inv_std[n, g]
            for c in range(Cg):
                s = gamma[g, c] * r
                b = beta[g, c]
                for i in range(L):
                    out[n, g, c, i] = ((x[n, g, c, i] - hi) - lo) * s + b


@numba.jit(**JIT_OPTIONS, fastmath=_REDUCE)
def group_backward_sums(dout, x, mean):
    """dout, x: (N, G, Cg, L); mean: (N, G) float64.

    Returns float64 (sum of dout, sum of dout * (x - mean[n, g])), each (N, G, Cg): sums over L
    for every sample and channel.
    """
    N, G, Cg, L = x.shape
    sum_d = np.empty((N, G, Cg))
    sum_dxc = np.empty((N, G, Cg))
    for n in range(N):
        for g in range(G):
            m = mean[n, g]
            for c in range(Cg):
                a = 0.0
                b = 0.0
                for i in range(L):
                    d = np.float64(dout[n, g, c, i])
                    a += d
                    b += d * (np.float64(x[n, g, c, i]) - m)
                sum_d[n, g, c] = a
                sum_dxc[n, g, c] = b
    return sum_d, sum_dxc


@numba.jit(**JIT_OPTIONS, fastmath=_ELEMENTWISE)
def group_backward_dx(dout, x, mean_hi, mean_lo, inv_std, gamma, k_xc, k_const, dx):
    """dx = gamma[g, c] * inv_std[n, g] * dout + k_xc[n, g] * (x - mean[n, g]) + k_const[n, g].

    dout, x, dx: (N, G, Cg, L); mean_hi, mean_lo (mean = their sum), inv_std, k_xc, k_const:
    (N, G); gamma: (G, Cg); all of x's dtype.
    """
    N, G, Cg, L = x.shape
    for n in range(N):
        for g in range(G):
            hi = mean_hi[n, g]
            lo = mean_lo[n, g]
            r = inv_std[n, g]
            b = k_xc[n, g]
            k = k_const[n, g]
            for c in range(Cg):
                a = gamma[g, c] * r
                for i in range(L):
                    dx[n, g, c, i] = a * dout[n, g, c, i] + (b * ((x[n, g, c, i] - hi) - lo)
                                                             + k)
