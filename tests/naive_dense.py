"""Naive reference implementations of the dense parts of course_lib, for the tests.

This file is a DELIBERATE, INDEPENDENT SECOND IMPLEMENTATION of course_lib.layers.affine,
course_lib.layers.activations, course_lib.losses and the k-NN / linear-classifier parts of
course_lib.classifiers. It shares none of their structure: plain Python loops over samples,
classes and features, scalar math from the `math` module, sums with math.fsum, and the
textbook (CS231n "naive") formulas. Everything is computed in float64, whatever the input
dtype. It is slow on purpose; keep the test shapes small. Never import course_lib here.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np


# --------------------------------------------------------------------------- affine
def affine_forward_naive(x, w, b):
    """out[n, m] = sum_d x_flat[n, d] * w[d, m] + b[m], one scalar at a time."""
    N = x.shape[0]
    rows = [np.asarray(x[n], dtype=np.float64).ravel().tolist() for n in range(N)]
    D, M = w.shape
    out = np.zeros((N, M))
    for n in range(N):
        for m in range(M):
            out[n, m] = math.fsum(rows[n][d] * float(w[d, m]) for d in range(D)) + float(b[m])
    return out


def affine_backward_naive(dout, x, w):
    """dx[n, d] = sum_m dout[n, m] w[d, m]; dw[d, m] = sum_n x[n, d] dout[n, m]; db = sum_n dout."""
    N = x.shape[0]
    D, M = w.shape
    xf = np.asarray(x, dtype=np.float64).reshape(N, D)
    dx = np.zeros((N, D))
    dw = np.zeros((D, M))
    db = np.zeros(M)
    for n in range(N):
        for d in range(D):
            dx[n, d] = math.fsum(float(dout[n, m]) * float(w[d, m]) for m in range(M))
    for d in range(D):
        for m in range(M):
            dw[d, m] = math.fsum(xf[n, d] * float(dout[n, m]) for n in range(N))
    for m in range(M):
        db[m] = math.fsum(float(dout[n, m]) for n in range(N))
    return dx.reshape(x.shape), dw, db


# --------------------------------------------------------------------------- activations
SELU_ALPHA_REF = 1.6732632423543772848170429916717
SELU_SCALE_REF = 1.0507009873554804934193349852946


def _logistic(a):
    # math.exp overflows for a < -709; 1 / (1 + inf) would be fine, but stay exact either way.
    if a >= 0:
        return 1.0 / (1.0 + math.exp(-a))
    e = math.exp(a)
    return e / (1.0 + e)


ACTIVATIONS_NAIVE = {
    "relu": lambda a: a if a > 0 else 0.0,
    "leaky_relu": lambda a, alpha=0.01: a if a > 0 else alpha * a,
    "sigmoid": _logistic,
    "tanh": math.tanh,
    "elu": lambda a, alpha=1.0: a if a > 0 else alpha * (math.exp(a) - 1.0),
    "selu": lambda a: SELU_SCALE_REF * (a if a > 0 else SELU_ALPHA_REF * (math.exp(a) - 1.0)),
    "swish": lambda a, beta=1.0: a * _logistic(beta * a),
}


def activation_naive(name, x, **kwargs):
    """Apply the scalar activation `name` to every element of x, one at a time."""
    f = ACTIVATIONS_NAIVE[name]
    flat = np.asarray(x, dtype=np.float64).ravel()
    return np.array([f(float(a), **kwargs) for a in flat]).reshape(np.shape(x))


def prelu_forward_naive(x, alpha):
    """alpha: a number, or one slope per index of axis 1 of x."""
    out = np.zeros(x.shape)
    for idx in np.ndindex(x.shape):
        a = float(x[idx])
        slope = float(alpha) if np.ndim(alpha) == 0 else float(alpha[idx[1]])
        out[idx] = a if a > 0 else slope * a
    return out


# --------------------------------------------------------------------------- losses of scores
def softmax_loss_naive_scores(x, y):
    """Cross-entropy averaged over the rows, per sample with math.exp / math.log."""
    N, C = x.shape
    losses = []
    dx = np.zeros((N, C))
    for i in range(N):
        row = [float(v) for v in x[i]]
        top = max(row)
        exps = [math.exp(v - top) for v in row]
        total = math.fsum(exps)
        losses.append(-(row[y[i]] - top - math.log(total)))
        for j in range(C):
            p = exps[j] / total
            dx[i, j] = (p - (1.0 if j == y[i] else 0.0)) / N
    return math.fsum(losses) / N, dx


def svm_loss_naive_scores(x, y, delta=1.0):
    """Hinge loss averaged over the rows, one margin at a time."""
    N, C = x.shape
    total = []
    dx = np.zeros((N, C))
    for i in range(N):
        correct = float(x[i, y[i]])
        for j in range(C):
            if j == y[i]:
                continue
            margin = float(x[i, j]) - correct + delta
            if margin > 0:
                total.append(margin)
                dx[i, j] += 1.0 / N
                dx[i, y[i]] -= 1.0 / N
    return math.fsum(total) / N, dx


# --------------------------------------------------------------------------- linear classifiers
def _reg_term(W, reg):
    return 0.5 * reg * math.fsum(float(v) ** 2 for v in np.ravel(W))


def svm_loss_naive(W, X, y, reg):
    """CS231n's svm_loss_naive with the 0.5 * reg convention: loops over samples and classes."""
    D, C = W.shape
    N = X.shape[0]
    dW = np.zeros((D, C))
    terms = []
    for i in range(N):
        scores = [math.fsum(float(X[i, d]) * float(W[d, c]) for d in range(D)) for c in range(C)]
        for j in range(C):
            if j == y[i]:
                continue
            margin = scores[j] - scores[y[i]] + 1.0
            if margin > 0:
                terms.append(margin)
                for d in range(D):
                    dW[d, j] += X[i, d] / N
                    dW[d, y[i]] -= X[i, d] / N
    loss = math.fsum(terms) / N + _reg_term(W, reg)
    return loss, dW + reg * np.asarray(W, dtype=np.float64)


def softmax_loss_naive(W, X, y, reg):
    """CS231n's softmax_loss_naive with the 0.5 * reg convention."""
    D, C = W.shape
    N = X.shape[0]
    dW = np.zeros((D, C))
    terms = []
    for i in range(N):
        scores = [math.fsum(float(X[i, d]) * float(W[d, c]) for d in range(D)) for c in range(C)]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = math.fsum(exps)
        terms.append(math.log(total) - (scores[y[i]] - top))
        for c in range(C):
            p = exps[c] / total
            for d in range(D):
                dW[d, c] += (p - (1.0 if c == y[i] else 0.0)) * X[i, d] / N
    loss = math.fsum(terms) / N + _reg_term(W, reg)
    return loss, dW + reg * np.asarray(W, dtype=np.float64)


# --------------------------------------------------------------------------- k-NN
def compute_distances_two_loops(X_test, X_train):
    """dists[i, j] = sqrt(sum_d (X_test[i, d] - X_train[j, d])**2), two explicit loops."""
    dists = np.zeros((X_test.shape[0], X_train.shape[0]))
    for i in range(X_test.shape[0]):
        for j in range(X_train.shape[0]):
            dists[i, j] = math.sqrt(math.fsum(
                (float(a) - float(b)) ** 2 for a, b in zip(X_test[i], X_train[j], strict=True)))
    return dists


def predict_labels_naive(dists, y_train, k=1):
    """For each row: sort (distance, index) pairs, count the k nearest labels with a Counter,
    and pick the most common label, the smallest one among equals."""
    y_pred = np.zeros(dists.shape[0], dtype=np.int64)
    for i in range(dists.shape[0]):
        order = sorted(range(dists.shape[1]), key=lambda j: (dists[i, j], j))
        votes = Counter(int(y_train[j]) for j in order[:k])
        best = max(votes.values())
        y_pred[i] = min(label for label, count in votes.items() if count == best)
    return y_pred
