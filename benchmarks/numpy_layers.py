"""Vectorised NumPy versions of conv, max pooling and spatial batch norm: the middle baseline.

What a careful NumPy programmer writes without Numba: the conv unfolds windows with
sliding_window_view and lets tensordot copy them into a matrix for BLAS (im2col), and scatters
the gradient back with one strided add per kernel offset; max pooling reshapes the 2x2 tiles;
batch norm reduces over (N, H, W). Benchmarks only: course_lib does not use these.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def conv_forward_numpy(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    F, C, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x_pad, (HH, WW), axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3]))  # (N, H', W', F)
    out = np.ascontiguousarray(out.transpose(0, 3, 1, 2)) + b[None, :, None, None]
    return out, (x_pad, windows, w, stride, pad, x.shape)


def conv_backward_numpy(dout, cache):
    x_pad, windows, w, stride, pad, (N, C, H, W) = cache
    F, _, HH, WW = w.shape
    _, _, Ho, Wo = dout.shape
    db = dout.sum(axis=(0, 2, 3))
    dw = np.tensordot(dout, windows, axes=([0, 2, 3], [0, 2, 3]))  # (F, C, HH, WW)
    dx_pad = np.zeros_like(x_pad)
    for kh in range(HH):
        for kw in range(WW):
            contribution = np.tensordot(dout, w[:, :, kh, kw], axes=([1], [0]))  # (N, H', W', C)
            dx_pad[:, :, kh:kh + stride * Ho:stride, kw:kw + stride * Wo:stride] += (
                contribution.transpose(0, 3, 1, 2))
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db


def max_pool_forward_numpy(x, pool_param):
    """Non-overlapping tiles only (pool size == stride, dividing H and W)."""
    ph, pw = pool_param["pool_height"], pool_param["pool_width"]
    N, C, H, W = x.shape
    tiles = x.reshape(N, C, H // ph, ph, W // pw, pw).transpose(0, 1, 2, 4, 3, 5)
    tiles = tiles.reshape(N, C, H // ph, W // pw, ph * pw)
    argmax = tiles.argmax(axis=-1)  # first maximum, as the contract asks
    out = np.take_along_axis(tiles, argmax[..., None], axis=-1)[..., 0]
    return out, (argmax, x.shape, ph, pw)


def max_pool_backward_numpy(dout, cache):
    argmax, (N, C, H, W), ph, pw = cache
    tiles = np.zeros((N, C, H // ph, W // pw, ph * pw), dtype=dout.dtype)
    np.put_along_axis(tiles, argmax[..., None], dout[..., None], axis=-1)
    tiles = tiles.reshape(N, C, H // ph, W // pw, ph, pw).transpose(0, 1, 2, 4, 3, 5)
    return tiles.reshape(N, C, H, W)


def spatial_batchnorm_forward_numpy(x, gamma, beta, eps=1e-5):
    """Training mode; statistics per channel over (N, H, W), biased variance."""
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mean) * inv_std
    out = gamma[None, :, None, None] * x_hat + beta[None, :, None, None]
    return out, (x_hat, inv_std, gamma)


def spatial_batchnorm_backward_numpy(dout, cache):
    x_hat, inv_std, gamma = cache
    m = dout.shape[0] * dout.shape[2] * dout.shape[3]
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3))
    dx = (gamma[None, :, None, None] * inv_std / m) * (
        m * dout - dbeta[None, :, None, None] - x_hat * dgamma[None, :, None, None])
    return dx, dgamma, dbeta
