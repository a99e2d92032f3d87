"""Numba kernel for Adam's update: one pass over w, dw, m and v instead of about ten NumPy
passes with a temporary array each. The Adam update of a ThreeLayerConvNet float32 training
step (about 830,000 parameters) went from 2.3 ms to 0.9 ms of CPU time.

The arithmetic is the layer's formula (course_lib/optim.py) in the same order and in w's dtype,
with the scalars already cast to that dtype, so the results equal NumPy's bit for bit (no
fast-math: nothing is reassociated or fused).
"""

from __future__ import annotations

import numba
import numpy as np

from course_lib.kernels import JIT_OPTIONS

__all__ = ["adam_update"]


# error_model="numpy": no ZeroDivisionError checks, which stop LLVM from vectorising the loop
# (3.2 ms instead of 0.8 ms); eps > 0 keeps the divisor positive anyway.
@numba.njit(**JIT_OPTIONS, error_model="numpy")
def adam_update(w, dw, m, v, lr, beta1, one_minus_beta1, beta2, one_minus_beta2,
                bias1, bias2, eps, next_w, next_m, next_v):
    """next_m = beta1*m + (1-beta1)*dw; next_v = beta2*v + (1-beta2)*dw*dw;
    next_w = w - lr*(next_m/bias1) / (sqrt(next_v/bias2) + eps). All arrays 1-D, contiguous,
    of one dtype; the scalars of that dtype (bias_i = 1 - beta_i**t)."""
    for i in range(np.uint64(w.size)):  # unsigned: no negative-index check, see kernels/conv.py
        g = dw[i]
        mi = beta1 * m[i] + one_minus_beta1 * g
        vi = beta2 * v[i] + one_minus_beta2 * (g * g)
        next_m[i] = mi
        next_v[i] = vi
        next_w[i] = w[i] - lr * (mi / bias1) / (np.sqrt(vi / bias2) + eps)
