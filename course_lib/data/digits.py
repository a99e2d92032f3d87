"""scikit-learn's embedded handwritten digits: the offline default data set of the course.

1797 greyscale 8x8 images of the digits 0-9 (about 180 per class), shipped inside scikit-learn,
so every notebook runs without a download. Pixel values 0..16 are scaled to [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.validation import FLOAT_DTYPES, check_nonnegative_int

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


def stratified_order(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random permutation of range(len(y)) in which every prefix has ~the class proportions.

    Each sample gets its rank among a random shuffle of its own class, divided by the class
    size (a 'quantile' in [0, 1)); sorting by that quantile interleaves the classes evenly, so
    the first k indices hold each class in proportion to its frequency, for any k.
    """
    perm = rng.permutation(len(y))
    quantile = np.empty(len(y))
    for label in np.unique(y):
        members = perm[y[perm] == label]            # this class, in shuffled order
        quantile[members] = np.arange(len(members)) / len(members)
    # A stable sort keeps equal quantiles (different classes) in their random `perm` order.
    return perm[np.argsort(quantile[perm], kind="stable")]


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

    num_validation = check_nonnegative_int(num_validation, "num_validation")
    num_test = check_nonnegative_int(num_test, "num_test")
    dtype = check_float_dtype(dtype)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {type(seed).__name__} {seed!r}")
    if num_validation + num_test >= NUM_DIGITS:
        raise ValueError(
            f"num_validation + num_test must be less than the {NUM_DIGITS} digits so that "
            f"training images remain; got {num_validation} + {num_test} = "
            f"{num_validation + num_test}")

    digits = sklearn_load_digits()
    X = (digits.images / 16.0).astype(dtype)[:, None, :, :]     # (1797, 1, 8, 8) NCHW
    y = digits.target.astype(np.int64)
    if flatten:
        X = X.reshape(len(X), -1)

    rng = np.random.default_rng(seed)
    order = stratified_order(y, rng)
    test_idx = order[:num_test]
    val_idx = order[num_test:num_test + num_validation]
    train_idx = order[num_test + num_validation:]
    # Shuffle within each set so the interleaved class pattern of stratified_order disappears.
    splits = {name: rng.permutation(idx) for name, idx in
              (("train", train_idx), ("val", val_idx), ("test", test_idx))}
    data: dict[str, Any] = {}
    for name, idx in splits.items():
        data[f"X_{name}"] = np.ascontiguousarray(X[idx])
        data[f"y_{name}"] = y[idx]
    data["class_names"] = DIGIT_CLASS_NAMES
    return data
