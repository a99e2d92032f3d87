"""Hidden suite of a3_convolutional_nets: convolution, max pooling, spatial batch and group
normalisation, ThreeLayerConvNet and the training task on the MNIST digits.

The oracle is course_lib (`conv_forward`, `max_pool_forward`, `spatial_batchnorm_forward`,
`spatial_groupnorm_forward`, their backward passes, `ThreeLayerConvNet`): every expected
value is computed by the library in the trusted parent, on inputs drawn from fixed seeds. The
inputs are small (at most 4 images, 6 channels, 9 x 9 pixels), so a four-loop student
convolution answers each call in milliseconds; a correct submission grades in about 3 s, most
of it the training task.

The students' ThreeLayerConvNet may use course_lib's dense layers, ReLU and softmax loss
(written in a2) and the Solver; the layers of this assignment (conv, pooling, the spatial
normalisations, the composite conv layers and the library's models) are forbidden.
"""

import numpy as np

from autograder.sandbox.references import bounded
from course_lib import conv_backward, conv_forward, max_pool_backward, max_pool_forward

NOTEBOOK = "a3_convolutional_nets"

# Which position of a returned tuple stays in the sandbox: the cache of a forward pass, or
# (-1) the whole value: a ThreeLayerConvNet instance is used through its methods.
FUNCTIONS = {
    "conv_forward_naive": {"opaque": [1]},
    "conv_backward_naive": {},
    "max_pool_forward_naive": {"opaque": [1]},
    "max_pool_backward_naive": {},
    "spatial_batchnorm_forward": {"opaque": [1]},
    "spatial_batchnorm_backward": {},
    "spatial_groupnorm_forward": {"opaque": [1]},
    "spatial_groupnorm_backward": {},
    # The model is graded with the reference convolution and pooling lent to it (see
    # REFERENCES), so a bug in the student's layers costs points only in the layers' tests.
    "ThreeLayerConvNet": {"opaque": [-1], "uses": ["conv_forward_naive", "conv_backward_naive",
                                                   "max_pool_forward_naive",
                                                   "max_pool_backward_naive"]},
    # Training a ConvNet with the student's own convolution on 4,000 28x28 digits takes the
    # notebook's solution about 10 s on an idle core; 90 s leave room for a busy machine.
    "train_digits_convnet": {"call_timeout": 90},
}

_REFERENCE = "it is the library's reference implementation; write your own with numpy"
FORBIDDEN = {
    "course_lib": _REFERENCE,
    "scipy.signal": "scipy.signal convolves for you; write the loops yourself",
    "scipy.ndimage": "scipy.ndimage filters and pools for you; write the loops yourself",
    "sklearn": "the grader passes the data to your functions; scikit-learn (and so "
               "course_lib.load_digits / load_sample_images) is not available while grading",
}
# Helpers of the library a student may use: the a2 layers and loss the model is built from,
# the Solver and its optimizers, gradient checking, data and plots; and the kernels those
# layers and optimizers run on (threads over the batch, ReLU's backward, Adam's update; not the
# conv and pooling kernels).
ALLOWED = ["course_lib.gradient_check", "course_lib.data", "course_lib.plotting",
           "course_lib.validation", "course_lib.layers.affine", "course_lib.layers.activations",
           "course_lib.losses", "course_lib.solver", "course_lib.optim", "course_lib.schedules",
           "course_lib.kernels.threads", "course_lib.kernels.elementwise",
           "course_lib.kernels.optim"]


def warm() -> None:
    """Compile/load every oracle path the tests use (float64), once, before workers start."""
    import numpy as np

    from course_lib import (
        ThreeLayerConvNet,
        conv_backward,
        conv_forward,
        load_mnist,
        max_pool_backward,
        max_pool_forward,
        spatial_batchnorm_backward,
        spatial_batchnorm_forward,
        spatial_groupnorm_backward,
        spatial_groupnorm_forward,
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 4, 4))
    out, cache = conv_forward(x, rng.standard_normal((2, 2, 3, 3)), np.zeros(2),
                              {"stride": 1, "pad": 1})
    conv_backward(np.ones_like(out), cache)
    out, cache = max_pool_forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    max_pool_backward(np.ones_like(out), cache)
    gamma, beta = np.ones(2), np.zeros(2)
    for mode in ("train", "test"):
        out, cache = spatial_batchnorm_forward(x, gamma, beta, {"mode": mode})
        spatial_batchnorm_backward(np.ones_like(out), cache)
    out, cache = spatial_groupnorm_forward(x, gamma, beta, 2, {})
    spatial_groupnorm_backward(np.ones_like(out), cache)
    model = ThreeLayerConvNet(input_dim=(1, 4, 4), num_filters=2, filter_size=3, hidden_dim=3,
                              num_classes=2, dtype=np.float64, seed=0)
    model.loss(x[:, :1], np.array([0, 1]))
    load_mnist(num_validation=500, num_test=500, seed=0)


# ----------------------------------------------------------------------------- lent references

# The model tests use inputs of at most 4 x 2 x 7 x 9 with 3 filters; 5e7 multiply-adds is far
# above what they need and keeps a hostile model from making the grader work for long.
MAX_OPERATIONS = 5e7


def _window_operations(x, window: tuple[int, int], channels: int, maps: int, pad: int,
                       stride: int) -> float:
    """Multiply-adds of sliding a window over x: N * maps * H' * W' * channels * HH * WW."""
    N, _, H, W = (int(d) for d in x.shape)
    HH, WW = window
    Ho, Wo = (H + 2 * pad - HH) // stride + 1, (W + 2 * pad - WW) // stride + 1
    return float(N) * maps * max(Ho, 0) * max(Wo, 0) * channels * HH * WW


def _conv_operations(x, w, stride, pad) -> float:
    F, C, HH, WW = (int(d) for d in w.shape)
    return _window_operations(x, (HH, WW), C, F, int(pad), int(stride))


def _conv_forward_operations(x, w, b, conv_param) -> float:
    return _conv_operations(x, w, conv_param["stride"], conv_param["pad"])


def _conv_backward_operations(dout, cache) -> float:
    # The cache normally comes from the lent forward pass, kept here; a forged one is bounded.
    _, x, w, stride, pad = cache
    return _conv_operations(x, w, stride, pad)


def _pool_forward_operations(x, pool_param) -> float:
    window = (int(pool_param["pool_height"]), int(pool_param["pool_width"]))
    return _window_operations(x, window, 1, int(x.shape[1]), 0, int(pool_param["stride"]))


def _pool_backward_operations(dout, cache) -> float:
    # The cache holds the input's shape, from which dx is allocated (a forged cache).
    return float(np.prod([float(d) for d in cache[1]]))


REFERENCES = {
    "conv_forward_naive": bounded("conv_forward_naive", conv_forward,
                                  _conv_forward_operations, MAX_OPERATIONS),
    "conv_backward_naive": bounded("conv_backward_naive", conv_backward,
                                   _conv_backward_operations, MAX_OPERATIONS),
    "max_pool_forward_naive": bounded("max_pool_forward_naive", max_pool_forward,
                                      _pool_forward_operations, MAX_OPERATIONS),
    "max_pool_backward_naive": bounded("max_pool_backward_naive", max_pool_backward,
                                       _pool_backward_operations, MAX_OPERATIONS),
}
