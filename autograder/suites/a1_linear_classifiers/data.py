"""The MNIST digits as the a1 notebook prepares them for a linear classifier (keep the two in step;
tests/test_assignment_a1.py checks that the notebook's setup cell gives the same arrays)."""

import numpy as np

from course_lib import load_mnist


def linear_classifier_data() -> dict:
    """The training mean subtracted, a column of ones appended (the bias trick).

    Returns a dict: X_train (4000, 785), y_train, X_val (500, 785), y_val, X_test (500, 785),
    y_test. The student's function gets the first four; X_test/y_test are held out.
    """
    digits = load_mnist(num_validation=500, num_test=500, seed=0, flatten=True)
    mean = digits["X_train"].mean(axis=0)

    def prepare(X):
        return np.hstack([X - mean, np.ones((len(X), 1))])

    return {"X_train": prepare(digits["X_train"]), "y_train": digits["y_train"],
            "X_val": prepare(digits["X_val"]), "y_val": digits["y_val"],
            "X_test": prepare(digits["X_test"]), "y_test": digits["y_test"]}
