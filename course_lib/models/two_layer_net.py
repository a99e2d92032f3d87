"""TwoLayerNet: affine - relu - affine - softmax, the first network of the course (CS231n)."""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.init import gaussian_init
from course_lib.layers.affine import affine_backward, affine_forward
from course_lib.layers.composite import affine_relu_backward, affine_relu_forward
from course_lib.losses import softmax_loss
from course_lib.models.inputs import (
    check_dtype,
    check_model_input,
    check_positive_number,
    weight_generator,
)
from course_lib.validation import check_positive_int

__all__ = ["TwoLayerNet"]


class TwoLayerNet:
    """Two-layer fully connected net: affine - relu - affine - softmax.

    Input: X (N, D) (or (N, d1, ..., dk) with d1*...*dk = D), C classes, hidden size H.
    params: W1 (D, H), b1 (H,), W2 (H, C), b2 (C,); W ~ weight_scale * N(0, 1), b = 0.
    Loss: mean softmax cross-entropy + 0.5 * reg * (sum(W1**2) + sum(W2**2)) (weights only).

    Extra keyword-only arguments (not in the course contract): dtype of the parameters
    (float64 by default, as in CS231n) and seed (None: NumPy's global generator, so
    np.random.seed(...) reproduces CS231n; an int or Generator: a private generator).
    """

    def __init__(self, input_dim: int = 3 * 32 * 32, hidden_dim: int = 100,
                 num_classes: int = 10, weight_scale: float = 1e-3, reg: float = 0.0, *,
                 dtype: Any = np.float64, seed: Any = None) -> None:
        input_dim = check_positive_int(input_dim, "input_dim")
        hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        weight_scale = check_positive_number(weight_scale, "weight_scale")
        self.reg = check_positive_number(reg, "reg", allow_zero=True)
        self.dtype = check_dtype(dtype)
        self.input_dim = input_dim
        rng = weight_generator(seed)
        self.params = {
            "W1": gaussian_init((input_dim, hidden_dim), weight_scale, rng, self.dtype),
            "b1": np.zeros(hidden_dim, dtype=self.dtype),
            "W2": gaussian_init((hidden_dim, self.num_classes), weight_scale, rng, self.dtype),
            "b2": np.zeros(self.num_classes, dtype=self.dtype),
        }

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        """X: (N, D). Returns scores (N, C) if y is None, else (loss, grads keyed like params)."""
        X = check_model_input(X, y, (self.input_dim,), self.num_classes, self.dtype,
                              "TwoLayerNet", flatten=True)
        W1, b1, W2, b2 = (self.params[k] for k in ("W1", "b1", "W2", "b2"))
        hidden, hidden_cache = affine_relu_forward(X, W1, b1)
        scores, scores_cache = affine_forward(hidden, W2, b2)
        if y is None:
            return scores

        data_loss, dscores = softmax_loss(scores, y)
        loss = data_loss + 0.5 * self.reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
        grads = {}
        dhidden, grads["W2"], grads["b2"] = affine_backward(dscores, scores_cache)
        _, grads["W1"], grads["b1"] = affine_relu_backward(dhidden, hidden_cache)
        grads["W1"] = grads["W1"] + self.reg * W1
        grads["W2"] = grads["W2"] + self.reg * W2
        return float(loss), grads
