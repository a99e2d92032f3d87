"""Elementwise activation functions, each a forward/backward pair.

    relu        max(0, x)
    leaky_relu  x if x > 0 else alpha * x                       (alpha = 0.01)
    prelu       x if x > 0 else alpha * x, alpha learned         (scalar or one per feature)
    sigmoid     1 / (1 + exp(-x))
    tanh        tanh(x)
    elu         x if x > 0 else alpha * (exp(x) - 1)             (alpha = 1)
    selu        scale * elu(x, alpha) with the constants of Klambauer et al. (2017)
    swish       x * sigmoid(beta * x)                             (beta = 1; SiLU)

A forward returns (out, cache) and its backward takes (dout, cache) and returns dx (prelu
also returns dalpha). At a kink (x == 0) the derivative used is the left one (0 for relu,
alpha for leaky relu and prelu), as in CS231n. Output and gradients have x's shape and dtype.
Plain NumPy: each is one pass over memory, which NumPy's ufuncs already do at full speed; only
relu's backward, a select that np.where runs slowly, is a Numba kernel (kernels/elementwise.py).
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from course_lib.kernels import elementwise as kernels
from course_lib.validation import check_cache, check_dout, check_float_array

__all__ = [
    "relu_forward", "relu_backward",
    "leaky_relu_forward", "leaky_relu_backward",
    "prelu_forward", "prelu_backward",
    "sigmoid_forward", "sigmoid_backward",
    "tanh_forward", "tanh_backward",
    "elu_forward", "elu_backward",
    "selu_forward", "selu_backward",
    "swish_forward", "swish_backward",
    "SELU_ALPHA", "SELU_SCALE",
]

# Klambauer et al., "Self-Normalizing Neural Networks" (2017): with these constants a layer
# maps inputs of mean 0 and variance 1 to outputs of mean 0 and variance 1.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# --------------------------------------------------------------------------- shared checks
def _check_number(value, name: str, *, positive: bool = False) -> float:
    """A finite real number (as a Python float, so float32 arrays stay float32)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or (positive and value <= 0):
        kind = "a positive finite" if positive else "a finite"
        raise ValueError(f"{name} must be {kind} number; got {value}")
    return value


def _open_cache(cache, tag: str, length: int, producer: str) -> tuple:
    """The cache must be the tuple made by `producer` (tagged with `tag` in position 0)."""
    check_cache(cache, "cache", length, producer)
    if not (isinstance(cache[0], str) and cache[0] == tag):
        raise TypeError(f"cache must be the cache returned by {producer}; got a tuple starting "
                        f"with {cache[0]!r}")
    return cache[1:]


def _dout_like(dout, x: np.ndarray, producer: str) -> np.ndarray:
    check_dout(dout, x.shape, producer)
    return dout.astype(x.dtype, copy=False)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow: exp is only taken of -|z| <= 0."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


# --------------------------------------------------------------------------- relu
def relu_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """ReLU. x: any shape. Returns (out, cache) with out = max(0, x)."""
    check_float_array(x, "x")
    return np.maximum(x, 0), ("relu", x)


def relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of relu_forward. dout: x's shape. Returns dx = dout where x > 0, else 0."""
    (x,) = _open_cache(cache, "relu", 2, "relu_forward")
    dout = _dout_like(dout, x, "relu_forward")
    dx = np.empty(x.shape, dtype=x.dtype)
    kernels.relu_backward(np.ascontiguousarray(x).reshape(-1),
                          np.ascontiguousarray(dout).reshape(-1), dx.reshape(-1))
    return dx


# --------------------------------------------------------------------------- leaky relu
def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple]:
    """Leaky ReLU. x: any shape. Returns (out, cache) with out = x if x > 0 else alpha * x."""
    check_float_array(x, "x")
    alpha = _check_number(alpha, "alpha")
    return np.where(x > 0, x, alpha * x), ("leaky_relu", x, alpha)


def leaky_relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of leaky_relu_forward. Returns dx = dout if x > 0 else alpha * dout."""
    x, alpha = _open_cache(cache, "leaky_relu", 3, "leaky_relu_forward")
    dout = _dout_like(dout, x, "leaky_relu_forward")
    return np.where(x > 0, dout, alpha * dout)


# --------------------------------------------------------------------------- prelu
def prelu_forward(x: np.ndarray, alpha) -> tuple[np.ndarray, tuple]:
    """Parametric ReLU: leaky ReLU whose slope alpha is learned.

    x: (N, ...) any shape; alpha: a number or 0-d array (one slope shared by all units), or a
    1-D array of shape (x.shape[1],): one slope per feature of x (N, D), or per channel of
    x (N, C, H, W), as PyTorch's PReLU(num_parameters=C).
    Returns (out, cache) with out = x if x > 0 else alpha * x, in x's dtype.
    """
    check_float_array(x, "x")
    if isinstance(alpha, np.ndarray):
        check_float_array(alpha, "alpha", (0, 1))
        if not np.all(np.isfinite(alpha)):
            raise ValueError("alpha must hold finite numbers; got non-finite values")
        alpha_shape = alpha.shape
        if alpha.ndim == 1:
            if x.ndim < 2 or alpha.shape[0] != x.shape[1]:
                want = x.shape[1] if x.ndim >= 2 else "x.shape[1] (x must be at least 2-D)"
                raise ValueError(f"alpha of shape (C,) must have C={want}: one slope per "
                                 f"feature/channel of x (axis 1) of shape {x.shape}; got "
                                 f"{alpha.shape}")
        alpha_x = alpha.astype(x.dtype)
    else:
        alpha_shape = ()
        alpha_x = np.asarray(_check_number(alpha, "alpha"), dtype=x.dtype)
    # Broadcast a per-feature alpha along axis 1 of x: shape (C, 1, ..., 1).
    alpha_b = alpha_x.reshape(alpha_x.shape + (1,) * (x.ndim - 2)) if alpha_x.ndim else alpha_x
    out = np.where(x > 0, x, alpha_b * x)
    return out, ("prelu", x, alpha_b, alpha_shape)


def prelu_backward(dout: np.ndarray, cache: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Backward of prelu_forward. dout: x's shape.

    Returns (dx, dalpha): dx = dout if x > 0 else alpha * dout (x's shape);
    dalpha = sum of dout * x over the units with x <= 0 that share the slope, with alpha's shape
    (a 0-d array for a scalar alpha), in x's dtype.
    """
    x, alpha_b, alpha_shape = _open_cache(cache, "prelu", 4, "prelu_forward")
    dout = _dout_like(dout, x, "prelu_forward")
    negative = x <= 0
    dx = np.where(negative, alpha_b * dout, dout)
    contrib = np.where(negative, dout * x, 0).astype(x.dtype, copy=False)
    if alpha_shape == ():
        dalpha = np.asarray(contrib.sum(), dtype=x.dtype)
    else:
        axes = (0,) + tuple(range(2, x.ndim))
        dalpha = contrib.sum(axis=axes)
    return dx, dalpha


# --------------------------------------------------------------------------- sigmoid
def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Logistic sigmoid. x: any shape. Returns (out, cache) with out = 1 / (1 + exp(-x)).

    Computed without overflow for any |x| (exp is taken only of -|x|).
    """
    check_float_array(x, "x")
    out = _sigmoid(x)
    return out, ("sigmoid", out)


def sigmoid_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of sigmoid_forward. Returns dx = dout * out * (1 - out)."""
    (out,) = _open_cache(cache, "sigmoid", 2, "sigmoid_forward")
    dout = _dout_like(dout, out, "sigmoid_forward")
    return dout * out * (1 - out)


# --------------------------------------------------------------------------- tanh
def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """Hyperbolic tangent. x: any shape. Returns (out, cache) with out = tanh(x)."""
    check_float_array(x, "x")
    out = np.tanh(x)
    return out, ("tanh", out)


def tanh_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of tanh_forward. Returns dx = dout * (1 - out**2)."""
    (out,) = _open_cache(cache, "tanh", 2, "tanh_forward")
    dout = _dout_like(dout, out, "tanh_forward")
    return dout * (1 - out * out)


# --------------------------------------------------------------------------- elu and selu
def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    # expm1 of min(x, 0): accurate near 0 and no overflow for large positive x.
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_forward(x: np.ndarray, alpha: float = 1.0) -> tuple[np.ndarray, tuple]:
    """ELU. x: any shape. Returns (out, cache) with out = x if x > 0 else alpha * (exp(x) - 1)."""
    check_float_array(x, "x")
    alpha = _check_number(alpha, "alpha")
    return _elu(x, alpha), ("elu", x, alpha)


def elu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of elu_forward. Returns dx = dout if x > 0 else dout * alpha * exp(x)."""
    x, alpha = _open_cache(cache, "elu", 3, "elu_forward")
    dout = _dout_like(dout, x, "elu_forward")
    return np.where(x > 0, dout, dout * (alpha * np.exp(np.minimum(x, 0))))


def selu_forward(x: np.ndarray) -> tuple[np.ndarray, tuple]:
    """SELU. x: any shape. Returns (out, cache) with
    out = SELU_SCALE * (x if x > 0 else SELU_ALPHA * (exp(x) - 1))   (scale 1.0507, alpha 1.6733).
    """
    check_float_array(x, "x")
    return SELU_SCALE * _elu(x, SELU_ALPHA), ("selu", x)


def selu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of selu_forward. Returns dx = SELU_SCALE * dout * (1 if x > 0 else
    SELU_ALPHA * exp(x))."""
    (x,) = _open_cache(cache, "selu", 2, "selu_forward")
    dout = _dout_like(dout, x, "selu_forward")
    slope = np.where(x > 0, SELU_SCALE, (SELU_SCALE * SELU_ALPHA) * np.exp(np.minimum(x, 0)))
    return (dout * slope).astype(x.dtype, copy=False)


# --------------------------------------------------------------------------- swish
def swish_forward(x: np.ndarray, beta: float = 1.0) -> tuple[np.ndarray, tuple]:
    """Swish (SiLU for beta = 1). x: any shape. Returns (out, cache) with
    out = x * sigmoid(beta * x)."""
    check_float_array(x, "x")
    beta = _check_number(beta, "beta")
    s = _sigmoid(beta * x)
    return x * s, ("swish", x, s, beta)


def swish_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Backward of swish_forward. With s = sigmoid(beta * x):
    dx = dout * (s + beta * x * s * (1 - s))."""
    x, s, beta = _open_cache(cache, "swish", 4, "swish_forward")
    dout = _dout_like(dout, x, "swish_forward")
    return dout * (s + beta * x * s * (1 - s))
