"""Hidden tests of conv_forward_naive and conv_backward_naive (a3_convolutional_nets).

Expected values come from course_lib.conv_forward / conv_backward (the oracle) on the same
inputs; inputs come from fixed seeds. Every case keeps (H + 2*pad - HH) and (W + 2*pad - WW)
divisible by the stride, so the windows tile the padded input exactly.

Tolerance (float64): a convolution computed by any correct loop order, im2col or einsum
differs from the reference only by summation order, about 1e-15 relative to the sum of
|terms| (at most C * HH * WW = 60 terms of size ~1 here), so |got - expected| <= 1e-9 + 1e-6 *
|expected| accepts every correct implementation; a wrong formula (flipped kernel, ignored
stride or pad, missing bias) is off by O(0.1) or more. A backward test runs the student's own
forward pass first, because the cache is the student's business.
"""

import numpy as np
import pytest

from autograder.checks import expect_array, expect_tuple, expect_unchanged
from autograder.suites.a3_convolutional_nets.conventions import expect_param_unchanged
from course_lib import conv_backward, conv_forward

RTOL, ATOL = 1e-6, 1e-9

# name: (N, C, H, W, F, HH, WW, stride, pad)
CASES = {
    "stride 1, pad 1, 3x3 filters": (2, 3, 5, 5, 2, 3, 3, 1, 1),
    "stride 2, pad 1": (2, 3, 7, 7, 3, 3, 3, 2, 1),
    "a 2x4 filter on a 5x7 input, no pad": (2, 2, 5, 7, 3, 2, 4, 1, 0),
    "stride 3, pad 2, a 6x9 input": (2, 2, 6, 9, 2, 4, 4, 3, 2),
    "one image, one channel, one filter": (1, 1, 4, 6, 1, 3, 3, 1, 0),
    "a filter as large as the padded input (1x1 output)": (2, 2, 3, 4, 2, 5, 6, 1, 1),
    "stride 2, no pad, 2x2 filters": (3, 2, 8, 6, 2, 2, 2, 2, 0),
    "stride 1, pad 2, 5x5 filters (overlapping windows)": (2, 2, 4, 5, 3, 5, 5, 1, 2),
    "1x1 filters (a per-pixel mix of channels)": (2, 3, 4, 5, 4, 1, 1, 1, 0),
    "1x3 filters, stride 2, pad 1": (2, 2, 5, 7, 3, 1, 3, 2, 1),
}
ONE_PIXEL_WIDE = ("1x1 filters (a per-pixel mix of channels)", "1x3 filters, stride 2, pad 1")


def conv_inputs(seed: int, case: str):
    N, C, H, W, F, HH, WW, stride, pad = CASES[case]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((F, C, HH, WW)) / np.sqrt(C * HH * WW)
    b = rng.standard_normal(F)
    return x, w, b, {"stride": stride, "pad": pad}


# ----------------------------------------------------------------------------- forward

def _check_forward(student, seed, case):
    x, w, b, conv_param = conv_inputs(seed, case)
    out, _ = expect_tuple(student.conv_forward_naive(x, w, b, dict(conv_param)), 2,
                          "conv_forward_naive")
    expect_array(out, conv_forward(x, w, b, conv_param)[0], f"out ({case})", rtol=RTOL,
                 atol=ATOL)


@pytest.mark.points(1)
def test_conv_forward_naive_with_stride_1_and_pad_1(student):
    _check_forward(student, 3101, "stride 1, pad 1, 3x3 filters")


@pytest.mark.points(1)
def test_conv_forward_naive_with_stride_2_and_pad_1(student):
    _check_forward(student, 3102, "stride 2, pad 1")


@pytest.mark.points(1)
def test_conv_forward_naive_with_a_non_square_filter_and_input(student):
    _check_forward(student, 3103, "a 2x4 filter on a 5x7 input, no pad")


@pytest.mark.points(1)
def test_conv_forward_naive_with_stride_3_and_pad_2(student):
    _check_forward(student, 3104, "stride 3, pad 2, a 6x9 input")


@pytest.mark.points(1)
def test_conv_forward_naive_with_one_image_one_channel_one_filter(student):
    _check_forward(student, 3105, "one image, one channel, one filter")


@pytest.mark.points(1)
def test_conv_forward_naive_with_a_filter_covering_the_padded_input(student):
    _check_forward(student, 3106, "a filter as large as the padded input (1x1 output)")


@pytest.mark.points(1)
def test_conv_forward_naive_with_stride_2_and_no_pad(student):
    _check_forward(student, 3107, "stride 2, no pad, 2x2 filters")


@pytest.mark.points(1)
def test_conv_forward_naive_with_one_pixel_wide_filters(student):
    for seed, case in enumerate(ONE_PIXEL_WIDE, start=3109):
        _check_forward(student, seed, case)


@pytest.mark.points(1)
def test_conv_forward_naive_does_not_modify_its_inputs(student):
    x, w, b, conv_param = conv_inputs(3108, "stride 2, pad 1")
    student.conv_forward_naive(x, w, b, dict(conv_param))
    after = student.last_call.after
    expect_unchanged({"x": x, "w": w, "b": b}, {"x": after.get(0), "w": after.get(1),
                                                "b": after.get(2)}, "conv_forward_naive")
    expect_param_unchanged(conv_param, after.get(3), "conv_forward_naive", "conv_param")


# ----------------------------------------------------------------------------- backward

def _check_backward(student, seed, case, calls=1):
    x, w, b, conv_param = conv_inputs(seed, case)
    _, cache = expect_tuple(student.conv_forward_naive(x, w, b, dict(conv_param)), 2,
                            "conv_forward_naive")
    reference_out, reference_cache = conv_forward(x, w, b, conv_param)
    rng = np.random.default_rng(seed + 50)
    for call in range(calls):
        dout = rng.standard_normal(reference_out.shape)
        grads = expect_tuple(student.conv_backward_naive(dout, cache), 3, "conv_backward_naive")
        expected = conv_backward(dout, reference_cache)
        when = (", second backward call with the same cache: a backward pass must not change "
                "what its forward pass cached") if call else ""
        for name, got, want in zip(("dx", "dw", "db"), grads, expected, strict=True):
            expect_array(got, want, f"{name} ({case}{when})", rtol=RTOL, atol=ATOL)


@pytest.mark.points(2)
def test_conv_backward_naive_with_stride_1_and_pad_1(student):
    _check_backward(student, 3201, "stride 1, pad 1, 3x3 filters")


@pytest.mark.points(1)
def test_conv_backward_naive_with_stride_2_and_pad_1(student):
    _check_backward(student, 3202, "stride 2, pad 1")


@pytest.mark.points(1)
def test_conv_backward_naive_with_a_non_square_filter_and_input(student):
    _check_backward(student, 3203, "a 2x4 filter on a 5x7 input, no pad")


@pytest.mark.points(1)
def test_conv_backward_naive_with_stride_3_and_pad_2(student):
    _check_backward(student, 3204, "stride 3, pad 2, a 6x9 input")


@pytest.mark.points(1)
def test_conv_backward_naive_with_one_image_one_channel_one_filter(student):
    _check_backward(student, 3205, "one image, one channel, one filter")


@pytest.mark.points(1)
def test_conv_backward_naive_adds_up_overlapping_windows(student):
    _check_backward(student, 3206, "stride 1, pad 2, 5x5 filters (overlapping windows)")


@pytest.mark.points(1)
def test_conv_backward_naive_with_one_pixel_wide_filters(student):
    for seed, case in enumerate(ONE_PIXEL_WIDE, start=3209):
        _check_backward(student, seed, case)


@pytest.mark.points(1)
def test_conv_backward_naive_leaves_the_cache_usable_for_a_second_call(student):
    _check_backward(student, 3211, "stride 2, pad 1", calls=2)


@pytest.mark.points(1)
def test_conv_backward_naive_does_not_modify_dout(student):
    x, w, b, conv_param = conv_inputs(3207, "stride 2, pad 1")
    _, cache = expect_tuple(student.conv_forward_naive(x, w, b, dict(conv_param)), 2,
                            "conv_forward_naive")
    dout = np.random.default_rng(3208).standard_normal(conv_forward(x, w, b, conv_param)[0].shape)
    student.conv_backward_naive(dout, cache)
    expect_unchanged({"dout": dout}, {"dout": student.last_call.after.get(0)},
                     "conv_backward_naive")
