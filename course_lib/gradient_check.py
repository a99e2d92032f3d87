"""Numerical gradients and relative error, compatible with CS231n's `gradient_check.py`.

Centred differences: df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h), error O(h^2). Use float64:
with h = 1e-5 the rounding error of float32 (~1e-7 / 1e-5 = 1e-2) would swamp the result.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["eval_numerical_gradient", "eval_numerical_gradient_array", "grad_check_sparse",
           "rel_error"]


def rel_error(x, y) -> float:
    """max(|x - y| / max(1e-8, |x| + |y|)), elementwise; ~1e-7 or less means 'same'."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def _check_float64_array(x, name: str) -> None:
    if not isinstance(x, np.ndarray) or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must be a float ndarray (float64 recommended); got "
                        f"{type(x).__name__}"
                        + (f" of dtype {x.dtype}" if isinstance(x, np.ndarray) else ""))


def eval_numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray,
                            verbose: bool = True, h: float = 1e-5) -> np.ndarray:
    """Gradient of scalar f at x, shape of x. x is perturbed in place and restored."""
    _check_float64_array(x, "x")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        old_value = x[ix]
        x[ix] = old_value + h
        f_plus = f(x)
        x[ix] = old_value - h
        f_minus = f(x)
        x[ix] = old_value
        grad[ix] = (f_plus - f_minus) / (2 * h)
        if verbose:
            print(ix, grad[ix])
        it.iternext()
    return grad


def eval_numerical_gradient_array(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                                  df: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Gradient of sum(f(x) * df) with respect to x, for an array-valued f (a layer's forward).

    df is the upstream gradient (same shape as f(x)); the result has x's shape.
    """
    _check_float64_array(x, "x")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        old_value = x[ix]
        x[ix] = old_value + h
        out_plus = np.array(f(x), copy=True)
        x[ix] = old_value - h
        out_minus = np.array(f(x), copy=True)
        x[ix] = old_value
        grad[ix] = np.sum((out_plus - out_minus) * df) / (2 * h)
        it.iternext()
    return grad


def grad_check_sparse(f: Callable[[np.ndarray], float], x: np.ndarray,
                      analytic_grad: np.ndarray, num_checks: int = 10,
                      h: float = 1e-5, seed: int | None = None) -> list[float]:
    """Compare analytic_grad with the numerical gradient at `num_checks` random positions.

    Prints one line per check as CS231n does and returns the relative errors. `seed` makes the
    positions repeatable (default: different positions on every call).
    """
    _check_float64_array(x, "x")
    if np.shape(analytic_grad) != x.shape:
        raise ValueError(f"analytic_grad must have x's shape {x.shape}; got "
                         f"{np.shape(analytic_grad)}")
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(num_checks):
        ix = tuple(int(rng.integers(m)) for m in x.shape)
        old_value = x[ix]
        x[ix] = old_value + h
        f_plus = f(x)
        x[ix] = old_value - h
        f_minus = f(x)
        x[ix] = old_value
        numerical = (f_plus - f_minus) / (2 * h)
        analytic = analytic_grad[ix]
        denominator = abs(numerical) + abs(analytic)
        error = abs(numerical - analytic) / denominator if denominator > 0 else 0.0
        errors.append(float(error))
        print(f"numerical: {numerical:f} analytic: {analytic:f}, relative error: {error:e}")
    return errors
