"""Preprocessing from the lectures: mean subtraction, per-channel normalisation, PCA, whitening.

Statistics are always computed on the training set and then applied unchanged to the
validation and test sets. Outputs have the input's float dtype; PCA and whitening compute the
covariance and its eigendecomposition in float64 (float32 loses the small eigenvalues).
"""

from __future__ import annotations

import numpy as np

from course_lib.validation import check_float_array, check_positive_int, check_shape

__all__ = ["mean_image", "subtract_mean", "per_channel_mean_std", "normalize_per_channel",
           "pca_fit", "pca_transform", "whiten", "zca_whiten"]


def _check_eps(eps: float) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise TypeError(f"eps must be a positive number; got {type(eps).__name__}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0 (it keeps 1/sqrt(variance + eps) finite); got {eps}")
    return float(eps)


def _check_samples(X: np.ndarray, name: str = "X", minimum: int = 1) -> np.ndarray:
    check_float_array(X, name)
    if X.ndim < 2:
        raise ValueError(f"{name} must be at least 2-D (N, D) or (N, C, H, W); got shape "
                         f"{X.shape}")
    if X.shape[0] < minimum:
        raise ValueError(f"{name} must hold at least {minimum} sample(s) along axis 0; got "
                         f"shape {X.shape}")
    return X


def mean_image(X: np.ndarray) -> np.ndarray:
    """X: (N, ...) -> the mean over the N samples, shape X.shape[1:] (e.g. (C, H, W))."""
    _check_samples(X)
    # Accumulate in float64: summing 50000 float32 images row by row loses ~3 digits.
    return X.mean(axis=0, dtype=np.float64).astype(X.dtype)


def subtract_mean(X: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """X: (N, ...), mean: X.shape[1:] (from mean_image of the training set) -> X - mean."""
    _check_samples(X, minimum=0)
    check_float_array(mean, "mean")
    check_shape(mean, "mean", X.shape[1:], "(one value per feature of X, from mean_image)")
    return X - mean.astype(X.dtype, copy=False)


def per_channel_mean_std(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """X: (N, C, H, W) -> (mean, std), each (C,), over N, H and W (biased std, 1/(N*H*W))."""
    check_float_array(X, "X", ndim=4, layout="(N, C, H, W)")
    if X.shape[0] == 0:
        raise ValueError(f"X must hold at least one image; got shape {X.shape}")
    mean = X.mean(axis=(0, 2, 3), dtype=np.float64)       # float64 accumulation, as above
    std = X.std(axis=(0, 2, 3), dtype=np.float64)
    return mean.astype(X.dtype), std.astype(X.dtype)


def normalize_per_channel(X: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """X: (N, C, H, W); mean, std: (C,) -> (X - mean[c]) / std[c] for each channel c."""
    check_float_array(X, "X", ndim=4, layout="(N, C, H, W)")
    C = X.shape[1]
    for name, value in (("mean", mean), ("std", std)):
        check_float_array(value, name, ndim=1, layout="(C,)")
        check_shape(value, name, (C,), f"(one value per channel; X has C={C})")
    if np.any(std <= 0):
        raise ValueError(f"std must be > 0 in every channel; got {std}")
    mean = mean.astype(X.dtype, copy=False)[None, :, None, None]
    std = std.astype(X.dtype, copy=False)[None, :, None, None]
    return (X - mean) / std


def _eigh_covariance(X2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X2: (N, D) -> (mean (D,), eigenvalues (D,) descending, eigenvectors (D, D) as rows)."""
    X64 = X2.astype(np.float64)
    mean = X64.mean(axis=0)
    Xc = X64 - mean
    cov = Xc.T @ Xc / X64.shape[0]
    variances, vectors = np.linalg.eigh(cov)                 # ascending, columns
    order = np.argsort(variances)[::-1]
    variances = np.clip(variances[order], 0.0, None)         # rounding can give -1e-17
    components = vectors[:, order].T
    # Fix each component's sign (largest-magnitude entry positive) so results are reproducible.
    signs = np.sign(components[np.arange(len(components)),
                               np.argmax(np.abs(components), axis=1)])
    return mean, variances, components * signs[:, None]


def pca_fit(X: np.ndarray, num_components: int | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal components of X.

    X: (N, D), or (N, C, H, W) flattened to D = C*H*W.
    Returns (mean (D,), components (K, D), variances (K,)) with K = num_components (default D):
    the rows of `components` are orthonormal eigenvectors of the covariance
    Sigma = (X - mean)^T (X - mean) / N, ordered by decreasing eigenvalue (`variances`, the
    variance of the data along each component).
    """
    _check_samples(X, minimum=2)
    X2 = X.reshape(X.shape[0], -1)
    D = X2.shape[1]
    K = D if num_components is None else check_positive_int(num_components, "num_components")
    if K > D:
        raise ValueError(f"num_components must be at most the D={D} features of X; got {K}")
    mean, variances, components = _eigh_covariance(X2)
    dtype = X.dtype
    return mean.astype(dtype), components[:K].astype(dtype), variances[:K].astype(dtype)


def pca_transform(X: np.ndarray, mean: np.ndarray, components: np.ndarray) -> np.ndarray:
    """Project X onto principal components: (X - mean) @ components.T.

    X: (N, D) or (N, C, H, W) flattened; mean: (D,); components: (K, D) from pca_fit.
    Returns (N, K).
    """
    _check_samples(X, minimum=0)
    X2 = X.reshape(X.shape[0], -1)
    D = X2.shape[1]
    check_float_array(mean, "mean", ndim=1, layout="(D,)")
    check_shape(mean, "mean", (D,), f"(X has D={D} features)")
    check_float_array(components, "components", ndim=2, layout="(K, D)")
    check_shape(components, "components", (None, D), f"(K, D) with D={D} to match X")
    return (X2 - mean.astype(X.dtype, copy=False)) @ components.astype(X.dtype, copy=False).T


def whiten(X: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """PCA whitening: rotate onto the principal components and scale each to unit variance.

    X: (N, D) or (N, C, H, W) flattened. Returns (N, D):
        X_white = (X - mean) @ U / sqrt(variances + eps)
    where U (D, D) holds the eigenvectors of the covariance as columns. The covariance of
    X_white is diag(variances / (variances + eps)), the identity wherever variance >> eps;
    eps stops directions of (almost) zero variance from being blown up into noise.
    """
    _check_samples(X, minimum=2)
    eps = _check_eps(eps)
    X2 = X.reshape(X.shape[0], -1)
    mean, variances, components = _eigh_covariance(X2)
    X_white = (X2 - mean) @ components.T / np.sqrt(variances + eps)
    return X_white.astype(X.dtype)


def zca_whiten(X: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """ZCA whitening: PCA whitening rotated back to the original pixel axes.

    X: (N, D) or (N, C, H, W). Returns an array of X's shape:
        X_zca = (X - mean) @ U diag(1 / sqrt(variances + eps)) U^T
    Same (near-identity) covariance as `whiten`, but each output feature stays tied to its input
    pixel, so whitened images still look like (edge-enhanced) images.
    """
    _check_samples(X, minimum=2)
    eps = _check_eps(eps)
    X2 = X.reshape(X.shape[0], -1)
    mean, variances, components = _eigh_covariance(X2)
    X_white = (X2 - mean) @ components.T / np.sqrt(variances + eps)
    return (X_white @ components).reshape(X.shape).astype(X.dtype)
