"""Numba kernels for convolution: im2col (unfold), col2im (fold with scatter-add), and the
per-image loops of the forward and backward passes around BLAS's matrix product.

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

The products are called from inside the kernels (course_lib.kernels.blas), so one call of
conv_forward_images / conv_backward_images handles a whole slice of the batch without the GIL.

Threading: these kernels are serial on purpose (no `parallel=True`, no prange). The layer
(course_lib/layers/conv.py) parallelises over the batch instead (course_lib/kernels/threads.py):
each thread takes a slice of whole images and runs one of the *_images kernels on it, with
BLAS single-threaded; the kernels are compiled with nogil=True. Why not prange over the batch:
BLAS inside prange would oversubscribe the cores unless it were limited per call, parallel
kernels compile about twice as slowly and load from cache more slowly, and Numba's OpenMP
layer is not fork-safe while the autograder starts worker processes. See benchmarks/README.md
for 1- and 2-thread numbers.

Inner loops index with unsigned integers (np.uint64): Numba then skips its negative-index
wraparound check, which otherwise stops LLVM from vectorising the copies (measured 5x slower).

Each kernel is compiled once per dtype (float32 and float64, C-contiguous arrays); the public
layer makes its arguments contiguous and of one dtype before calling.
"""

from __future__ import annotations

import numba
import numpy as np

from course_lib.kernels import JIT_OPTIONS
from course_lib.kernels.blas import gemm

__all__ = ["col2im_add", "conv_backward_images", "conv_forward_images", "im2col"]


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


@numba.njit(**JIT_OPTIONS)
def conv_forward_images(x, lo, hi, kernel_h, kernel_w, stride, pad, Ho, Wo, w_rows, block,
                        cols, out):
    """out[n] = w_rows @ [im2col(x[n]); ones] for the images n in [lo, hi).

    w_rows: (F, K+1), the weights as rows with the bias as last column; cols: (1, K+1, P) scratch
    whose last row is all ones; out: (N, F, P). The product runs `block` columns at a time (the
    layer picks the width, see course_lib.layers.conv).
    """
    F, rows = w_rows.shape
    P = Ho * Wo
    for n in range(lo, hi):
        im2col(x, n, kernel_h, kernel_w, stride, pad, Ho, Wo, cols)
        for j in range(0, P, block):
            width = min(block, P - j)
            gemm(False, False, F, width, rows, 1.0, w_rows, rows, cols[0, :, j:], P, 0.0,
                 out[n, :, j:], P)


@numba.njit(**JIT_OPTIONS)
def conv_backward_images(x, dout, lo, hi, kernel_h, kernel_w, stride, pad, Ho, Wo, w_mat,
                         block, cols, dwb_t, need_dx, dx):
    """For the images n in [lo, hi): dwb_t += [im2col(x[n]); ones] @ dout[n].T, and if need_dx,
    dx[n] = col2im(w_mat.T @ dout[n]).

    dout: (N, F, P); w_mat: (F, K), the weights as rows; cols: (1, K+1, P) scratch with a last
    row of ones; dwb_t: (K+1, F), accumulated (its last row is db); dx: (N, C, H, W), dx[n] is
    overwritten (zeroed here, in the thread and while it is in the cache, then accumulated
    into); not touched when need_dx is False.
    """
    F, K = w_mat.shape
    rows, P = K + 1, Ho * Wo
    for n in range(lo, hi):
        im2col(x, n, kernel_h, kernel_w, stride, pad, Ho, Wo, cols)
        gemm(False, True, rows, F, P, 1.0, cols[0], P, dout[n], P, 1.0, dwb_t, F)
        if need_dx:  # the columns' gradient, into the same buffer (its ones row stays)
            for j in range(0, P, block):
                width = min(block, P - j)
                gemm(True, False, K, width, F, 1.0, w_mat, K, dout[n, :, j:], P, 0.0,
                     cols[0, :, j:], P)
            dx[n] = 0
            col2im_add(cols, n, kernel_h, kernel_w, stride, pad, Ho, Wo, dx)
