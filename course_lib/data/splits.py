"""The train/validation/test split shared by the embedded data sets (digits, MNIST).

Stratified and seeded: the validation and test sets hold each class in the proportions of the
whole set (to within one image), and the split depends only on the seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from course_lib.validation import check_nonnegative_int


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


def check_split_args(num_validation: Any, num_test: Any, seed: Any, total: int,
                     dataset: str) -> tuple[int, int, int]:
    """(num_validation, num_test, seed) as ints, leaving at least one training image."""
    num_validation = check_nonnegative_int(num_validation, "num_validation")
    num_test = check_nonnegative_int(num_test, "num_test")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int; got {type(seed).__name__} {seed!r}")
    if num_validation + num_test >= total:
        raise ValueError(
            f"num_validation + num_test must be less than the {total} {dataset} so that "
            f"training images remain; got {num_validation} + {num_test} = "
            f"{num_validation + num_test}")
    return num_validation, num_test, int(seed)


def stratified_split(X: np.ndarray, y: np.ndarray, num_validation: int, num_test: int,
                     seed: int) -> dict[str, np.ndarray]:
    """{'X_train', 'y_train', 'X_val', 'y_val', 'X_test', 'y_test'} from all of X, y.

    The first num_test images of stratified_order(y, default_rng(seed)) are the test set, the
    next num_validation the validation set, the rest the training set; each set is then
    shuffled (same generator), so no class pattern remains. Arrays are C-contiguous copies.
    """
    rng = np.random.default_rng(seed)
    order = stratified_order(y, rng)
    test_idx = order[:num_test]
    val_idx = order[num_test:num_test + num_validation]
    train_idx = order[num_test + num_validation:]
    # Shuffle within each set so the interleaved class pattern of stratified_order disappears.
    splits = {name: rng.permutation(idx) for name, idx in
              (("train", train_idx), ("val", val_idx), ("test", test_idx))}
    data: dict[str, np.ndarray] = {}
    for name, idx in splits.items():
        data[f"X_{name}"] = np.ascontiguousarray(X[idx])
        data[f"y_{name}"] = y[idx]
    return data
