"""First-order update rules, CS231n-style: next_w, config = rule(w, dw, config=None).

w: the parameter (any shape), dw: its gradient (same shape). config is a dict of
hyperparameters and optimiser state (velocity, cache, m, v, t). With config=None a new dict with
the defaults is created; a dict that is passed in gets the missing defaults filled in, its state
entries replaced by the new state, and is returned (the Solver keeps one per parameter).

Nothing is modified in place: next_w and every new state array are fresh arrays, so the caller's
w, dw and the arrays it put into config keep their values. next_w and the state follow w's dtype.

    sgd           w -= lr * dw
    sgd_momentum  v = momentum * v - lr * dw;  w += v
    sgd_nesterov  v_prev = v;  v = momentum * v - lr * dw;
                  w += -momentum * v_prev + (1 + momentum) * v
    adagrad       cache += dw**2;  w -= lr * dw / (sqrt(cache) + eps)
    rmsprop       cache = decay * cache + (1 - decay) * dw**2;  w -= lr * dw / (sqrt(cache) + eps)
    adam          t += 1;  m = b1 * m + (1 - b1) * dw;  v = b2 * v + (1 - b2) * dw**2;
                  w -= lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping
from numbers import Integral, Real

import numpy as np

from course_lib.kernels import optim as kernels
from course_lib.validation import check_float_array

__all__ = ["sgd", "sgd_momentum", "sgd_nesterov", "adagrad", "rmsprop", "adam"]


# --------------------------------------------------------------------------- argument checks
def _number(config, key: str, name: str) -> float:
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"config['{key}'] must be a number for {name}; got "
                        f"{type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"config['{key}'] must be finite for {name}; got {value}")
    return value


def _learning_rate(config, name: str) -> float:
    # 0 is allowed (a schedule may decay to it; the step then does nothing); negative is not.
    lr = _number(config, "learning_rate", name)
    if lr < 0:
        raise ValueError(f"config['learning_rate'] must be >= 0 for {name}; got {lr}")
    return lr


def _unit_interval(config, key: str, name: str) -> float:
    """A decay factor in [0, 1)."""
    value = _number(config, key, name)
    if not 0 <= value < 1:
        raise ValueError(f"config['{key}'] must be in [0, 1) for {name}; got {value}")
    return value


def _epsilon(config, name: str) -> float:
    value = _number(config, "epsilon", name)
    if value <= 0:
        raise ValueError(f"config['epsilon'] must be > 0 for {name} (it keeps the division "
                         f"finite where the gradient history is 0); got {value}")
    return value


def _state(config, key: str, w: np.ndarray, name: str) -> np.ndarray:
    """The state array config[key] (zeros of w's shape and dtype when absent), in w's dtype."""
    if key not in config or config[key] is None:
        return np.zeros_like(w)
    value = config[key]
    check_float_array(value, f"config['{key}']")
    if value.shape != w.shape:
        raise ValueError(f"config['{key}'] must have w's shape {w.shape}; got {value.shape}")
    return value.astype(w.dtype, copy=False)


def _start(w, dw, config, name: str, defaults: dict) -> MutableMapping:
    """Check w and dw, and return config with its defaults filled in (a new dict for None)."""
    check_float_array(w, "w")
    check_float_array(dw, "dw")
    if dw.shape != w.shape:
        raise ValueError(f"dw must have w's shape {w.shape}; got {dw.shape}")
    if config is None:
        config = {}
    elif not isinstance(config, MutableMapping):
        raise TypeError(f"config must be a dict (or None for the defaults) for {name}; got "
                        f"{type(config).__name__}")
    for key, value in defaults.items():
        config.setdefault(key, value)
    return config


def _cast(value: np.ndarray, w: np.ndarray) -> np.ndarray:
    return value.astype(w.dtype, copy=False)


# --------------------------------------------------------------------------- update rules
def sgd(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
    """Vanilla SGD: next_w = w - learning_rate * dw.

    config: learning_rate (1e-2). Returns (next_w, config).
    """
    config = _start(w, dw, config, "sgd", {"learning_rate": 1e-2})
    lr = _learning_rate(config, "sgd")
    return _cast(w - lr * dw, w), config


def sgd_momentum(w: np.ndarray, dw: np.ndarray,
                 config: dict | None = None) -> tuple[np.ndarray, dict]:
    """SGD with momentum: v = momentum * v - learning_rate * dw; next_w = w + v.

    config: learning_rate (1e-2), momentum (0.9, in [0, 1)), velocity (zeros like w).
    Returns (next_w, config) with config['velocity'] = the new v.
    """
    name = "sgd_momentum"
    config = _start(w, dw, config, name, {"learning_rate": 1e-2, "momentum": 0.9})
    lr = _learning_rate(config, name)
    mu = _unit_interval(config, "momentum", name)
    v = _state(config, "velocity", w, name)
    v = _cast(mu * v - lr * dw, w)
    config["velocity"] = v
    return _cast(w + v, w), config


def sgd_nesterov(w: np.ndarray, dw: np.ndarray,
                 config: dict | None = None) -> tuple[np.ndarray, dict]:
    """Nesterov momentum (CS231n's form, dw taken at w):
    v_prev = v; v = momentum * v - learning_rate * dw;
    next_w = w - momentum * v_prev + (1 + momentum) * v.

    config: learning_rate (1e-2), momentum (0.9, in [0, 1)), velocity (zeros like w).
    Returns (next_w, config) with config['velocity'] = the new v.
    """
    name = "sgd_nesterov"
    config = _start(w, dw, config, name, {"learning_rate": 1e-2, "momentum": 0.9})
    lr = _learning_rate(config, name)
    mu = _unit_interval(config, "momentum", name)
    v_prev = _state(config, "velocity", w, name)
    v = _cast(mu * v_prev - lr * dw, w)
    config["velocity"] = v
    return _cast(w - mu * v_prev + (1 + mu) * v, w), config


def adagrad(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
    """AdaGrad: cache += dw**2; next_w = w - learning_rate * dw / (sqrt(cache) + epsilon).

    config: learning_rate (1e-2), epsilon (1e-8), cache (zeros like w).
    Returns (next_w, config) with config['cache'] = the new cache.
    """
    name = "adagrad"
    config = _start(w, dw, config, name, {"learning_rate": 1e-2, "epsilon": 1e-8})
    lr = _learning_rate(config, name)
    eps = _epsilon(config, name)
    cache = _state(config, "cache", w, name)
    cache = _cast(cache + dw * dw, w)
    config["cache"] = cache
    return _cast(w - lr * dw / (np.sqrt(cache) + eps), w), config


def rmsprop(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
    """RMSProp: cache = decay_rate * cache + (1 - decay_rate) * dw**2;
    next_w = w - learning_rate * dw / (sqrt(cache) + epsilon).

    config: learning_rate (1e-2), decay_rate (0.99, in [0, 1)), epsilon (1e-8),
    cache (zeros like w). Returns (next_w, config) with config['cache'] = the new cache.
    """
    name = "rmsprop"
    config = _start(w, dw, config, name,
                    {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8})
    lr = _learning_rate(config, name)
    decay = _unit_interval(config, "decay_rate", name)
    eps = _epsilon(config, name)
    cache = _state(config, "cache", w, name)
    cache = _cast(decay * cache + (1 - decay) * (dw * dw), w)
    config["cache"] = cache
    return _cast(w - lr * dw / (np.sqrt(cache) + eps), w), config


def adam(w: np.ndarray, dw: np.ndarray, config: dict | None = None) -> tuple[np.ndarray, dict]:
    """Adam with bias correction; the step counter t is incremented BEFORE it is used:
    t += 1; m = beta1 * m + (1 - beta1) * dw; v = beta2 * v + (1 - beta2) * dw**2;
    next_w = w - learning_rate * m_hat / (sqrt(v_hat) + epsilon),
    m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t).

    config: learning_rate (1e-3), beta1 (0.9), beta2 (0.999) (both in [0, 1)), epsilon (1e-8),
    m, v (zeros like w), t (0). Returns (next_w, config) with the new m, v and t; after the
    first step t == 1 and the step is learning_rate * dw / (|dw| + epsilon). Computed in w's
    dtype (dw is cast to it), in one pass (course_lib/kernels/optim.py).
    """
    name = "adam"
    config = _start(w, dw, config, name, {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999,
                                          "epsilon": 1e-8, "t": 0})
    lr = _learning_rate(config, name)
    beta1 = _unit_interval(config, "beta1", name)
    beta2 = _unit_interval(config, "beta2", name)
    eps = _epsilon(config, name)
    t = config["t"]
    if isinstance(t, bool) or not isinstance(t, Integral):
        raise TypeError(f"config['t'] must be an int (the number of steps taken) for adam; got "
                        f"{type(t).__name__} {t!r}")
    if t < 0:
        raise ValueError(f"config['t'] must be >= 0 (the number of steps taken) for adam; got "
                         f"{t}")
    m = _state(config, "m", w, name)
    v = _state(config, "v", w, name)
    t = int(t) + 1
    # One pass in Numba (course_lib/kernels/optim.py), in w's dtype; dw is cast to it first.
    scalar = w.dtype.type
    flat = [np.ascontiguousarray(a, dtype=w.dtype).reshape(-1) for a in (w, dw, m, v)]
    next_w, next_m, next_v = (np.empty(w.shape, dtype=w.dtype) for _ in range(3))
    kernels.adam_update(*flat, scalar(lr), scalar(beta1), scalar(1 - beta1), scalar(beta2),
                        scalar(1 - beta2), scalar(1 - beta1**t), scalar(1 - beta2**t),
                        scalar(eps), next_w.reshape(-1), next_m.reshape(-1), next_v.reshape(-1))
    config["t"], config["m"], config["v"] = t, next_m, next_v
    return next_w, config
