"""scikit-learn's embedded handwritten digits: the offline default data set of the course.

1797 greyscale 8x8 images of the digits 0-9 (about 180 per class), shipped inside scikit-learn,
so every notebook runs without a download. Pixel values 0..16 are scaled to [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.data.splits import check_split_args, stratified_split
from course_lib.validation import FLOAT_DTYPES

__all__ = ["load_digits"]

NUM_DIGITS = 1797
DIGIT_CLASS_NAMES = tuple(str(d) for d in range(10))


def check_float_dtype(dtype: Any, name: str = "dtype") -> np.dtype:
    """np.float32 or np.float64 (anything np.dtype understands), else TypeError."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be np.float32 or np.float64; got {dtype!r}")
    return resolved


def load_digits(num_validation: int = 200, num_test: int = 200, dtype: Any = np.float64,
                seed: int = 0, flatten: bool = False) -> dict[str, Any]:
    """Split scikit-learn's digits into train/validation/test sets.

    Returns a dict:
        X_train, X_val, X_test: (N, 1, 8, 8) images in [0, 1] (pixel value / 16), of `dtype`;
                                (N, 64) if flatten=True.
        y_train, y_val, y_test: (N,) int64 labels 0..9.
        class_names:            ('0', '1', ..., '9').

    The split is stratified (each set holds the ten classes in the proportions of the whole
    set) and depends only on `seed`; the training set gets the 1797 - num_validation - num_test
    images that remain. Each set is in random order.
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    num_validation, num_test, seed = check_split_args(num_validation, num_test, seed,
                                                      NUM_DIGITS, "digits")
    dtype = check_float_dtype(dtype)

    digits = sklearn_load_digits()
    X = (digits.images / 16.0).astype(dtype)[:, None, :, :]     # (1797, 1, 8, 8) NCHW
    y = digits.target.astype(np.int64)
    if flatten:
        X = X.reshape(len(X), -1)
    data: dict[str, Any] = stratified_split(X, y, num_validation, num_test, seed)
    data["class_names"] = DIGIT_CLASS_NAMES
    return data
