"""Numba kernels for convolution: im2col (unfold) and col2im (fold with scatter-add).

The convolution itself is a matrix product done by BLAS in `course_lib.layers.conv`:

    cols[b] : (K, P)  with K = C*HH*WW rows (c, kh, kw) and P = H'*W' columns (oh, ow)
    out[n]  = w.reshape(F, K) @ cols[b]                    (F, P)
    dw      = sum_n dout[n] @ cols[b].T                    (F, K)
    dx      = col2im(w.reshape(F, K).T @ dout[n])          (C, H, W)

(the layer appends a row of ones to cols and b as a column of w, so the bias comes out of the
same product.) Why this split: the products are all of the arithmetic and BLAS runs them at
60-80% of the machine's large-matrix rate, while unfolding is pure data movement. Writing
`cols` row by row makes every inner loop a contiguous (stride 1) or simply strided copy that
LLVM vectorises, and padding is handled by zero-filling, so the padded input is never
materialised. For the common "same" convolution (stride 1, W' = W) a whole row of `cols` is one
long copy.

Threading: these kernels are serial on purpose (no `parallel=True`, no prange). The layer
(course_lib/layers/conv.py) parallelises over the batch instead (course_lib/kernels/threads.py):
each thread takes a slice of whole images and runs im2col, its matrix products with
single-threaded BLAS, and col2im; the kernels are compiled with nogil=True. Why not prange over
the batch: it would have to call BLAS inside prange (oversubscription, and Numba's BLAS is
SciPy's separate OpenBLAS), parallel kernels compile about twice as slowly and load from cache
more slowly, and Numba's OpenMP layer is not fork-safe while the autograder starts worker
processes. See benchmarks/README.md for 1- and 2-thread numbers.

Inner loops index with unsigned integers (np.uint64): Numba then skips its negative-index
wraparound check, which otherwise stops LLVM from vectorising the copies (measured 5x slower).

Each kernel is compiled once per dtype (float32 and float64, C-contiguous arrays); the public
layer makes its arguments contiguous and of one dtype before calling.
"""

from __future__ import annotations

import numba
import numpy as np

from course_lib.kernels import JIT_OPTIONS

__all__ = ["col2im_add", "im2col"]


@numba.njit(**JIT_OPTIONS)
def _valid_range(k, stride, pad, size, out_size):
    """Outputs o in [lo, hi) whose input index o*stride + k - pad is in [0, size), not padding."""
    lo = max(0, (pad - k + stride - 1) // stride)  # ceil((pad - k) / stride)
    hi = min(out_size, (size - 1 + pad - k) // stride + 1)
    return lo, max(lo, hi)


@numba.njit(**JIT_OPTIONS)
def im2col(x, n0, kernel_h, kernel_w, stride, pad, Ho, Wo, cols):
    """cols[b, (c*HH + kh)*WW + kw, oh*W' + ow] = x_pad[n0 + b, c, oh*stride + kh, ow*stride + kw].

    x: (N, C, H, W); Ho, Wo: the output size (validation.conv_output_size); cols: (B, R, Ho*Wo)
    with R >= C*HH*WW; rows from C*HH*WW on are left alone (the layer keeps a row of ones there
    for the bias). Fills images n0 .. n0+B-1; zero padding.
    """
    N, C, H, W = x.shape
    nb, _, P = cols.shape
    x_flat = x.reshape(N, C, H * W)
    for b in range(nb):
        n = n0 + b
        for c in range(C):
            for kh in range(kernel_h):
                oh_lo, oh_hi = _valid_range(kh, stride, pad, H, Ho)
                for kw in range(kernel_w):
                    row = (c * kernel_h + kh) * kernel_w + kw
                    lo, hi = _valid_range(kw, stride, pad, W, Wo)
                    for j in range(np.uint64(oh_lo * Wo)):  # padding rows above and below
                        cols[b, row, j] = 0
                    for j in range(np.uint64(oh_hi * Wo), np.uint64(P)):
                        cols[b, row, j] = 0
                    if stride == 1 and Wo == W:
                        # 'Same' width: column p reads x_flat[p + shift] for one constant shift,
                        # so the whole row is one long copy; the entries that wrapped around a
                        # row edge (padding columns) are zeroed afterwards.
                        shift = (kh - pad) * W + (kw - pad)
                        start = max(oh_lo * W, -shift)
                        stop = min(oh_hi * W, H * W - shift)
                        dst, src = np.uint64(start), np.uint64(start + shift)
                        for j in range(np.uint64(max(0, stop - start))):
                            cols[b, row, dst + j] = x_flat[n, c, src + j]
                        for oh in range(oh_lo, oh_hi):
                            base = np.uint64(oh * Wo)
                            for j in range(np.uint64(lo)):
                                cols[b, row, base + j] = 0
                            for j in range(np.uint64(hi), np.uint64(Wo)):
                                cols[b, row, base + j] = 0
                        continue
                    width = np.uint64(hi - lo)
                    iw0 = np.uint64(lo * stride + kw - pad)
                    for oh in range(oh_lo, oh_hi):
                        ih = oh * stride + kh - pad
                        base = np.uint64(oh * Wo)
                        for j in range(np.uint64(lo)):
                            cols[b, row, base + j] = 0
                        dst = base + np.uint64(lo)
                        for j in range(width):
                            cols[b, row, dst + j] = x[n, c, ih, iw0 + j * np.uint64(stride)]
                        for j in range(np.uint64(hi), np.uint64(Wo)):
                            cols[b, row, base + j] = 0


@numba.njit(**JIT_OPTIONS)
def col2im_add(cols, n0, kernel_h, kernel_w, stride, pad, Ho, Wo, dx):
    """dx[n0 + b, c, ih, iw] += cols[b, k, p] for every (k, p) that im2col read from (ih, iw).

    The adjoint of im2col: entries that im2col took from the zero padding are dropped, and input
    positions that no window reaches (a floored output size) receive nothing.
    cols: (B, R, Ho*Wo) with R >= C*HH*WW, used as scratch (its padding entries are zeroed);
    dx: (N, C, H, W), accumulated in place.
    """
    N, C, H, W = dx.shape
    nb, _, P = cols.shape
    dx_flat = dx.reshape(N, C, H * W)
    for b in range(nb):
        n = n0 + b
        for c in range(C):
            for kh in range(kernel_h):
                oh_lo, oh_hi = _valid_range(kh, stride, pad, H, Ho)
                for kw in range(kernel_w):
                    row = (c * kernel_h + kh) * kernel_w + kw
                    lo, hi = _valid_range(kw, stride, pad, W, Wo)
                    if stride == 1 and Wo == W:  # one long add, as in im2col
                        for oh in range(oh_lo, oh_hi):
                            base = np.uint64(oh * Wo)
                            for j in range(np.uint64(lo)):
                                cols[b, row, base + j] = 0
                            for j in range(np.uint64(hi), np.uint64(Wo)):
                                cols[b, row, base + j] = 0
                        shift = (kh - pad) * W + (kw - pad)
                        start = max(oh_lo * W, -shift)
                        stop = min(oh_hi * W, H * W - shift)
                        src, dst = np.uint64(start), np.uint64(start + shift)
                        for j in range(np.uint64(max(0, stop - start))):
                            dx_flat[n, c, dst + j] += cols[b, row, src + j]
                        continue
                    width = np.uint64(hi - lo)
                    iw0 = np.uint64(lo * stride + kw - pad)
                    for oh in range(oh_lo, oh_hi):
                        ih = oh * stride + kh - pad
                        src = np.uint64(oh * Wo + lo)
                        for j in range(width):
                            dx[n, c, ih, iw0 + j * np.uint64(stride)] += cols[b, row, src + j]
