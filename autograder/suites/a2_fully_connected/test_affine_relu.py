"""Hidden tests of affine_forward/backward and relu_forward/backward (a2_fully_connected).

Expected values come from course_lib (the oracle) on the same inputs; inputs come from fixed
seeds. Tolerance (float64): an affine layer or a ReLU computed by any correct formula differs
from the reference only by summation order, about 1e-15 relative, so |got - expected| <=
1e-9 + 1e-6 * |expected| accepts every correct implementation and no wrong one (a wrong
formula is off by O(1)). A backward test runs the student's own forward pass first, because
the cache is the student's business; it fails if that forward pass cannot run. A "does not
modify" test also checks the result, so returning garbage never earns that point.
"""

import numpy as np
import pytest

from autograder.checks import expect_array, expect_tuple, expect_unchanged
from course_lib import affine_backward, affine_forward, relu_backward, relu_forward

RTOL, ATOL = 1e-6, 1e-9


def affine_inputs(seed: int, x_shape: tuple, m: int):
    rng = np.random.default_rng(seed)
    d = int(np.prod(x_shape[1:]))
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal((d, m)) / np.sqrt(d)
    b = rng.standard_normal(m)
    return x, w, b


def relu_input(seed: int, shape: tuple) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal(shape)
    x.flat[::5] = 0.0      # exact zeros: the gradient there is 0 (dx = dout * (x > 0))
    return x


# ----------------------------------------------------------------------------- affine_forward

@pytest.mark.points(1)
def test_affine_forward_matches_reference_on_2d_input(student):
    x, w, b = affine_inputs(2101, (6, 5), 4)
    out, _ = expect_tuple(student.affine_forward(x, w, b), 2, "affine_forward")
    expect_array(out, affine_forward(x, w, b)[0], "out", rtol=RTOL, atol=ATOL)


@pytest.mark.points(2)
def test_affine_forward_flattens_4d_input(student):
    x, w, b = affine_inputs(2102, (3, 2, 4, 5), 7)
    out, _ = expect_tuple(student.affine_forward(x, w, b), 2, "affine_forward")
    expect_array(out, affine_forward(x, w, b)[0], "out", rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_affine_forward_does_not_modify_its_inputs(student):
    x, w, b = affine_inputs(2103, (4, 3, 5), 6)
    out, _ = expect_tuple(student.affine_forward(x, w, b), 2, "affine_forward")
    after = student.last_call.after
    expect_array(out, affine_forward(x, w, b)[0], "out", rtol=RTOL, atol=ATOL)
    expect_unchanged({"x": x, "w": w, "b": b}, {"x": after.get(0), "w": after.get(1),
                                                "b": after.get(2)}, "affine_forward")


# ----------------------------------------------------------------------------- affine_backward

def _check_affine_backward(student, seed, x_shape, m):
    x, w, b = affine_inputs(seed, x_shape, m)
    dout = np.random.default_rng(seed + 1).standard_normal((x_shape[0], m))
    _, cache = expect_tuple(student.affine_forward(x, w, b), 2, "affine_forward")
    grads = expect_tuple(student.affine_backward(dout, cache), 3, "affine_backward")
    expected = affine_backward(dout, affine_forward(x, w, b)[1])
    for name, got, want in zip(("dx", "dw", "db"), grads, expected, strict=True):
        expect_array(got, want, name, rtol=RTOL, atol=ATOL)


@pytest.mark.points(2)
def test_affine_backward_matches_reference_on_2d_input(student):
    _check_affine_backward(student, 2201, (5, 6), 3)


@pytest.mark.points(2)
def test_affine_backward_returns_dx_with_the_shape_of_4d_x(student):
    _check_affine_backward(student, 2202, (2, 3, 2, 4), 5)


@pytest.mark.points(1)
def test_affine_backward_does_not_modify_dout(student):
    x, w, b = affine_inputs(2203, (4, 5), 3)
    dout = np.random.default_rng(2204).standard_normal((4, 3))
    _, cache = expect_tuple(student.affine_forward(x, w, b), 2, "affine_forward")
    grads = expect_tuple(student.affine_backward(dout, cache), 3, "affine_backward")
    expect_unchanged({"dout": dout}, {"dout": student.last_call.after.get(0)},
                     "affine_backward")
    expect_array(grads[0], affine_backward(dout, affine_forward(x, w, b)[1])[0], "dx",
                 rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- relu

@pytest.mark.points(1)
def test_relu_forward_matches_reference(student):
    x = relu_input(2301, (7, 9))
    out, _ = expect_tuple(student.relu_forward(x), 2, "relu_forward")
    expect_array(out, relu_forward(x)[0], "out", rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_relu_forward_keeps_the_shape_of_4d_input(student):
    x = relu_input(2302, (2, 3, 4, 5))
    out, _ = expect_tuple(student.relu_forward(x), 2, "relu_forward")
    expect_array(out, relu_forward(x)[0], "out", rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_relu_forward_does_not_modify_its_input(student):
    x = relu_input(2303, (6, 6))
    out, _ = expect_tuple(student.relu_forward(x), 2, "relu_forward")
    expect_unchanged({"x": x}, {"x": student.last_call.after.get(0)}, "relu_forward")
    expect_array(out, relu_forward(x)[0], "out", rtol=RTOL, atol=ATOL)


@pytest.mark.points(2)
def test_relu_backward_matches_reference(student):
    x = relu_input(2401, (5, 8))
    dout = np.random.default_rng(2402).standard_normal(x.shape)
    _, cache = expect_tuple(student.relu_forward(x), 2, "relu_forward")
    dx = student.relu_backward(dout, cache)
    expect_array(dx, relu_backward(dout, relu_forward(x)[1]), "dx", rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_relu_backward_does_not_modify_dout(student):
    x = relu_input(2403, (3, 4, 5))
    dout = np.random.default_rng(2404).standard_normal(x.shape)
    _, cache = expect_tuple(student.relu_forward(x), 2, "relu_forward")
    dx = student.relu_backward(dout, cache)
    expect_unchanged({"dout": dout}, {"dout": student.last_call.after.get(0)}, "relu_backward")
    expect_array(dx, relu_backward(dout, relu_forward(x)[1]), "dx", rtol=RTOL, atol=ATOL)
