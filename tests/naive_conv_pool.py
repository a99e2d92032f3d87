"""Naive convolution and pooling in plain Python loops: the tests' reference implementation.

This is a deliberate, independent second implementation of the formulas in
course_lib/layers/conv.py and course_lib/layers/pooling.py, written the way a student would
write the assignment's `*_naive` functions: explicit loops over every output element, np.pad for
the zero padding, windows sliced out of the padded input. It shares no code with course_lib, so
an agreement between the two is evidence that both are right. It is slow on purpose; keep the
test shapes small.

Output sizes are floored, as in PyTorch and the contract: H' = 1 + (H + 2*pad - HH) // stride.
The loops visit only the H' x W' windows that fit, each sliced whole from the (padded) input,
so rows and columns that no window reaches are never read, and their gradient stays at the zero
the backward loops start from. `_window` checks that every slice is a full window.
"""

import numpy as np


def _window(a, i, j, height, width):
    """a[..., i:i+height, j:j+width], refusing a slice cut short by the edge of `a`."""
    window = a[..., i:i + height, j:j + width]
    assert window.shape[-2:] == (height, width), "a window reaches past the input"
    return window


def conv_forward_naive(x, w, b, conv_param):
    """x (N, C, H, W), w (F, C, HH, WW), b (F,) -> out (N, F, H', W'); cross-correlation."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    Ho = 1 + (H + 2 * pad - HH) // stride
    Wo = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = _window(x_pad[n], i * stride, j * stride, HH, WW)
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def conv_backward_naive(dout, x, w, conv_param):
    """Gradients of conv_forward_naive with respect to x, w and b."""
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = np.zeros(F, dtype=dout.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    g = dout[n, f, i, j]
                    db[f] += g
                    dw[f] += g * _window(x_pad[n], i * stride, j * stride, HH, WW)
                    _window(dx_pad[n], i * stride, j * stride, HH, WW)[...] += g * w[f]
    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """x (N, C, H, W) -> out (N, C, H', W'), the max of each window."""
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // stride, 1 + (W - pw) // stride
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, c, i, j] = np.max(_window(x[n, c], i * stride, j * stride, ph, pw))
    return out


def max_pool_backward_naive(dout, x, pool_param):
    """Each window's gradient goes to its first maximum in row-major order (np.argmax)."""
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, Ho, Wo = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    window = _window(x[n, c], i * stride, j * stride, ph, pw)
                    k, l = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + k, j * stride + l] += dout[n, c, i, j]
    return dx


def avg_pool_forward_naive(x, pool_param):
    """x (N, C, H, W) -> out (N, C, H', W'), the mean of each window."""
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) // stride, 1 + (W - pw) // stride
    out = np.zeros((N, C, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    out[n, c, i, j] = np.mean(_window(x[n, c], i * stride, j * stride, ph, pw))
    return out


def avg_pool_backward_naive(dout, x, pool_param):
    """Each window spreads its gradient evenly over its ph*pw inputs."""
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, Ho, Wo = dout.shape
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    _window(dx[n, c], i * stride, j * stride, ph, pw)[...] += (
                        dout[n, c, i, j] / (ph * pw))
    return dx
