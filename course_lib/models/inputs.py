"""Checks of what a model receives: constructor arguments, and the (X, y) given to `loss`.

Shared by the models in this package; each error names the argument, the expectation and what
arrived. Weights: `seed=None` draws from NumPy's global generator, so `np.random.seed(231)`
before building a model reproduces the CS231n notebooks; an int or a np.random.Generator gives
the model its own generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from course_lib.validation import FLOAT_DTYPES, check_float_array, check_int_array

__all__: list[str] = []  # internal to course_lib.models


def check_dtype(dtype: Any) -> np.dtype:
    """np.float32 or np.float64 (anything np.dtype understands), else TypeError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be np.float32 or np.float64; got {dtype!r}")
    return resolved


def check_positive_number(value: Any, name: str, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (>= 0 with allow_zero), e.g. weight_scale or reg."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__} {value!r}")
    ok = np.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}; got {value}")
    return float(value)


def weight_generator(seed: Any) -> np.random.Generator | None:
    """The `rng` for course_lib.init: None (NumPy's global generator) for seed=None, else one
    np.random.Generator per model, so that successive layers get different draws."""
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be None, an int or a np.random.Generator; got "
                        f"{type(seed).__name__} {seed!r}")
    return np.random.default_rng(seed)


def check_model_input(X: Any, y: Any, sample_shape: Sequence[int], num_classes: int,
                      dtype: np.dtype, model: str, *, flatten: bool = False) -> np.ndarray:
    """Validate X (and y when given) and return X cast to the model's dtype.

    sample_shape: the shape of one sample, e.g. (3, 32, 32). With flatten=True (fully connected
    models) any X of shape (N, d1, ..., dk) with d1 * ... * dk == prod(sample_shape) is accepted.
    """
    X = check_float_array(X, "X")
    if X.ndim < 2 or X.shape[0] == 0:
        raise ValueError(f"X must be a non-empty batch (N, ...) for {model}; got shape {X.shape}")
    if flatten:
        expected = int(np.prod(sample_shape))
        if int(np.prod(X.shape[1:])) != expected:
            raise ValueError(
                f"X must have shape (N, d1, ..., dk) with d1*...*dk = input_dim = {expected} for "
                f"{model}; got {X.shape} ({int(np.prod(X.shape[1:]))} values per sample)")
    elif X.shape[1:] != tuple(sample_shape):
        raise ValueError(f"X must have shape (N, {', '.join(map(str, sample_shape))}) to match "
                         f"{model}'s input_dim; got {X.shape}")
    if y is not None:
        check_int_array(y, "y", length=X.shape[0], upper=num_classes)
    return X.astype(dtype, copy=False)
