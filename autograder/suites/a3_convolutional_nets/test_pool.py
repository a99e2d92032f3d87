"""Hidden tests of max_pool_forward_naive and max_pool_backward_naive (a3_convolutional_nets).

Expected values come from course_lib.max_pool_forward / max_pool_backward (the oracle);
inputs come from fixed seeds and keep (H - pool_height) and (W - pool_width) divisible by
the stride. The contract's tie rule: a window's gradient goes to its FIRST maximum in
row-major order (as np.argmax). Random continuous inputs have no ties, so the tie rule is
graded by ONE test of its own, on inputs drawn from {0, 1, 2} where most windows hold several
maxima; its message names the rule, and an implementation with another tie rule loses that
point only. A backward pass may be called twice with the same cache, and pool_param is read,
never changed (CONTRACT.md).

Tolerance (float64): the forward output is an exact copy of input values and the backward
output a sum of at most ph * pw = 9 dout values, so a correct implementation agrees to
rounding (1e-15); |got - expected| <= 1e-9 + 1e-6 * |expected| is used as elsewhere, and
any wrong routing is off by a whole dout value (O(1)).
"""

import numpy as np
import pytest

from autograder.checks import expect_array, expect_tuple, expect_unchanged
from autograder.suites.a3_convolutional_nets.conventions import expect_param_unchanged
from course_lib import max_pool_backward, max_pool_forward

RTOL, ATOL = 1e-6, 1e-9

# name: (N, C, H, W, pool_height, pool_width, stride)
CASES = {
    "2x2 windows, stride 2": (2, 3, 4, 6, 2, 2, 2),
    "2x3 windows, stride 1 (overlapping) on a 5x6 input": (2, 2, 5, 6, 2, 3, 1),
    "3x3 windows, stride 2 on a 7x5 input": (2, 2, 7, 5, 3, 3, 2),
    "one image, one channel, one window covering it": (1, 1, 3, 5, 3, 5, 1),
    "2x3 windows, stride 2 on a 4x7 input": (2, 2, 4, 7, 2, 3, 2),
}


def pool_input(seed: int, case: str, kind: str = "normal"):
    N, C, H, W, ph, pw, stride = CASES[case]
    rng = np.random.default_rng(seed)
    if kind == "ties":
        x = rng.integers(0, 3, size=(N, C, H, W)).astype(np.float64)
    elif kind == "negative":
        x = -1.0 - rng.random((N, C, H, W))
    else:
        x = rng.standard_normal((N, C, H, W))
    return x, {"pool_height": ph, "pool_width": pw, "stride": stride}


# ----------------------------------------------------------------------------- forward

def _check_forward(student, seed, case, kind="normal", label=None):
    x, pool_param = pool_input(seed, case, kind)
    out, _ = expect_tuple(student.max_pool_forward_naive(x, dict(pool_param)), 2,
                          "max_pool_forward_naive")
    expect_array(out, max_pool_forward(x, pool_param)[0], f"out ({label or case})",
                 rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_max_pool_forward_naive_with_2x2_windows_and_stride_2(student):
    _check_forward(student, 3301, "2x2 windows, stride 2")


@pytest.mark.points(1)
def test_max_pool_forward_naive_with_overlapping_non_square_windows(student):
    _check_forward(student, 3302, "2x3 windows, stride 1 (overlapping) on a 5x6 input")


@pytest.mark.points(1)
def test_max_pool_forward_naive_with_3x3_windows_and_stride_2(student):
    _check_forward(student, 3303, "3x3 windows, stride 2 on a 7x5 input")


@pytest.mark.points(1)
def test_max_pool_forward_naive_with_one_window_covering_the_image(student):
    _check_forward(student, 3304, "one image, one channel, one window covering it")


@pytest.mark.points(1)
def test_max_pool_forward_naive_with_all_negative_inputs(student):
    _check_forward(student, 3305, "2x2 windows, stride 2", kind="negative",
                   label="all inputs negative, 2x2 windows, stride 2")


@pytest.mark.points(1)
def test_max_pool_forward_naive_does_not_modify_its_input(student):
    x, pool_param = pool_input(3306, "2x3 windows, stride 1 (overlapping) on a 5x6 input")
    student.max_pool_forward_naive(x, dict(pool_param))
    after = student.last_call.after
    expect_unchanged({"x": x}, {"x": after.get(0)}, "max_pool_forward_naive")
    expect_param_unchanged(pool_param, after.get(1), "max_pool_forward_naive", "pool_param")


# ----------------------------------------------------------------------------- backward

def _check_backward(student, seed, case, kind="normal", label=None, calls=1):
    x, pool_param = pool_input(seed, case, kind)
    _, cache = expect_tuple(student.max_pool_forward_naive(x, dict(pool_param)), 2,
                            "max_pool_forward_naive")
    reference_out, reference_cache = max_pool_forward(x, pool_param)
    rng = np.random.default_rng(seed + 50)
    for call in range(calls):
        dout = rng.standard_normal(reference_out.shape)
        dx = student.max_pool_backward_naive(dout, cache)
        when = (", second backward call with the same cache: a backward pass must not change "
                "what its forward pass cached") if call else ""
        expect_array(dx, max_pool_backward(dout, reference_cache), f"dx ({label or case}{when})",
                     rtol=RTOL, atol=ATOL)


@pytest.mark.points(2)
def test_max_pool_backward_naive_with_2x2_windows_and_stride_2(student):
    _check_backward(student, 3401, "2x2 windows, stride 2")


@pytest.mark.points(1)
def test_max_pool_backward_naive_adds_up_overlapping_windows(student):
    _check_backward(student, 3402, "2x3 windows, stride 1 (overlapping) on a 5x6 input")


@pytest.mark.points(1)
def test_max_pool_backward_naive_with_non_square_windows_and_stride_2(student):
    _check_backward(student, 3403, "2x3 windows, stride 2 on a 4x7 input")


@pytest.mark.points(1)
def test_max_pool_backward_naive_sends_ties_to_the_first_maximum(student):
    rule = ("tied maxima: a window's gradient goes to its FIRST maximum in row-major order, the "
            "one np.argmax picks (CONTRACT.md), not to the last one or to every tied one")
    _check_backward(student, 3404, "2x2 windows, stride 2", kind="ties",
                    label=f"{rule}; 2x2 windows, stride 2")
    _check_backward(student, 3405, "3x3 windows, stride 2 on a 7x5 input", kind="ties",
                    label=f"{rule}; overlapping 3x3 windows, stride 2")


@pytest.mark.points(1)
def test_max_pool_backward_naive_leaves_the_cache_usable_for_a_second_call(student):
    _check_backward(student, 3408, "2x3 windows, stride 1 (overlapping) on a 5x6 input",
                    calls=2)


@pytest.mark.points(1)
def test_max_pool_backward_naive_does_not_modify_dout(student):
    x, pool_param = pool_input(3406, "2x2 windows, stride 2")
    _, cache = expect_tuple(student.max_pool_forward_naive(x, dict(pool_param)), 2,
                            "max_pool_forward_naive")
    dout = np.random.default_rng(3407).standard_normal(max_pool_forward(x, pool_param)[0].shape)
    student.max_pool_backward_naive(dout, cache)
    expect_unchanged({"dout": dout}, {"dout": student.last_call.after.get(0)},
                     "max_pool_backward_naive")
