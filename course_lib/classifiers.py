"""The first lecture's classifiers: k-nearest neighbours and linear classifiers.

k-NN:    compute_distances (Euclidean, vectorised) and predict_labels (majority vote).
Linear:  scores = X @ W; the SVM and softmax losses of those scores with L2 regularisation
         0.5 * reg * sum(W**2) (gradient reg * W), and a LinearClassifier trained by
         mini-batch gradient descent.
The data losses themselves live in course_lib.losses (one implementation of each formula).
"""

from __future__ import annotations

from numbers import Real

import numpy as np

from course_lib.losses import softmax_loss, svm_loss
from course_lib.validation import (
    check_float_array,
    check_int_array,
    check_positive_int,
)

__all__ = [
    "compute_distances", "predict_labels",
    "svm_loss_vectorized", "softmax_loss_vectorized",
    "LinearClassifier",
]


# --------------------------------------------------------------------------- k-NN
def compute_distances(X_test: np.ndarray, X_train: np.ndarray) -> np.ndarray:
    """Euclidean (L2) distances. X_test: (num_test, D); X_train: (num_train, D).

    Returns dists (num_test, num_train), dists[i, j] = ||X_test[i] - X_train[j]||_2, without
    loops: ||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b. Both sets are first shifted by the mean
    training row (distances do not change) and the arithmetic is float64, which keeps the
    cancellation small; rounding can still make a squared distance slightly negative, so it is
    clipped at 0 before the square root. dtype: float32 only if both inputs are float32.
    """
    check_float_array(X_test, "X_test", 2, "(num_test, D)")
    check_float_array(X_train, "X_train", 2, "(num_train, D)")
    if X_test.shape[1] != X_train.shape[1]:
        raise ValueError(f"X_test must have shape (num_test, D) with D={X_train.shape[1]} to "
                         f"match X_train of shape {X_train.shape}; got {X_test.shape}")
    center = X_train.mean(axis=0, dtype=np.float64) if len(X_train) else 0.0
    a = X_test.astype(np.float64) - center
    b = X_train.astype(np.float64) - center
    sq = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2 * (a @ b.T)
    dists = np.sqrt(np.maximum(sq, 0))
    return dists.astype(np.result_type(X_test, X_train), copy=False)


def predict_labels(dists: np.ndarray, y_train: np.ndarray, k: int = 1) -> np.ndarray:
    """Majority vote of the k nearest training points. dists: (num_test, num_train);
    y_train: (num_train,) non-negative integer labels; 1 <= k <= num_train.

    Returns y_pred (num_test,) in y_train's dtype. Ties in the vote go to the smallest label;
    among training points at equal distance the one with the lower index counts as nearer.
    """
    check_float_array(dists, "dists", 2, "(num_test, num_train)")
    num_test, num_train = dists.shape
    check_int_array(y_train, "y_train")
    if y_train.shape[0] != num_train:
        raise ValueError(f"y_train must have length num_train={num_train} to match dists of "
                         f"shape {dists.shape}; got {y_train.shape[0]}")
    if num_train == 0:
        raise ValueError("dists must have at least one training column; got shape "
                         f"{dists.shape}")
    if y_train.min() < 0:
        raise ValueError(f"y_train must hold non-negative labels; got a minimum of "
                         f"{y_train.min()}")
    k = check_positive_int(k, "k")
    if k > num_train:
        raise ValueError(f"k must be at most num_train={num_train}; got {k}")
    # A stable sort makes ties in distance deterministic (the lower training index wins).
    nearest = np.argsort(dists, axis=1, kind="stable")[:, :k]
    closest_y = y_train[nearest].astype(np.int64)            # (num_test, k)
    num_labels = int(y_train.max()) + 1
    # Vote counts for all rows at once: row i's votes go to bins i*L ... i*L + L - 1.
    offsets = np.arange(num_test, dtype=np.int64)[:, None] * num_labels
    counts = np.bincount((closest_y + offsets).ravel(), minlength=num_test * num_labels)
    # argmax returns the first maximum, i.e. the smallest label among tied counts.
    return counts.reshape(num_test, num_labels).argmax(axis=1).astype(y_train.dtype)


# --------------------------------------------------------------------------- linear losses
def _check_reg(reg) -> float:
    if isinstance(reg, bool) or not isinstance(reg, Real):
        raise TypeError(f"reg must be a non-negative number; got {type(reg).__name__} {reg!r}")
    if not (np.isfinite(reg) and reg >= 0):
        raise ValueError(f"reg must be a non-negative finite number; got {reg}")
    return float(reg)


def _check_linear_args(W, X, y, reg) -> float:
    check_float_array(W, "W", 2, "(D, C)")
    check_float_array(X, "X", 2, "(N, D)")
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"X must have shape (N, D) with D={W.shape[0]} to match W of shape "
                         f"{W.shape}; got {X.shape}")
    if X.shape[0] == 0 or W.shape[1] == 0:
        raise ValueError(f"X must hold at least one sample and W at least one class; got X "
                         f"{X.shape}, W {W.shape}")
    check_int_array(y, "y", length=X.shape[0], upper=W.shape[1])
    return _check_reg(reg)


def _linear_loss(data_loss, W, b, X, y, reg):
    """scores = X @ W (+ b): returns (loss, dW, db) of `data_loss` + 0.5 * reg * sum(W**2).

    db is None when b is None. The bias is never regularised.
    """
    W = W.astype(X.dtype, copy=False)
    scores = X @ W if b is None else X @ W + b.astype(X.dtype, copy=False)
    loss, dscores = data_loss(scores, y)
    loss += 0.5 * reg * float(np.sum(W.astype(np.float64) ** 2))
    dW = (X.T @ dscores + reg * W).astype(X.dtype, copy=False)
    db = None if b is None else dscores.sum(axis=0)
    return loss, dW, db


def svm_loss_vectorized(W: np.ndarray, X: np.ndarray, y: np.ndarray,
                        reg: float) -> tuple[float, np.ndarray]:
    """Multiclass SVM loss of a linear classifier. W: (D, C); X: (N, D); y: (N,) labels.

    loss = svm_loss(X @ W, y) (margin 1, averaged over N) + 0.5 * reg * sum(W**2);
    dW = X.T @ dscores + reg * W.  Returns (loss, dW (D, C) in X's dtype).
    """
    reg = _check_linear_args(W, X, y, reg)
    loss, dW, _ = _linear_loss(svm_loss, W, None, X, y, reg)
    return loss, dW


def softmax_loss_vectorized(W: np.ndarray, X: np.ndarray, y: np.ndarray,
                            reg: float) -> tuple[float, np.ndarray]:
    """Softmax loss of a linear classifier. W: (D, C); X: (N, D); y: (N,) labels.

    loss = softmax_loss(X @ W, y) (averaged over N) + 0.5 * reg * sum(W**2);
    dW = X.T @ dscores + reg * W.  Returns (loss, dW (D, C) in X's dtype).
    """
    reg = _check_linear_args(W, X, y, reg)
    loss, dW, _ = _linear_loss(softmax_loss, W, None, X, y, reg)
    return loss, dW


# --------------------------------------------------------------------------- LinearClassifier
class LinearClassifier:
    """A linear classifier, scores = X @ W + b, trained by mini-batch gradient descent.

    loss: "softmax" or "svm" (the data loss of the scores, course_lib.losses).
    After train(), W: (D, C) and b: (C,). The L2 penalty 0.5 * reg * sum(W**2) applies to W
    only, never to the bias b.
    """

    LOSSES = {"softmax": softmax_loss, "svm": svm_loss}

    def __init__(self, loss: str = "softmax", num_classes: int | None = None):
        if loss not in self.LOSSES:
            raise ValueError(f"loss must be one of {sorted(self.LOSSES)}; got {loss!r}")
        self.loss_name = loss
        self.num_classes = None if num_classes is None else check_positive_int(
            num_classes, "num_classes")
        self.W: np.ndarray | None = None
        self.b: np.ndarray | None = None

    def loss(self, X: np.ndarray, y: np.ndarray, reg: float = 0.0):
        """Returns (loss, dW, db) on the batch X (N, D), y (N,) at the current W, b."""
        if self.W is None:
            raise RuntimeError("the classifier has no weights yet; call train() first")
        reg = _check_linear_args(self.W, X, y, reg)
        return _linear_loss(self.LOSSES[self.loss_name], self.W, self.b, X, y, reg)

    def train(self, X: np.ndarray, y: np.ndarray, learning_rate: float = 1e-3,
              reg: float = 1e-5, num_iters: int = 100, batch_size: int = 200,
              seed: int | None = None, verbose: bool = False) -> list[float]:
        """Mini-batch gradient descent. X: (N, D); y: (N,) labels in [0, C).

        Each iteration draws batch_size samples with replacement and steps
        W -= learning_rate * dW, b -= learning_rate * db. W starts as 0.001 * N(0, 1) and b at
        zero (on the first call; later calls continue from the current W, b).
        seed: for the initial W and the batches. Returns the loss of every iteration.
        """
        check_float_array(X, "X", 2, "(N, D)")
        if X.shape[0] == 0:
            raise ValueError("X must hold at least one sample; got shape (0, D)")
        check_int_array(y, "y", length=X.shape[0])
        if y.min() < 0:
            raise ValueError(f"y must hold non-negative labels; got a minimum of {y.min()}")
        if isinstance(learning_rate, bool) or not isinstance(learning_rate, Real) or not (
                np.isfinite(learning_rate) and learning_rate > 0):
            raise ValueError(f"learning_rate must be a positive finite number; got "
                             f"{learning_rate!r}")
        reg = _check_reg(reg)
        num_iters = check_positive_int(num_iters, "num_iters")
        batch_size = check_positive_int(batch_size, "batch_size")
        rng = np.random.default_rng(seed)
        N, D = X.shape
        if self.W is None:
            C = self.num_classes if self.num_classes is not None else int(y.max()) + 1
            self.num_classes = C
            self.W = (0.001 * rng.standard_normal((D, C))).astype(X.dtype)
            self.b = np.zeros(C, dtype=X.dtype)
        elif self.W.shape[0] != D:
            raise ValueError(f"X must have shape (N, D) with D={self.W.shape[0]} to match the "
                             f"trained W; got {X.shape}")
        if y.max() >= self.num_classes:
            raise ValueError(f"y must hold labels in [0, {self.num_classes}); got a maximum of "
                             f"{y.max()}")
        history = []
        for it in range(num_iters):
            batch = rng.integers(0, N, size=batch_size)
            loss, dW, db = self.loss(X[batch], y[batch], reg)
            self.W = (self.W - learning_rate * dW).astype(self.W.dtype, copy=False)
            self.b = (self.b - learning_rate * db).astype(self.b.dtype, copy=False)
            history.append(loss)
            if verbose and (it % 100 == 0 or it == num_iters - 1):
                print(f"iteration {it} / {num_iters}: loss {loss:.6f}")
        return history

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels (N,) = argmax of the scores X @ W + b. X: (N, D)."""
        if self.W is None:
            raise RuntimeError("the classifier has no weights yet; call train() first")
        check_float_array(X, "X", 2, "(N, D)")
        if X.shape[1] != self.W.shape[0]:
            raise ValueError(f"X must have shape (N, D) with D={self.W.shape[0]} to match W; "
                             f"got {X.shape}")
        return np.argmax(X @ self.W + self.b, axis=1)
