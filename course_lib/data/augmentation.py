"""Data augmentation for NCHW image batches.

Every transform takes a batch X (N, C, H, W) of float32/float64 and a np.random.Generator,
draws its random choices independently per image from that generator, and returns a new array
of X's dtype and shape (X is never modified). The same seed gives the same batch. Values are not
clipped, so the transforms also work on mean-subtracted data.

Use them on training batches only, e.g.
    augment = Compose([random_flip, partial(random_crop, pad=4), partial(cutout, size=8)])
    X_batch = augment(X_batch, rng)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course_lib.validation import (
    check_float_array,
    check_int_array,
    check_nonnegative_int,
    check_positive_int,
    check_probability,
)

__all__ = ["random_flip", "random_crop", "color_jitter", "cutout", "mixup", "Compose",
           "augment_batch"]

Transform = Callable[[np.ndarray, np.random.Generator], np.ndarray]

# ITU-R 601 luma weights, the greyscale conversion of PIL and torchvision.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


def _check_batch(X: Any, rng: Any) -> None:
    check_float_array(X, "X", ndim=4, layout="(N, C, H, W)")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a np.random.Generator (np.random.default_rng(seed)); got "
                        f"{type(rng).__name__}")


def random_flip(X: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right (along W) with probability p. X: (N, C, H, W)."""
    _check_batch(X, rng)
    p = check_probability(p, "p", allow_one=True)
    flip = rng.random(X.shape[0]) < p
    out = X.copy()
    out[flip] = X[flip, :, :, ::-1]
    return out


def random_crop(X: np.ndarray, rng: np.random.Generator, pad: int = 4,
                crop_size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Zero-pad each image by `pad` pixels on every side, then cut out a random window.

    X: (N, C, H, W). The window is crop_size (an int for a square, or (h, w)), by default the
    original (H, W), so the result is the image shifted by up to `pad` pixels in each direction
    with zeros shifted in. Top-left offsets are uniform in [0, H + 2*pad - h] x [0, W + 2*pad - w].
    Returns (N, C, h, w).
    """
    _check_batch(X, rng)
    pad = check_nonnegative_int(pad, "pad")
    N, C, H, W = X.shape
    if crop_size is None:
        h, w = H, W
    elif isinstance(crop_size, (tuple, list)) and len(crop_size) == 2:
        h = check_positive_int(crop_size[0], "crop_size[0]")
        w = check_positive_int(crop_size[1], "crop_size[1]")
    else:
        h = w = check_positive_int(crop_size, "crop_size")
    if h > H + 2 * pad or w > W + 2 * pad:
        raise ValueError(f"crop_size must fit in the padded image ({H + 2 * pad}, "
                         f"{W + 2 * pad}); got ({h}, {w})")
    padded = np.pad(X, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    tops = rng.integers(0, H + 2 * pad - h, size=N, endpoint=True)
    lefts = rng.integers(0, W + 2 * pad - w, size=N, endpoint=True)
    out = np.empty((N, C, h, w), dtype=X.dtype)
    for i in range(N):
        out[i] = padded[i, :, tops[i]:tops[i] + h, lefts[i]:lefts[i] + w]
    return out


def _check_strength(value: Any, name: str) -> float:
    # A factor drawn from [1 - value, 1 + value] must stay >= 0.
    return check_probability(value, name, allow_one=True)


def _greyscale(X: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, 1, H, W): luma for RGB, the image itself for one channel."""
    if X.shape[1] == 3:
        weights = np.asarray(LUMA_WEIGHTS, dtype=X.dtype)
        return np.einsum("nchw,c->nhw", X, weights)[:, None]
    return X.mean(axis=1, keepdims=True)


def color_jitter(X: np.ndarray, rng: np.random.Generator, brightness: float = 0.2,
                 contrast: float = 0.2, saturation: float = 0.2) -> np.ndarray:
    """Random brightness, contrast and saturation per image, applied in that order.

    X: (N, C, H, W). For each image draw factors b, c, s uniformly from [1 - brightness,
    1 + brightness] etc., and blend as torchvision does:
        brightness:  x <- b * x                          (blend with black)
        contrast:    x <- m + c * (x - m),  m = mean of the image's greyscale (a scalar)
        saturation:  x <- g + s * (x - g),  g = the greyscale image (per pixel); C = 3 only
    Greyscale is the luma 0.299 R + 0.587 G + 0.114 B. Saturation is skipped unless C = 3.
    """
    _check_batch(X, rng)
    brightness = _check_strength(brightness, "brightness")
    contrast = _check_strength(contrast, "contrast")
    saturation = _check_strength(saturation, "saturation")
    N = X.shape[0]

    def factors(strength: float) -> np.ndarray:
        # One factor per image, broadcast over (C, H, W); cast so float32 stays float32.
        f = rng.uniform(1 - strength, 1 + strength, size=N)
        return f.astype(X.dtype)[:, None, None, None]

    out = X * factors(brightness)
    m = _greyscale(out).mean(axis=(1, 2, 3), keepdims=True)
    out = m + factors(contrast) * (out - m)
    if X.shape[1] == 3:
        g = _greyscale(out)
        out = g + factors(saturation) * (out - g)
    return out


def cutout(X: np.ndarray, rng: np.random.Generator, size: int = 8) -> np.ndarray:
    """Zero a size x size square in every image (all channels), clipped at the border.

    X: (N, C, H, W). The square's centre (cy, cx) is uniform over all H x W pixels (DeVries &
    Taylor 2017), and it covers rows cy - size//2 .. cy - size//2 + size - 1 (same for
    columns), so near the border only part of it lies inside the image.
    """
    _check_batch(X, rng)
    size = check_positive_int(size, "size")
    N, _, H, W = X.shape
    cys = rng.integers(0, H, size=N)
    cxs = rng.integers(0, W, size=N)
    out = X.copy()
    for i in range(N):
        top, left = cys[i] - size // 2, cxs[i] - size // 2
        out[i, :, max(top, 0):max(top + size, 0), max(left, 0):max(left + size, 0)] = 0
    return out


def mixup(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, alpha: float = 0.2,
          num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """mixup (Zhang et al. 2018): blend the batch with a shuffled copy of itself.

    X: (N, C, H, W); y: (N,) int labels. Draw one lam ~ Beta(alpha, alpha) for the batch and a
    random permutation P, then
        X_mixed = lam * X + (1 - lam) * X[P]
        y_soft  = lam * onehot(y) + (1 - lam) * onehot(y[P])    (N, num_classes), rows sum to 1
    num_classes defaults to y.max() + 1. Train on y_soft with a soft-label cross-entropy.
    """
    _check_batch(X, rng)
    N = X.shape[0]
    check_int_array(y, "y", length=N)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise TypeError(f"alpha must be a positive number; got {type(alpha).__name__}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 (the Beta(alpha, alpha) parameter); got {alpha}")
    if num_classes is None:
        num_classes = int(y.max()) + 1 if N else 1
    num_classes = check_positive_int(num_classes, "num_classes")
    check_int_array(y, "y", upper=num_classes)

    lam = X.dtype.type(rng.beta(alpha, alpha))
    perm = rng.permutation(N)
    one_hot = np.eye(num_classes, dtype=X.dtype)[y]
    X_mixed = lam * X + (1 - lam) * X[perm]
    y_soft = lam * one_hot + (1 - lam) * one_hot[perm]
    return X_mixed, y_soft


class Compose:
    """Apply transforms in order: Compose([f, g])(X, rng) == g(f(X, rng), rng).

    Each transform is a callable (X, rng) -> X; fix other arguments with functools.partial,
    e.g. partial(random_crop, pad=4). (mixup also needs the labels, so call it separately.)
    """

    def __init__(self, transforms: Sequence[Transform]):
        if isinstance(transforms, (str, bytes)) or not isinstance(transforms, Sequence):
            raise TypeError(f"transforms must be a list of callables (X, rng) -> X; got "
                            f"{type(transforms).__name__}")
        for i, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"transforms[{i}] must be a callable (X, rng) -> X; got "
                                f"{type(t).__name__}")
        self.transforms = list(transforms)

    def __call__(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_batch(X, rng)
        out = X
        for t in self.transforms:
            out = t(out, rng)
        # An empty list must still return a new array (inputs are never aliased).
        return out.copy() if out is X else out

    def __repr__(self) -> str:
        return f"Compose({self.transforms!r})"


def augment_batch(X: np.ndarray, rng: np.random.Generator,
                  transforms: Sequence[Transform]) -> np.ndarray:
    """Apply `transforms` (callables (X, rng) -> X) to the batch X in order; see Compose."""
    return Compose(transforms)(X, rng)
