"""Numba kernels for elementwise layers where NumPy has no single fast ufunc.

relu_backward is a select, dx = dout where x > 0, else 0. NumPy's np.where runs it at about
4 ns per element on random signs (10 ms for a 64x32x32x32 batch), and dout * (x > 0) is fast but
gives NaN where dout is inf and x <= 0. This loop compiles to vector compares and blends: about
1 ms for that batch, and exactly np.where's result.
"""

from __future__ import annotations

import numba
import numpy as np

from course_lib.kernels import JIT_OPTIONS

__all__ = ["relu_backward"]


@numba.njit(**JIT_OPTIONS)
def relu_backward(x, dout, dx):
    """dx[i] = dout[i] if x[i] > 0 else 0. x, dout, dx: 1-D, C-contiguous, of one dtype."""
    zero = dx.dtype.type(0)
    for i in range(np.uint64(x.size)):  # unsigned: no negative-index check, see kernels/conv.py
        dx[i] = dout[i] if x[i] > 0 else zero
