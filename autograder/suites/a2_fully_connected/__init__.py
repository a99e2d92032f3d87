"""Hidden suite of a2_fully_connected: every function of the assignment's contract.

The oracle is course_lib: every expected value is computed by the library in the trusted
parent, on inputs drawn from fixed seeds, so grading is deterministic. test_affine_relu.py and
test_losses.py grade the layers and losses; test_two_layer_net.py, test_optimizers.py,
test_batchnorm.py, test_layernorm.py, test_dropout.py, test_fc_net.py and test_training.py the
rest (TwoLayerNet and FullyConnectedNet are built in the sandbox and their methods are called
there: `student.build`). conventions.py holds the checks whose messages name another course
year's convention (keep probability, L2 without 0.5, (1, D) gamma, float128).
"""

import numpy as np

from autograder.sandbox.references import bounded
from course_lib import (
    affine_backward,
    affine_forward,
    batchnorm_backward,
    batchnorm_backward_alt,
    batchnorm_forward,
    dropout_backward,
    dropout_forward,
    layernorm_backward,
    layernorm_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
)

NOTEBOOK = "a2_fully_connected"

# Which position of a returned tuple stays in the sandbox (the cache of a forward pass).
FUNCTIONS = {
    "affine_forward": {"opaque": [1]},
    "affine_backward": {},
    "relu_forward": {"opaque": [1]},
    "relu_backward": {},
    "softmax_loss": {},
    "svm_loss": {},
    # The model objects stay in the sandbox; they are graded with the reference layers lent to
    # them (REFERENCES below), so a bug in a layer costs points only in that layer's tests.
    "TwoLayerNet": {"opaque": [-1], "uses": ["affine_forward", "affine_backward",
                                             "relu_forward", "relu_backward", "softmax_loss"]},
    "sgd": {},
    "sgd_momentum": {},
    "sgd_nesterov": {},
    "adagrad": {},
    "rmsprop": {},
    "adam": {},
    "batchnorm_forward": {"opaque": [1]},
    "batchnorm_backward": {},
    "batchnorm_backward_alt": {},
    "layernorm_forward": {"opaque": [1]},
    "layernorm_backward": {},
    "dropout_forward": {"opaque": [1]},
    "dropout_backward": {},
    "FullyConnectedNet": {"opaque": [-1], "uses": [
        "affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss",
        "batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
        "layernorm_forward", "layernorm_backward", "dropout_forward", "dropout_backward"]},
    # One or two seconds on an idle core; 30 s leave room for a slow alternative on a busy one.
    "train_digits_model": {"call_timeout": 30},
}

_REFERENCE = "it is the library's reference implementation; write your own with numpy"
FORBIDDEN = {
    "course_lib": _REFERENCE,
    "scipy.special": "implement the softmax and its log-sum-exp yourself",
}
# Helpers of the library a student may use; the training task runs the student's model and
# update rule with course_lib.Solver (which imports the schedules).
ALLOWED = ["course_lib.gradient_check", "course_lib.data", "course_lib.plotting",
           "course_lib.validation", "course_lib.solver", "course_lib.schedules"]


def warm() -> None:
    """Compile/load every oracle path the tests use (float64), once, before workers start."""
    import numpy as np

    from course_lib import (
        FullyConnectedNet,
        TwoLayerNet,
        affine_backward,
        affine_forward,
        batchnorm_backward,
        batchnorm_forward,
        layernorm_backward,
        layernorm_forward,
        load_mnist,
        relu_backward,
        relu_forward,
        softmax_loss,
        svm_loss,
    )
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 2)), rng.standard_normal((6, 4)), np.zeros(4)
    out, cache = affine_forward(x, w, b)
    affine_backward(np.ones_like(out), cache)
    out, cache = relu_forward(x)
    relu_backward(np.ones_like(out), cache)
    scores, y = rng.standard_normal((3, 4)), np.array([0, 1, 3])
    softmax_loss(scores, y)
    svm_loss(scores, y)
    x = rng.standard_normal((4, 3))
    gamma, beta = np.ones(3), np.zeros(3)
    out, cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})
    batchnorm_backward(np.ones_like(out), cache)
    out, cache = layernorm_forward(x, gamma, beta, {})
    layernorm_backward(np.ones_like(out), cache)
    labels = np.array([0, 1, 0, 1])
    TwoLayerNet(input_dim=3, hidden_dim=2, num_classes=2, seed=0).loss(x, labels)
    for normalization in (None, "batchnorm", "layernorm"):
        FullyConnectedNet([2], input_dim=3, num_classes=2, dropout=0.5, seed=0, dtype=np.float64,
                          normalization=normalization).loss(x, labels)
    load_mnist(num_validation=500, num_test=500, seed=0, flatten=True)  # reads the file once


# ----------------------------------------------------------------------------- lent references

# The model tests use a few dozen samples and layers of at most 200 units: 5e6 multiply-adds or
# array elements is far above what they need and keeps a hostile model from making the grader
# work for long.
MAX_OPERATIONS = 5e6


def _size(value) -> float:
    try:
        return float(np.prod([float(d) for d in np.shape(value)]))
    except (TypeError, ValueError):
        return 0.0


def _elements(*args, **kwargs) -> float:
    """Cost of an elementwise layer: every array argument's size, and a cache's arrays."""
    total = 0.0
    for value in (*args, *kwargs.values()):
        parts = value if type(value) is tuple else (value,)
        total += sum(_size(part) for part in parts if isinstance(part, np.ndarray))
    return total


def _affine_operations(x, w, b=None) -> float:
    return _size(x) / max(float(np.shape(w)[0]), 1.0) * _size(w) + _size(x)


def _affine_backward_operations(dout, cache) -> float:
    return 2 * _elements(*cache) * max(float(np.shape(dout)[-1]), 1.0) if type(cache) is tuple \
        else 0.0


REFERENCES = {
    "affine_forward": bounded("affine_forward", affine_forward, _affine_operations, MAX_OPERATIONS),
    "affine_backward": bounded("affine_backward", affine_backward,
                               _affine_backward_operations, MAX_OPERATIONS),
    **{name: bounded(name, function, _elements, MAX_OPERATIONS) for name, function in {
        "relu_forward": relu_forward, "relu_backward": relu_backward,
        "softmax_loss": softmax_loss, "batchnorm_forward": batchnorm_forward,
        "batchnorm_backward": batchnorm_backward,
        "batchnorm_backward_alt": batchnorm_backward_alt,
        "layernorm_forward": layernorm_forward, "layernorm_backward": layernorm_backward,
        "dropout_forward": dropout_forward, "dropout_backward": dropout_backward}.items()},
}
