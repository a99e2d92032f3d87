"""Naive reference implementations of the normalisation layers and of dropout, for the tests.

This file is a DELIBERATE, INDEPENDENT SECOND IMPLEMENTATION of course_lib.layers.normalization
and course_lib.layers.dropout. It shares none of their structure: plain Python loops over the
sets of values that share one mean and variance, two-pass statistics summed exactly with
math.fsum, and backward passes through the explicit Jacobian matrix of the normalisation
instead of the closed form. Everything is computed in float64, whatever the input dtype.
It is slow on purpose; keep the test shapes small. Never import course_lib here.
"""

from __future__ import annotations

import math

import numpy as np


# --------------------------------------------------------------------------- one set of values
def normalize_values(values, eps):
    """values: a sequence of M numbers. Returns (xhat (M,), mean, var) with the biased var."""
    v = [float(a) for a in values]
    m = len(v)
    mean = math.fsum(v) / m
    var = math.fsum((a - mean) ** 2 for a in v) / m
    xhat = np.array([(a - mean) / math.sqrt(var + eps) for a in v])
    return xhat, mean, var


def normalize_values_backward(values, dxhat, eps):
    """Gradient of the normalisation of one set: dx = J^T dxhat with the explicit Jacobian

    J[i, j] = d xhat_i / d x_j = (delta_ij - 1/M - xhat_i * xhat_j / M) / sqrt(var + eps).
    """
    xhat, _, var = normalize_values(values, eps)
    m = len(xhat)
    jacobian = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            delta = 1.0 if i == j else 0.0
            jacobian[i, j] = (delta - 1.0 / m - xhat[i] * xhat[j] / m) / math.sqrt(var + eps)
    return jacobian.T @ np.asarray(dxhat, dtype=np.float64)


# --------------------------------------------------------------------------- batch norm
def batchnorm_forward_naive(x, gamma, beta, mode, eps=1e-5, momentum=0.9,
                            running_mean=None, running_var=None):
    """x: (N, D). Returns (out, new_running_mean, new_running_var); nothing is changed in place."""
    x = np.asarray(x, dtype=np.float64)
    N, D = x.shape
    rm = np.zeros(D) if running_mean is None else np.array(running_mean, dtype=np.float64)
    rv = np.zeros(D) if running_var is None else np.array(running_var, dtype=np.float64)
    out = np.empty((N, D))
    for d in range(D):
        if mode == "train":
            xhat, mean, var = normalize_values(x[:, d], eps)
            rm[d] = momentum * rm[d] + (1 - momentum) * mean
            rv[d] = momentum * rv[d] + (1 - momentum) * var
        else:
            xhat = (x[:, d] - rm[d]) / math.sqrt(rv[d] + eps)
        for n in range(N):
            out[n, d] = float(gamma[d]) * xhat[n] + float(beta[d])
    return out, rm, rv


def batchnorm_backward_naive(x, gamma, dout, mode, eps=1e-5, running_mean=None,
                             running_var=None):
    """Returns (dx, dgamma, dbeta) of batchnorm_forward_naive; test mode needs the running stats
    (mean and var are then constants, so the set's Jacobian is diagonal)."""
    x = np.asarray(x, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    N, D = x.shape
    dx = np.empty((N, D))
    dgamma = np.empty(D)
    dbeta = np.empty(D)
    for d in range(D):
        dxhat = dout[:, d] * float(gamma[d])
        if mode == "train":
            xhat, _, _ = normalize_values(x[:, d], eps)
            dx[:, d] = normalize_values_backward(x[:, d], dxhat, eps)
        else:
            std = math.sqrt(float(running_var[d]) + eps)
            xhat = (x[:, d] - float(running_mean[d])) / std
            dx[:, d] = dxhat / std
        dgamma[d] = math.fsum(dout[:, d] * xhat)
        dbeta[d] = math.fsum(dout[:, d])
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- spatial batch norm
def spatial_batchnorm_forward_naive(x, gamma, beta, eps=1e-5, momentum=0.9,
                                    running_mean=None, running_var=None):
    """Train mode. x: (N, C, H, W). Returns (out, new_running_mean, new_running_var)."""
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    rm = np.zeros(C) if running_mean is None else np.array(running_mean, dtype=np.float64)
    rv = np.zeros(C) if running_var is None else np.array(running_var, dtype=np.float64)
    out = np.empty(x.shape)
    for c in range(C):
        values = [x[n, c, h, w] for n in range(N) for h in range(H) for w in range(W)]
        xhat, mean, var = normalize_values(values, eps)
        rm[c] = momentum * rm[c] + (1 - momentum) * mean
        rv[c] = momentum * rv[c] + (1 - momentum) * var
        k = 0
        for n in range(N):
            for h in range(H):
                for w in range(W):
                    out[n, c, h, w] = float(gamma[c]) * xhat[k] + float(beta[c])
                    k += 1
    return out, rm, rv


def spatial_batchnorm_backward_naive(x, gamma, dout, eps=1e-5):
    """Train mode. Returns (dx, dgamma, dbeta)."""
    x = np.asarray(x, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    N, C, H, W = x.shape
    dx = np.empty(x.shape)
    dgamma = np.empty(C)
    dbeta = np.empty(C)
    index = [(n, h, w) for n in range(N) for h in range(H) for w in range(W)]
    for c in range(C):
        values = [x[n, c, h, w] for n, h, w in index]
        upstream = [float(dout[n, c, h, w]) for n, h, w in index]
        xhat, _, _ = normalize_values(values, eps)
        grad = normalize_values_backward(values, [u * float(gamma[c]) for u in upstream], eps)
        for k, (n, h, w) in enumerate(index):
            dx[n, c, h, w] = grad[k]
        dgamma[c] = math.fsum(u * xh for u, xh in zip(upstream, xhat, strict=True))
        dbeta[c] = math.fsum(upstream)
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- group norm
def groupnorm_forward_naive(x, gamma, beta, G, eps=1e-5):
    """x: (N, C, H, W), gamma, beta: (C,). Returns out."""
    x = np.asarray(x, dtype=np.float64)
    N, C, H, W = x.shape
    per_group = C // G
    out = np.empty(x.shape)
    for n in range(N):
        for g in range(G):
            index = [(c, h, w) for c in range(g * per_group, (g + 1) * per_group)
                     for h in range(H) for w in range(W)]
            xhat, _, _ = normalize_values([x[n, c, h, w] for c, h, w in index], eps)
            for k, (c, h, w) in enumerate(index):
                out[n, c, h, w] = float(gamma[c]) * xhat[k] + float(beta[c])
    return out


def groupnorm_backward_naive(x, gamma, dout, G, eps=1e-5):
    """Returns (dx, dgamma, dbeta)."""
    x = np.asarray(x, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    N, C, H, W = x.shape
    per_group = C // G
    dx = np.empty(x.shape)
    dgamma_terms = [[] for _ in range(C)]
    dbeta_terms = [[] for _ in range(C)]
    for n in range(N):
        for g in range(G):
            index = [(c, h, w) for c in range(g * per_group, (g + 1) * per_group)
                     for h in range(H) for w in range(W)]
            values = [x[n, c, h, w] for c, h, w in index]
            xhat, _, _ = normalize_values(values, eps)
            dxhat = [float(dout[n, c, h, w]) * float(gamma[c]) for c, h, w in index]
            grad = normalize_values_backward(values, dxhat, eps)
            for k, (c, h, w) in enumerate(index):
                dx[n, c, h, w] = grad[k]
                dgamma_terms[c].append(float(dout[n, c, h, w]) * xhat[k])
                dbeta_terms[c].append(float(dout[n, c, h, w]))
    dgamma = np.array([math.fsum(t) for t in dgamma_terms])
    dbeta = np.array([math.fsum(t) for t in dbeta_terms])
    return dx, dgamma, dbeta


def instancenorm_forward_naive(x, eps=1e-5):
    """Every (sample, channel) plane normalised on its own, no gamma/beta: plain NumPy."""
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=(2, 3), keepdims=True)
    var = ((x - mean) ** 2).mean(axis=(2, 3), keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


# --------------------------------------------------------------------------- layer norm
def layernorm_forward_naive(x, gamma, beta, eps=1e-5):
    """x: (N, D). Returns out."""
    x = np.asarray(x, dtype=np.float64)
    N, D = x.shape
    out = np.empty((N, D))
    for n in range(N):
        xhat, _, _ = normalize_values(x[n], eps)
        for d in range(D):
            out[n, d] = float(gamma[d]) * xhat[d] + float(beta[d])
    return out


def layernorm_backward_naive(x, gamma, dout, eps=1e-5):
    """Returns (dx, dgamma, dbeta)."""
    x = np.asarray(x, dtype=np.float64)
    dout = np.asarray(dout, dtype=np.float64)
    N, D = x.shape
    dx = np.empty((N, D))
    dgamma = np.zeros(D)
    dbeta = np.zeros(D)
    xhats = []
    for n in range(N):
        xhat, _, _ = normalize_values(x[n], eps)
        xhats.append(xhat)
        dxhat = [float(dout[n, d]) * float(gamma[d]) for d in range(D)]
        dx[n] = normalize_values_backward(x[n], dxhat, eps)
    for d in range(D):
        dgamma[d] = math.fsum(float(dout[n, d]) * xhats[n][d] for n in range(N))
        dbeta[d] = math.fsum(float(dout[n, d]) for n in range(N))
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- dropout
def dropout_forward_naive(x, p, mode, seed=None):
    """Inverted dropout with p the DROP probability. Returns (out, kept) with kept a bool array.

    The draws are np.random.rand(*x.shape) after np.random.seed(seed) (when a seed is given);
    a unit is kept when its draw is >= p and then scaled by 1 / (1 - p).
    """
    x = np.asarray(x, dtype=np.float64)
    if mode == "test":
        return x.copy(), np.ones(x.shape, dtype=bool)
    if seed is not None:
        np.random.seed(seed)
    draws = np.random.rand(*x.shape)
    out = np.empty(x.shape)
    kept = np.empty(x.shape, dtype=bool)
    for index in np.ndindex(*x.shape):
        kept[index] = draws[index] >= p
        out[index] = x[index] / (1 - p) if kept[index] else 0.0
    return out, kept
