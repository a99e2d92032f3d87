"""Hidden tests of affine_forward/backward and relu_forward/backward (a2_fully_connected).

Expected values come from course_lib (the oracle) on the same inputs; inputs come from fixed
seeds. Tolerance (float64): an affine layer or a ReLU computed by any correct formula differs
from the reference only by summation order, about 1e-15 relative, so |got - expected| <=
1e-9 + 1e-6 * |expected| accepts every correct implementation and no wrong one (a wrong
formula is off by O(1)). A backward test runs the student's own forward pass first, because
the cache is the student's business; it fails if that forward pass cannot run. A "does not
modify" test also checks the result, so returning garbage never earns that point.

ReLU at exactly 0: the course pins relu'(0) = 0 (dx = dout * (x > 0), CONTRACT.md). That edge
is graded by ONE test of its own (`..._gradient_at_zero_is_zero`), whose message names the
convention; every other ReLU test uses inputs at least 0.05 away from 0, so a student who
passes the gradient through at 0 (x >= 0, a valid subgradient) loses that one point only.
A backward pass may be called twice with the same cache (a network's loss may be
differentiated again): the "cache stays usable" tests catch a backward that overwrites what
its forward stored (e.g. the cached x).
"""

import numpy as np
import pytest

from autograder.checks import GradingFailure, expect_array, expect_tuple, expect_unchanged
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
    """Random inputs at least 0.05 away from 0, where every ReLU convention agrees."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(x >= 0, 1.0, -1.0) * (0.05 + np.abs(x))


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
def test_affine_backward_leaves_the_cache_usable_for_a_second_call(student):
    x, w, b = affine_inputs(2205, (3, 4, 2), 5)
    rng = np.random.default_rng(2206)
    _, cache = expect_tuple(student.affine_forward(x, w, b), 2, "affine_forward")
    reference_cache = affine_forward(x, w, b)[1]
    for call in ("first", "second"):
        dout = rng.standard_normal((3, 5))
        grads = expect_tuple(student.affine_backward(dout, cache), 3, "affine_backward")
        for name, got, want in zip(("dx", "dw", "db"), grads,
                                   affine_backward(dout, reference_cache), strict=True):
            expect_array(got, want, f"{name} of the {call} backward call with the same cache "
                         "(a backward pass must not change what its forward pass cached)",
                         rtol=RTOL, atol=ATOL)


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
def test_relu_backward_gradient_at_zero_is_zero(student):
    # The one test of the convention relu'(0) = 0; every other test avoids x == 0.
    x = relu_input(2405, (4, 10))
    x.flat[::3] = 0.0
    dout = np.ones_like(x)
    _, cache = expect_tuple(student.relu_forward(x), 2, "relu_forward")
    dx = expect_array(student.relu_backward(dout, cache), x, "dx", rtol=0, atol=np.inf)
    at_zero = x == 0
    if not np.all(dx[at_zero] == 0):
        passed = int(np.count_nonzero(dx[at_zero] != 0))
        raise GradingFailure(
            f"at x == 0 the gradient must be 0 (CONTRACT.md: relu'(0) = 0, dx = dout * (x > 0)); "
            f"your dx is non-zero at {passed} of the {int(at_zero.sum())} entries where x == 0 "
            "(a mask x >= 0 passes the gradient through there)")
    expect_array(dx, relu_backward(dout, relu_forward(x)[1]), "dx", rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_relu_backward_leaves_the_cache_usable_for_a_second_call(student):
    x = relu_input(2407, (6, 5))
    rng = np.random.default_rng(2408)
    _, cache = expect_tuple(student.relu_forward(x), 2, "relu_forward")
    for call in ("first", "second"):
        dout = rng.standard_normal(x.shape)
        dx = student.relu_backward(dout, cache)
        expect_array(dx, relu_backward(dout, relu_forward(x)[1]),
                     f"dx of the {call} backward call with the same cache (a backward pass must "
                     "not change what its forward pass cached, e.g. the cached x)",
                     rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_relu_backward_does_not_modify_dout(student):
    x = relu_input(2403, (3, 4, 5))
    dout = np.random.default_rng(2404).standard_normal(x.shape)
    _, cache = expect_tuple(student.relu_forward(x), 2, "relu_forward")
    dx = student.relu_backward(dout, cache)
    expect_unchanged({"dout": dout}, {"dout": student.last_call.after.get(0)}, "relu_backward")
    expect_array(dx, relu_backward(dout, relu_forward(x)[1]), "dx", rtol=RTOL, atol=ATOL)
