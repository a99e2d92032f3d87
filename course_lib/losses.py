"""Classification losses of class scores: softmax (cross-entropy) and multiclass SVM (hinge).

Both take scores x: (N, C) and integer labels y: (N,) with 0 <= y[i] < C, and return
(loss, dx): the loss AVERAGED over the N samples (a Python float) and its gradient with
respect to the scores (N, C), in x's dtype. The arithmetic is done in float64.
"""

from __future__ import annotations

import numpy as np

from course_lib.validation import check_float_array, check_int_array

__all__ = ["softmax", "softmax_loss", "svm_loss"]


def _check_scores_and_labels(x, y) -> tuple[int, int]:
    check_float_array(x, "x", 2, "(N, C): one row of class scores per sample")
    N, C = x.shape
    if N == 0 or C == 0:
        raise ValueError(f"x must hold at least one sample and one class; got shape {x.shape}")
    check_int_array(y, "y", length=N, upper=C)
    return N, C


def softmax(x: np.ndarray) -> np.ndarray:
    """Class probabilities. x: (..., C) scores. Returns p with the shape and dtype of x:
    p[..., j] = exp(x[..., j]) / sum_k exp(x[..., k]), along the last axis.

    The row maximum is subtracted first (the result is unchanged), so exp never overflows.
    """
    check_float_array(x, "x")
    if x.ndim == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have at least one class along its last axis; got shape "
                         f"{x.shape}")
    z = x.astype(np.float64) - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(x.dtype, copy=False)


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Softmax (cross-entropy) loss. x: (N, C) scores; y: (N,) labels in [0, C).

    loss = -(1/N) sum_i log p[i, y[i]] with p = softmax(x), computed as
    log p[i, j] = z[i, j] - log(sum_k exp(z[i, k])), z = x - max_k x[i, k] (stable for any
    finite scores).  dx = (p - onehot(y)) / N.  Returns (loss, dx (N, C)).
    """
    N, _ = _check_scores_and_labels(x, y)
    z = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(z).sum(axis=1, keepdims=True))
    log_p = z - log_sum
    rows = np.arange(N)
    loss = -log_p[rows, y].sum() / N
    dx = np.exp(log_p)
    dx[rows, y] -= 1
    dx /= N
    return float(loss), dx.astype(x.dtype, copy=False)


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Multiclass SVM (hinge) loss with margin delta = 1. x: (N, C) scores; y: (N,) labels.

    loss = (1/N) sum_i sum_{j != y[i]} max(0, x[i, j] - x[i, y[i]] + 1).
    dx[i, j] = 1/N for each j != y[i] with a positive margin, dx[i, y[i]] = -(their count)/N.
    Returns (loss, dx (N, C)).
    """
    N, _ = _check_scores_and_labels(x, y)
    x64 = x.astype(np.float64)
    rows = np.arange(N)
    margins = np.maximum(0, x64 - x64[rows, y][:, None] + 1)
    margins[rows, y] = 0
    loss = margins.sum() / N
    positive = (margins > 0).astype(np.float64)
    positive[rows, y] = -positive.sum(axis=1)
    dx = positive / N
    return float(loss), dx.astype(x.dtype, copy=False)
