"""Hidden suite of a1_linear_classifiers: k-NN distances and votes, SVM and softmax losses of a
linear classifier (loop and vectorised versions), and the training task on MNIST.

The oracle is course_lib: every expected value is computed by the library in the trusted
parent (`compute_distances`, `predict_labels`, `svm_loss_vectorized`,
`softmax_loss_vectorized`), on inputs drawn from fixed seeds, so grading is deterministic.
The loop versions (`_two_loops`, `_one_loop`, `_naive`) are graded on their values only,
with the same cases as the vectorised ones; nobody checks how many loops a function has.
"""

NOTEBOOK = "a1_linear_classifiers"

# Every a1 function returns plain values (arrays, numbers, tuples): nothing stays in the sandbox.
FUNCTIONS = {
    "compute_distances_two_loops": {},
    "compute_distances_one_loop": {},
    "compute_distances_no_loops": {},
    "predict_labels": {},
    "svm_loss_naive": {},
    "svm_loss_vectorized": {},
    "softmax_loss_naive": {},
    "softmax_loss_vectorized": {},
    "train_linear_classifier": {},
}

_REFERENCE = "it is the library's reference implementation; write your own with numpy"
FORBIDDEN = {
    "course_lib": _REFERENCE,
    "scipy.spatial": "compute the distances yourself with numpy (no cdist)",
    "scipy.special": "implement the softmax and its log-sum-exp yourself",
    "sklearn": "scikit-learn implements k-NN and linear classifiers; write them with numpy",
}
# Helpers of the library a student may use.
ALLOWED = ["course_lib.gradient_check", "course_lib.data", "course_lib.plotting",
           "course_lib.validation"]


def warm() -> None:
    """Load every oracle path the tests use (float64) once, before workers start."""
    import numpy as np

    from course_lib import (
        compute_distances,
        predict_labels,
        softmax_loss_vectorized,
        svm_loss_vectorized,
    )
    rng = np.random.default_rng(0)
    X, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    predict_labels(compute_distances(X, X), np.array([0, 1, 1, 0]), k=1)
    y = np.array([0, 1, 1, 0])
    svm_loss_vectorized(W, X, y, 0.1)
    softmax_loss_vectorized(W, X, y, 0.1)
