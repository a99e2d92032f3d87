"""FullyConnectedNet: {affine - [norm] - relu - [dropout]} x (L - 1) - affine - softmax (CS231n)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from course_lib.init import gaussian_init
from course_lib.layers.affine import affine_backward, affine_forward
from course_lib.layers.composite import (
    NORMALIZATIONS,
    affine_norm_relu_backward,
    affine_norm_relu_forward,
)
from course_lib.layers.dropout import dropout_backward, dropout_forward
from course_lib.losses import softmax_loss
from course_lib.models.inputs import (
    check_dtype,
    check_model_input,
    check_positive_number,
    weight_generator,
)
from course_lib.validation import check_positive_int, check_probability

__all__ = ["FullyConnectedNet"]


class FullyConnectedNet:
    """A fully connected net with L = len(hidden_dims) + 1 affine layers.

    Architecture: {affine - [batchnorm | layernorm] - relu - [dropout]} x (L - 1) - affine -
    softmax. params: W1..WL, b1..bL, and gamma1..gamma(L-1), beta1..beta(L-1) when normalized
    (gamma = 1, beta = 0); W ~ weight_scale * N(0, 1), b = 0, all in `dtype`.

    dropout: the probability of DROPPING a hidden unit (course contract; CS231n's
        `dropout_keep_ratio` is 1 - dropout). 0 disables dropout.
    normalization: None, 'batchnorm' or 'layernorm', applied to every hidden layer.
    reg: L2 strength, loss += 0.5 * reg * sum(W**2) over the weights only.
    seed: None draws the weights from NumPy's global generator (np.random.seed reproduces
        CS231n). An int or Generator gives a private weight generator; an int seed is also passed
        to the dropout layers, which then draw the SAME mask on every call (deterministic, as
        CS231n does for gradient checks), so train with dropout using seed=None.
    loss(X, y) runs the normalization and dropout layers in 'train' mode when y is given and in
    'test' mode when y is None; the batchnorm running statistics live in self.bn_params.
    """

    def __init__(self, hidden_dims: Sequence[int], input_dim: int = 3 * 32 * 32,
                 num_classes: int = 10, dropout: float = 0.0, normalization: str | None = None,
                 reg: float = 0.0, weight_scale: float = 1e-2, dtype: Any = np.float32,
                 seed: Any = None) -> None:
        if isinstance(hidden_dims, (int, np.integer)) or not isinstance(hidden_dims, Sequence):
            raise TypeError(f"hidden_dims must be a list of positive ints (one per hidden layer); "
                            f"got {type(hidden_dims).__name__} {hidden_dims!r}")
        hidden_dims = [check_positive_int(h, f"hidden_dims[{i}]")
                       for i, h in enumerate(hidden_dims)]
        self.input_dim = check_positive_int(input_dim, "input_dim")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.dropout = check_probability(dropout, "dropout")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}; got "
                             f"{normalization!r}")
        self.normalization = normalization
        self.reg = check_positive_number(reg, "reg", allow_zero=True)
        weight_scale = check_positive_number(weight_scale, "weight_scale")
        self.dtype = check_dtype(dtype)
        self.num_layers = len(hidden_dims) + 1
        self.use_dropout = self.dropout > 0

        rng = weight_generator(seed)
        dims = [self.input_dim, *hidden_dims, self.num_classes]
        self.params = {}
        for i in range(1, self.num_layers + 1):
            fan_in, fan_out = dims[i - 1], dims[i]
            self.params[f"W{i}"] = gaussian_init((fan_in, fan_out), weight_scale, rng,
                                                 self.dtype)
            self.params[f"b{i}"] = np.zeros(fan_out, dtype=self.dtype)
            if normalization is not None and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(fan_out, dtype=self.dtype)
                self.params[f"beta{i}"] = np.zeros(fan_out, dtype=self.dtype)

        # One param dict per hidden layer: the bn_param of batchnorm (with the running
        # statistics) or the ln_param of layernorm (which ignores 'mode').
        self.bn_params = ([{"mode": "train"} for _ in range(self.num_layers - 1)]
                          if normalization is not None else [])
        self.dropout_param = {"mode": "train", "p": self.dropout} if self.use_dropout else {}
        if self.use_dropout and seed is not None and not isinstance(seed, np.random.Generator):
            self.dropout_param["seed"] = int(seed)

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        """X: (N, D). Returns scores (N, C) if y is None, else (loss, grads keyed like params)."""
        X = check_model_input(X, y, (self.input_dim,), self.num_classes, self.dtype,
                              "FullyConnectedNet", flatten=True)
        mode = "test" if y is None else "train"
        for bn_param in self.bn_params:
            bn_param["mode"] = mode
        if self.use_dropout:
            self.dropout_param["mode"] = mode

        L, p = self.num_layers, self.params
        hidden, caches = X, []
        for i in range(1, L):
            gamma, beta = p.get(f"gamma{i}"), p.get(f"beta{i}")
            norm_param = self.bn_params[i - 1] if self.bn_params else None
            hidden, cache = affine_norm_relu_forward(hidden, p[f"W{i}"], p[f"b{i}"], gamma, beta,
                                                     norm_param, self.normalization)
            drop_cache = None
            if self.use_dropout:
                hidden, drop_cache = dropout_forward(hidden, self.dropout_param)
            caches.append((cache, drop_cache))
        scores, scores_cache = affine_forward(hidden, p[f"W{L}"], p[f"b{L}"])
        if y is None:
            return scores

        data_loss, dscores = softmax_loss(scores, y)
        weights = [p[f"W{i}"] for i in range(1, L + 1)]
        loss = data_loss + 0.5 * self.reg * sum(np.sum(W * W) for W in weights)

        grads = {}
        dhidden, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, scores_cache)
        for i in range(L - 1, 0, -1):
            cache, drop_cache = caches[i - 1]
            if self.use_dropout:
                dhidden = dropout_backward(dhidden, drop_cache)
            dhidden, dW, db, dgamma, dbeta = affine_norm_relu_backward(dhidden, cache)
            grads[f"W{i}"], grads[f"b{i}"] = dW, db
            if self.normalization is not None:
                grads[f"gamma{i}"], grads[f"beta{i}"] = dgamma, dbeta
        for i in range(1, L + 1):
            grads[f"W{i}"] = grads[f"W{i}"] + self.reg * p[f"W{i}"]
        return float(loss), grads
