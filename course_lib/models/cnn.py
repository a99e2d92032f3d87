"""Convolutional nets: ThreeLayerConvNet (the course contract) and a configurable ConvNet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from course_lib.init import gaussian_init, init_weights
from course_lib.layers.affine import affine_backward, affine_forward
from course_lib.layers.composite import (
    NORMALIZATIONS,
    affine_norm_relu_backward,
    affine_norm_relu_forward,
    affine_relu_backward,
    affine_relu_forward,
    conv_bn_relu_backward,
    conv_bn_relu_forward,
    conv_relu_backward,
    conv_relu_forward,
    conv_relu_pool_backward,
    conv_relu_pool_forward,
)
from course_lib.layers.pooling import max_pool_backward, max_pool_forward
from course_lib.losses import softmax_loss
from course_lib.models.inputs import (
    check_dtype,
    check_model_input,
    check_positive_number,
    weight_generator,
)
from course_lib.validation import check_positive_int, conv_output_size

__all__ = ["ThreeLayerConvNet", "ConvNet"]

# Every pooling layer of these models halves the image: 2x2 max pooling with stride 2.
POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _check_input_dim(input_dim: Any) -> tuple[int, int, int]:
    if not isinstance(input_dim, Sequence) or len(input_dim) != 3:
        raise ValueError(f"input_dim must be a (C, H, W) tuple; got {input_dim!r}")
    return tuple(check_positive_int(d, f"input_dim[{i}]") for i, d in enumerate(input_dim))


def _conv_output_size(size: int, filter_size: int, pool: bool, where: str) -> int:
    """Height (or width) after a stride-1 conv padded by (filter_size - 1) // 2 and an
    optional 2x2 stride-2 pool; raises if the image has become too small."""
    try:
        out = conv_output_size(size, filter_size, 1, (filter_size - 1) // 2)
        if pool:
            out = conv_output_size(out, POOL_PARAM["pool_height"], POOL_PARAM["stride"])
        return out
    except ValueError:
        raise ValueError(f"{where}: a {size}x{size} input is too small for filter_size "
                         f"{filter_size}{' and 2x2 pooling' if pool else ''}") from None


def _reg_loss_and_grads(params: dict, grads: dict, reg: float, weight_names: list[str]) -> float:
    """Adds reg * W to each weight gradient; returns 0.5 * reg * sum(W**2) (weights only)."""
    total = 0.0
    for name in weight_names:
        W = params[name]
        total += 0.5 * reg * float(np.sum(W * W))
        grads[name] = grads[name] + reg * W
    return total


class ThreeLayerConvNet:
    """conv - relu - 2x2 max pool - affine - relu - affine - softmax (course contract).

    Input X: (N, C, H, W). conv: F filters of size filter_size x filter_size, stride 1, zero pad
    (filter_size - 1) // 2 (keeps H, W for odd sizes); pool 2x2 stride 2.
    params: W1 (F, C, fs, fs), b1 (F,), W2 (F * H' * W', hidden_dim), b2 (hidden_dim,),
    W3 (hidden_dim, num_classes), b3 (num_classes,), with H', W' the pooled size;
    W ~ weight_scale * N(0, 1), b = 0, all in `dtype`.
    Loss: mean softmax cross-entropy + 0.5 * reg * sum of squared weights (W1, W2, W3).
    seed (keyword-only, not in the contract): None uses NumPy's global generator, as CS231n.
    """

    def __init__(self, input_dim: Sequence[int] = (3, 32, 32), num_filters: int = 32,
                 filter_size: int = 7, hidden_dim: int = 100, num_classes: int = 10,
                 weight_scale: float = 1e-3, reg: float = 0.0, dtype: Any = np.float32, *,
                 seed: Any = None) -> None:
        self.input_dim = C, H, W = _check_input_dim(input_dim)
        num_filters = check_positive_int(num_filters, "num_filters")
        self.filter_size = check_positive_int(filter_size, "filter_size")
        hidden_dim = check_positive_int(hidden_dim, "hidden_dim")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        weight_scale = check_positive_number(weight_scale, "weight_scale")
        self.reg = check_positive_number(reg, "reg", allow_zero=True)
        self.dtype = check_dtype(dtype)
        where = "ThreeLayerConvNet"
        H_out = _conv_output_size(H, self.filter_size, True, where)
        W_out = _conv_output_size(W, self.filter_size, True, where)

        rng = weight_generator(seed)
        fs, dtype = self.filter_size, self.dtype
        self.params = {
            "W1": gaussian_init((num_filters, C, fs, fs), weight_scale, rng, dtype),
            "b1": np.zeros(num_filters, dtype=dtype),
            "W2": gaussian_init((num_filters * H_out * W_out, hidden_dim), weight_scale, rng,
                                dtype),
            "b2": np.zeros(hidden_dim, dtype=dtype),
            "W3": gaussian_init((hidden_dim, self.num_classes), weight_scale, rng, dtype),
            "b3": np.zeros(self.num_classes, dtype=dtype),
        }

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        """X: (N, C, H, W). Returns scores (N, C) if y is None, else (loss, grads)."""
        X = check_model_input(X, y, self.input_dim, self.num_classes, self.dtype,
                              "ThreeLayerConvNet")
        p = self.params
        conv_param = {"stride": 1, "pad": (self.filter_size - 1) // 2}
        pooled, cache1 = conv_relu_pool_forward(X, p["W1"], p["b1"], conv_param, POOL_PARAM)
        hidden, cache2 = affine_relu_forward(pooled, p["W2"], p["b2"])
        scores, cache3 = affine_forward(hidden, p["W3"], p["b3"])
        if y is None:
            return scores

        data_loss, dscores = softmax_loss(scores, y)
        grads = {}
        dhidden, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
        dpooled, grads["W2"], grads["b2"] = affine_relu_backward(dhidden, cache2)
        # need_dx=False: nothing needs the images' gradient (PyTorch skips it the same way).
        _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dpooled, cache1, need_dx=False)
        reg_loss = _reg_loss_and_grads(p, grads, self.reg, ["W1", "W2", "W3"])
        return float(data_loss) + reg_loss, grads


CONV_LAYER_KEYS = {"num_filters", "filter_size", "pool", "batchnorm"}
DEFAULT_CONV_LAYERS = (
    {"num_filters": 16, "filter_size": 3, "pool": True, "batchnorm": True},
    {"num_filters": 32, "filter_size": 3, "pool": True, "batchnorm": True},
)


def _check_conv_layer(spec: Any, index: int) -> dict:
    where = f"conv_layers[{index}]"
    if not isinstance(spec, Mapping):
        raise TypeError(f"{where} must be a dict with keys {sorted(CONV_LAYER_KEYS)}; got "
                        f"{type(spec).__name__}")
    unknown = set(spec) - CONV_LAYER_KEYS
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {sorted(unknown)}; allowed: "
                         f"{sorted(CONV_LAYER_KEYS)}")
    if "num_filters" not in spec:
        raise ValueError(f"{where} needs 'num_filters'; got keys {sorted(spec)}")
    layer = {
        "num_filters": check_positive_int(spec["num_filters"], f"{where}['num_filters']"),
        "filter_size": check_positive_int(spec.get("filter_size", 3), f"{where}['filter_size']"),
        "pool": spec.get("pool", False),
        "batchnorm": spec.get("batchnorm", False),
    }
    for key in ("pool", "batchnorm"):
        if not isinstance(layer[key], bool):
            raise TypeError(f"{where}['{key}'] must be True or False; got {layer[key]!r}")
    return layer


class ConvNet:
    """[conv - (spatial batchnorm) - relu - (2x2 max pool)] x M - [affine - (norm) - relu] x K -
    affine - softmax.

    input_dim: (C, H, W) of one image.
    conv_layers: one dict per conv layer: 'num_filters' (required), 'filter_size' (3; stride 1,
        zero pad (filter_size - 1) // 2, so odd sizes keep H and W), 'pool' (False) and
        'batchnorm' (False; the conv bias is kept for simplicity).
    hidden_dims: sizes of the K hidden affine layers; hidden_normalization: None, 'batchnorm'
        or 'layernorm' for them.
    weight_init: 'he' (std sqrt(2 / fan_in), the default for relu nets), 'xavier'
        (std sqrt(1 / fan_in)) or a number used as the std of every layer's weights (see
        course_lib.init; conv fan_in = C * HH * WW).
    params: layers are numbered 1..M+K+1 in order; W{i}, b{i}, and gamma{i}, beta{i} for the
        normalized ones. The batchnorm running statistics live in self.bn_params[i].
    loss(X, y): 'train' mode when y is given, 'test' mode when y is None.
    """

    def __init__(self, input_dim: Sequence[int] = (3, 32, 32),
                 conv_layers: Sequence[Mapping] = DEFAULT_CONV_LAYERS,
                 hidden_dims: Sequence[int] = (64,), num_classes: int = 10,
                 hidden_normalization: str | None = None, weight_init: Any = "he",
                 reg: float = 0.0, dtype: Any = np.float32, seed: Any = None) -> None:
        self.input_dim = C, H, W = _check_input_dim(input_dim)
        if isinstance(conv_layers, Mapping) or not isinstance(conv_layers, Sequence):
            raise TypeError(f"conv_layers must be a list of dicts; got "
                            f"{type(conv_layers).__name__}")
        self.conv_layers = [_check_conv_layer(s, i) for i, s in enumerate(conv_layers)]
        if isinstance(hidden_dims, (int, np.integer)) or not isinstance(hidden_dims, Sequence):
            raise TypeError(f"hidden_dims must be a list of positive ints; got {hidden_dims!r}")
        self.hidden_dims = [check_positive_int(h, f"hidden_dims[{i}]")
                            for i, h in enumerate(hidden_dims)]
        self.num_classes = check_positive_int(num_classes, "num_classes")
        if hidden_normalization not in NORMALIZATIONS:
            raise ValueError(f"hidden_normalization must be one of {NORMALIZATIONS}; got "
                             f"{hidden_normalization!r}")
        self.hidden_normalization = hidden_normalization
        if weight_init not in ("he", "xavier"):
            if isinstance(weight_init, str):
                raise ValueError(f"weight_init must be 'he', 'xavier' or a number; got "
                                 f"{weight_init!r}")
            check_positive_number(weight_init, "weight_init")
        self.reg = check_positive_number(reg, "reg", allow_zero=True)
        self.dtype = check_dtype(dtype)
        rng = weight_generator(seed)
        method, scale = ((weight_init, 0.0) if isinstance(weight_init, str)
                         else ("gaussian", float(weight_init)))

        def weights(shape):
            return init_weights(shape, method, weight_scale=scale, rng=rng, dtype=self.dtype)

        def zeros(size):
            return np.zeros(size, dtype=self.dtype)

        def ones(size):
            return np.ones(size, dtype=self.dtype)

        self.params, self.bn_params = {}, {}
        p = self.params
        channels, height, width = C, H, W
        for i, layer in enumerate(self.conv_layers, start=1):
            fs, F = layer["filter_size"], layer["num_filters"]
            where = f"conv_layers[{i - 1}]"
            height = _conv_output_size(height, fs, layer["pool"], where)
            width = _conv_output_size(width, fs, layer["pool"], where)
            p[f"W{i}"], p[f"b{i}"] = weights((F, channels, fs, fs)), zeros(F)
            if layer["batchnorm"]:
                p[f"gamma{i}"], p[f"beta{i}"] = ones(F), zeros(F)
                self.bn_params[i] = {"mode": "train"}
            channels = F
        dims = [channels * height * width, *self.hidden_dims, self.num_classes]
        first = len(self.conv_layers) + 1
        for j in range(len(dims) - 1):
            i = first + j
            p[f"W{i}"], p[f"b{i}"] = weights((dims[j], dims[j + 1])), zeros(dims[j + 1])
            if hidden_normalization is not None and j < len(self.hidden_dims):
                p[f"gamma{i}"], p[f"beta{i}"] = ones(dims[j + 1]), zeros(dims[j + 1])
                self.bn_params[i] = {"mode": "train"}
        self.num_layers = first + len(self.hidden_dims)

    def loss(self, X: np.ndarray, y: np.ndarray | None = None):
        """X: (N, C, H, W). Returns scores (N, num_classes) if y is None, else (loss, grads)."""
        X = check_model_input(X, y, self.input_dim, self.num_classes, self.dtype, "ConvNet")
        mode = "test" if y is None else "train"
        for bn_param in self.bn_params.values():
            bn_param["mode"] = mode
        p, caches = self.params, {}

        out = X
        for i, layer in enumerate(self.conv_layers, start=1):
            conv_param = {"stride": 1, "pad": (layer["filter_size"] - 1) // 2}
            if layer["batchnorm"]:
                out, cache = conv_bn_relu_forward(out, p[f"W{i}"], p[f"b{i}"], p[f"gamma{i}"],
                                                  p[f"beta{i}"], conv_param, self.bn_params[i])
            else:
                out, cache = conv_relu_forward(out, p[f"W{i}"], p[f"b{i}"], conv_param)
            pool_cache = None
            if layer["pool"]:
                out, pool_cache = max_pool_forward(out, POOL_PARAM)
            caches[i] = (cache, pool_cache)
        first_hidden = len(self.conv_layers) + 1
        for i in range(first_hidden, self.num_layers):
            out, caches[i] = affine_norm_relu_forward(
                out, p[f"W{i}"], p[f"b{i}"], p.get(f"gamma{i}"), p.get(f"beta{i}"),
                self.bn_params.get(i), self.hidden_normalization)
        L = self.num_layers
        scores, caches[L] = affine_forward(out, p[f"W{L}"], p[f"b{L}"])
        if y is None:
            return scores

        data_loss, dscores = softmax_loss(scores, y)
        grads = {}
        dout, grads[f"W{L}"], grads[f"b{L}"] = affine_backward(dscores, caches[L])
        for i in range(L - 1, first_hidden - 1, -1):
            dout, grads[f"W{i}"], grads[f"b{i}"], dgamma, dbeta = affine_norm_relu_backward(
                dout, caches[i])
            if self.hidden_normalization is not None:
                grads[f"gamma{i}"], grads[f"beta{i}"] = dgamma, dbeta
        for i in range(first_hidden - 1, 0, -1):
            cache, pool_cache = caches[i]
            if pool_cache is not None:
                dout = max_pool_backward(dout, pool_cache)
            need_dx = i > 1  # the first layer's dx would be the images' gradient: unused
            if self.conv_layers[i - 1]["batchnorm"]:
                (dout, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"],
                 grads[f"beta{i}"]) = conv_bn_relu_backward(dout, cache, need_dx=need_dx)
            else:
                dout, grads[f"W{i}"], grads[f"b{i}"] = conv_relu_backward(dout, cache,
                                                                          need_dx=need_dx)
        weight_names = [f"W{i}" for i in range(1, L + 1)]
        reg_loss = _reg_loss_and_grads(p, grads, self.reg, weight_names)
        return float(data_loss) + reg_loss, grads
