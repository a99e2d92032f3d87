"""course_lib.conv_forward / conv_backward against naive loops, numerical gradients, CS231n's
published values and (when installed) PyTorch."""

import numpy as np
import pytest
from naive_conv_pool import conv_backward_naive, conv_forward_naive

from course_lib import (
    conv_backward,
    conv_forward,
    eval_numerical_gradient_array,
    max_pool_forward,
    rel_error,
)
from course_lib.validation import conv_output_size

# float32 unit roundoff: a float32 sum of n products differs from the exact one by at most
# about n * U32 * sum(|products|) (Higham, "Accuracy and Stability of Numerical Algorithms",
# eq. 3.5), whatever order BLAS adds them in.
U32 = float(np.finfo(np.float32).eps) / 2

# (N, C, H, W, F, HH, WW, stride, pad)
SHAPES = [
    pytest.param(2, 3, 5, 5, 4, 3, 3, 1, 1, id="3x3-same"),
    pytest.param(1, 1, 7, 9, 2, 3, 5, 1, 2, id="batch1-one-channel-nonsquare-kernel-H!=W"),
    pytest.param(3, 2, 8, 6, 3, 2, 2, 2, 0, id="2x2-stride2-no-pad"),
    pytest.param(2, 3, 9, 9, 2, 3, 3, 3, 0, id="stride3-no-pad"),
    pytest.param(2, 4, 7, 7, 3, 1, 1, 1, 0, id="1x1"),
    pytest.param(2, 3, 7, 7, 2, 1, 1, 2, 1, id="1x1-stride2-pad1"),
    pytest.param(2, 2, 6, 6, 2, 3, 3, 1, 0, id="valid-stride1"),
    pytest.param(2, 2, 11, 7, 2, 5, 3, 2, 2, id="5x3-stride2-pad2"),
    pytest.param(2, 3, 5, 5, 4, 3, 3, 2, 1, id="stride2-pad1"),
    pytest.param(2, 2, 5, 8, 3, 3, 3, 3, 2, id="stride3-pad2"),
    pytest.param(2, 2, 6, 6, 2, 3, 3, 3, 3, id="pad-larger-than-needed"),
    pytest.param(2, 3, 4, 6, 2, 2, 3, 1, 1, id="same-width-not-same-height"),
    pytest.param(1, 2, 3, 10, 2, 3, 7, 1, 3, id="mostly-padding-rows"),
    pytest.param(1, 2, 4, 4, 2, 4, 4, 1, 0, id="kernel-as-large-as-input"),
    pytest.param(1, 1, 1, 1, 1, 3, 3, 1, 1, id="single-pixel"),
    # Strides that do not divide (H + 2*pad - HH): the output size is floored.
    pytest.param(2, 3, 32, 32, 4, 3, 3, 2, 1, id="3x3-stride2-pad1-32x32-gives-16x16"),
    pytest.param(1, 2, 28, 28, 3, 5, 5, 3, 0, id="5x5-stride3-28x28-gives-8x8"),
    pytest.param(2, 2, 7, 6, 2, 3, 2, 2, 0, id="floored-height-and-width"),
    pytest.param(1, 2, 6, 6, 2, 3, 3, 4, 1, id="stride-larger-than-kernel"),
]


def _random_problem(rng, N, C, H, W, F, HH, WW, dtype=np.float64):
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, HH, WW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b


@pytest.mark.parametrize("N, C, H, W, F, HH, WW, stride, pad", SHAPES)
def test_conv_forward_and_backward_match_naive_loops_in_float64(rng, N, C, H, W, F, HH, WW,
                                                                stride, pad):
    conv_param = {"stride": stride, "pad": pad}
    x, w, b = _random_problem(rng, N, C, H, W, F, HH, WW)
    out, cache = conv_forward(x, w, b, conv_param)
    expected = conv_forward_naive(x, w, b, conv_param)
    assert out.shape == expected.shape
    # Same sums in a different order: float64 rounding differences only (~1e-15 relative).
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)

    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    dx_ref, dw_ref, db_ref = conv_backward_naive(dout, x, w, conv_param)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dw, dw_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, db_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("N, C, H, W, F, HH, WW, stride, pad", SHAPES[:6])
def test_conv_in_float32_is_within_float32_rounding_of_the_exact_result(rng, N, C, H, W, F, HH,
                                                                       WW, stride, pad):
    conv_param = {"stride": stride, "pad": pad}
    x, w, b = _random_problem(rng, N, C, H, W, F, HH, WW, np.float32)
    dout = rng.standard_normal((N, F, 1 + (H + 2 * pad - HH) // stride,
                                1 + (W + 2 * pad - WW) // stride)).astype(np.float32)
    out, cache = conv_forward(x, w, b, conv_param)
    dx, dw, db = conv_backward(dout, cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == np.float32

    x64, w64, b64, d64 = (a.astype(np.float64) for a in (x, w, b, dout))  # exact copies
    exact = conv_forward_naive(x64, w64, b64, conv_param)
    magnitude = conv_forward_naive(abs(x64), abs(w64), abs(b64), conv_param)
    terms = C * HH * WW + 1  # products plus the bias
    assert np.all(abs(out - exact) <= 2 * terms * U32 * magnitude)

    exact_grads = conv_backward_naive(d64, x64, w64, conv_param)
    magnitudes = conv_backward_naive(abs(d64), abs(x64), abs(w64), conv_param)
    terms_per_grad = (F * HH * WW, N * dout.shape[2] * dout.shape[3], N * dout.size)
    for got, want, size, n_terms in zip((dx, dw, db), exact_grads, magnitudes, terms_per_grad,
                                        strict=True):
        assert np.all(abs(got - want) <= 2 * n_terms * U32 * size)


def test_conv_forward_matches_cs231n_reference_values():
    # CS231n ConvolutionalNetworks.ipynb, "Convolution: Naive forward pass" (REFERENCE_VALUES T1).
    x_shape, w_shape = (2, 3, 4, 4), (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = conv_forward(x, w, b, {"stride": 2, "pad": 1})
    correct_out = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                             [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                             [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                            [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                             [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                             [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])
    # The published values carry 8 decimals, hence ~2e-8 (the notebook prints 2.2e-8).
    assert rel_error(out, correct_out) < 1e-7


def test_conv_backward_matches_numerical_gradient_on_cs231n_problem():
    # CS231n's gradient check (REFERENCE_VALUES T2): errors "around e-8 or less".
    np.random.seed(231)
    x = np.random.randn(4, 3, 5, 5)
    w = np.random.randn(2, 3, 3, 3)
    b = np.random.randn(2,)
    dout = np.random.randn(4, 2, 5, 5)
    conv_param = {"stride": 1, "pad": 1}
    dx_num = eval_numerical_gradient_array(lambda x: conv_forward(x, w, b, conv_param)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: conv_forward(x, w, b, conv_param)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: conv_forward(x, w, b, conv_param)[0], b, dout)
    _, cache = conv_forward(x, w, b, conv_param)
    dx, dw, db = conv_backward(dout, cache)
    assert rel_error(dx, dx_num) < 1e-7
    assert rel_error(dw, dw_num) < 1e-7
    assert rel_error(db, db_num) < 1e-7


@pytest.mark.parametrize("N, C, H, W, F, HH, WW, stride, pad", [
    pytest.param(2, 2, 7, 5, 3, 3, 1, 2, 1, id="stride2-3x1-kernel"),
    pytest.param(1, 2, 6, 7, 2, 2, 3, 2, 2, id="stride2-pad2-2x3-kernel"),
    pytest.param(2, 1, 5, 8, 2, 3, 3, 3, 2, id="stride3-pad2"),
    pytest.param(1, 2, 8, 8, 2, 3, 3, 2, 0, id="floored-stride2"),
    pytest.param(1, 1, 9, 9, 2, 4, 4, 3, 1, id="floored-stride3-pad1"),
    pytest.param(2, 2, 7, 7, 2, 2, 2, 3, 0, id="floored-stride-larger-than-kernel"),
])
def test_conv_backward_matches_numerical_gradient_with_strides_and_odd_kernels(
        rng, N, C, H, W, F, HH, WW, stride, pad):
    conv_param = {"stride": stride, "pad": pad}
    x, w, b = _random_problem(rng, N, C, H, W, F, HH, WW)
    out, cache = conv_forward(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    # Centred differences with h=1e-5 in float64: truncation O(h^2) plus rounding ~1e-11/h,
    # so relative errors of 1e-8 or less are expected for a correct gradient.
    dx_num = eval_numerical_gradient_array(lambda v: conv_forward(v, w, b, conv_param)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda v: conv_forward(x, v, b, conv_param)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda v: conv_forward(x, w, v, conv_param)[0], b, dout)
    assert rel_error(dx, dx_num) < 1e-7
    assert rel_error(dw, dw_num) < 1e-7
    assert rel_error(db, db_num) < 1e-7


def test_conv_output_size_floors_like_pytorch_and_refuses_windows_that_cannot_fit():
    assert conv_output_size(32, 3, stride=2, pad=1) == 16       # 1 + 31 // 2
    assert conv_output_size(28, 5, stride=3) == 8                # 1 + 23 // 3
    assert conv_output_size(7, 3, stride=2) == 3                 # divides: 1 + 4 // 2
    assert conv_output_size(7, 3, stride=3) == 2                 # 1 + 4 // 3, column 6 unused
    assert conv_output_size(4, 6, stride=1, pad=1) == 1          # the window fills the padding
    for size, window, stride, pad in ((5, 8, 1, 1), (5, 3, 0, 0), (5, 3, 1, -1), (5, 0, 1, 0)):
        with pytest.raises(ValueError, match="no output size"):
            conv_output_size(size, window, stride, pad)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_with_a_floored_output_equals_conv_of_the_input_cropped_to_the_reached_rows(rng,
                                                                                       dtype):
    # 5x5 windows at stride 3 on 28x28 start at 0, 3, ..., 21 and end at row 25: rows and
    # columns 26 and 27 are never read, so they cannot change the output and get zero gradient.
    x, w, b = _random_problem(rng, 2, 2, 28, 28, 3, 5, 5, dtype)
    conv_param = {"stride": 3, "pad": 0}
    out, cache = conv_forward(x, w, b, conv_param)
    assert out.shape == (2, 3, 8, 8)
    cropped_out, cropped_cache = conv_forward(x[:, :, :26, :26], w, b, conv_param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = conv_backward(dout, cache)
    cropped_dx, cropped_dw, cropped_db = conv_backward(dout, cropped_cache)
    # Same products in the same order: bit for bit.
    np.testing.assert_array_equal(out, cropped_out)
    np.testing.assert_array_equal(dx[:, :, :26, :26], cropped_dx)
    assert not dx[:, :, 26:, :].any() and not dx[:, :, :, 26:].any()
    np.testing.assert_array_equal(dw, cropped_dw)
    np.testing.assert_array_equal(db, cropped_db)


def test_conv_forward_floors_the_shapes_it_used_to_refuse():
    x, w, b, _ = _good_args()                                     # x 5x5, w 3x3
    assert conv_forward(x, w, b, {"stride": 3, "pad": 0})[0].shape == (2, 4, 1, 1)
    x = np.zeros((2, 3, 5, 6))
    assert conv_forward(x, w, b, {"stride": 2, "pad": 1})[0].shape == (2, 4, 3, 3)


def test_conv_split_over_threads_gives_the_naive_result(rng, monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import course_lib.kernels.threads as threads
    monkeypatch.setattr(threads, "MIN_MACS_PER_THREAD", 1)  # split even tiny batches
    conv_param = {"stride": 2, "pad": 1}
    x, w, b = _random_problem(rng, 5, 3, 7, 7, 4, 3, 3)  # 5 images: an uneven split
    dout = rng.standard_normal((5, 4, 4, 4))
    with threadpoolctl.threadpool_limits(limits=3, user_api="blas"):
        out, cache = conv_forward(x, w, b, conv_param)
        dx, dw, db = conv_backward(dout, cache)
    np.testing.assert_allclose(out, conv_forward_naive(x, w, b, conv_param), rtol=1e-12,
                               atol=1e-12)
    for got, want in zip((dx, dw, db), conv_backward_naive(dout, x, w, conv_param), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("conv_param", [{"stride": 1, "pad": 3}, {"stride": 2, "pad": 1}])
def test_conv_backward_without_dx_gives_the_same_dw_and_db(rng, dtype, conv_param):
    # need_dx=False (a model's first layer) skips the input's gradient and nothing else.
    x, w, b = _random_problem(rng, 3, 3, 9, 9, 4, 7, 7, dtype)
    out, cache = conv_forward(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = conv_backward(dout, cache)
    no_dx, dw_only, db_only = conv_backward(dout, cache, need_dx=False)
    assert no_dx is None
    np.testing.assert_array_equal(dw_only, dw)
    np.testing.assert_array_equal(db_only, db)
    assert dw_only.dtype == db_only.dtype == dtype


def test_conv_sandwich_layers_pass_need_dx_on(rng):
    from course_lib.layers.composite import (
        conv_bn_relu_backward,
        conv_bn_relu_forward,
        conv_relu_backward,
        conv_relu_forward,
        conv_relu_pool_backward,
        conv_relu_pool_forward,
    )
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    x, w, b = _random_problem(rng, 2, 3, 6, 6, 4, 3, 3)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    runs = {
        "conv_relu": (conv_relu_forward(x, w, b, conv_param), conv_relu_backward),
        "conv_relu_pool": (conv_relu_pool_forward(x, w, b, conv_param, pool_param),
                           conv_relu_pool_backward),
        "conv_bn_relu": (conv_bn_relu_forward(x, w, b, gamma, beta, conv_param,
                                              {"mode": "train"}), conv_bn_relu_backward),
    }
    for name, ((out, cache), backward) in runs.items():
        dout = rng.standard_normal(out.shape)
        full = backward(dout, cache)
        without = backward(dout, cache, need_dx=False)
        assert full[0] is not None and full[0].shape == x.shape, name
        assert without[0] is None, name
        for got, want in zip(without[1:], full[1:], strict=True):
            np.testing.assert_array_equal(got, want, err_msg=name)


def test_conv_backward_rejects_a_need_dx_that_is_not_a_bool(rng):
    x, w, b = _random_problem(rng, 1, 1, 4, 4, 1, 3, 3)
    out, cache = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    with pytest.raises(TypeError, match=r"need_dx must be True or False; got str 'no'"):
        conv_backward(out, cache, need_dx="no")


@pytest.mark.parametrize("block", [1, 16, 32])
def test_conv_in_column_blocks_gives_the_naive_result(rng, monkeypatch, block):
    # Large layers multiply in blocks of output columns (a BLAS speed quirk); force it on a small
    # one, with 49 columns per image so that a partial last block is left over.
    import course_lib.layers.conv as conv_layer
    monkeypatch.setattr(conv_layer, "_column_block", lambda rows, inner, columns: block)
    conv_param = {"stride": 1, "pad": 1}
    x, w, b = _random_problem(rng, 3, 2, 7, 7, 3, 3, 3)
    dout = rng.standard_normal((3, 3, 7, 7))
    out, cache = conv_forward(x, w, b, conv_param)
    np.testing.assert_allclose(out, conv_forward_naive(x, w, b, conv_param), rtol=1e-12,
                               atol=1e-12)
    for got, want in zip(conv_backward(dout, cache), conv_backward_naive(dout, x, w, conv_param),
                         strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_conv_is_cross_correlation_not_convolution():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    b = np.zeros(1)
    out, _ = conv_forward(x, w, b, {"stride": 1, "pad": 0})
    # Top-left output: 1*x[0,0] + 2*x[0,1] + 3*x[1,0] + 4*x[1,1] = 0 + 2 + 12 + 20 (no flip).
    assert out[0, 0, 0, 0] == 34.0
    flipped, _ = conv_forward(x, w[:, :, ::-1, ::-1], b, {"stride": 1, "pad": 0})
    assert flipped[0, 0, 0, 0] == 4 * 0 + 3 * 1 + 2 * 4 + 1 * 5
    assert not np.allclose(out, flipped)


def test_conv_pads_with_zeros_symmetrically():
    x = np.ones((1, 1, 3, 3))
    w = np.ones((1, 1, 3, 3))
    out, _ = conv_forward(x, w, np.zeros(1), {"stride": 1, "pad": 1})
    # Each output counts the input pixels under the kernel: 4 in corners, 6 on edges, 9 centre.
    np.testing.assert_array_equal(out[0, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_output_and_gradients_follow_the_dtype_of_x(rng, dtype):
    x = rng.standard_normal((2, 3, 6, 6)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3))  # float64 parameters are cast to x's dtype
    b = rng.standard_normal(4)
    out, cache = conv_forward(x, w, b, {"stride": 1, "pad": 1})
    dx, dw, db = conv_backward(np.ones(out.shape), cache)  # float64 dout, too
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == dtype
    assert dw.shape == w.shape and db.shape == b.shape and dx.shape == x.shape


def test_conv_does_not_modify_its_inputs_and_accepts_read_only_and_strided_arrays(rng):
    x = rng.standard_normal((2, 5, 5, 3)).transpose(0, 3, 1, 2)  # non-contiguous view
    w, b = rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2)
    conv_param = {"stride": 2, "pad": 1}
    dout = rng.standard_normal((2, 2, 3, 3))
    originals = [a.copy() for a in (x, w, b, dout)]
    for a in (x, w, b, dout):
        a.flags.writeable = False
    out, cache = conv_forward(x, w, b, conv_param)
    dx, dw, db = conv_backward(dout, cache)
    for a, original in zip((x, w, b, dout), originals, strict=True):
        np.testing.assert_array_equal(a, original)
    assert conv_param == {"stride": 2, "pad": 1}
    np.testing.assert_allclose(out, conv_forward_naive(x, w, b, conv_param), rtol=1e-12,
                               atol=1e-12)
    # A second backward from the same cache gives the same answer (the cache is not consumed).
    for first, second in zip((dx, dw, db), conv_backward(dout, cache), strict=True):
        np.testing.assert_array_equal(first, second)


@pytest.mark.torch
@pytest.mark.parametrize("x_shape, w_shape, stride, pad", [
    pytest.param((3, 4, 8, 7), (5, 4, 3, 5), 1, 1, id="3x5-same-stride1"),
    pytest.param((2, 3, 9, 7), (5, 3, 3, 5), 2, 2, id="3x5-stride2-pad2"),
    pytest.param((2, 3, 32, 32), (4, 3, 3, 3), 2, 1, id="3x3-stride2-pad1-32x32-gives-16x16"),
    pytest.param((2, 1, 28, 28), (3, 1, 5, 5), 3, 0, id="5x5-stride3-28x28-gives-8x8"),
    pytest.param((1, 2, 10, 9), (2, 2, 4, 2), 3, 1, id="floored-stride3-4x2"),
])
def test_conv_matches_pytorch(rng, x_shape, w_shape, stride, pad):
    torch = pytest.importorskip("torch")
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(
        w_shape[0])
    conv_param = {"stride": stride, "pad": pad}
    out, cache = conv_forward(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = conv_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    t_out = torch.nn.functional.conv2d(tx, tw, tb, stride=stride, padding=pad)
    t_out.backward(torch.tensor(dout))
    assert out.shape == tuple(t_out.shape)
    # float64 on both sides, sums of at most 75 products in different orders: ~1e-14.
    for ours, theirs in ((out, t_out), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-10)


# ---- argument checks -------------------------------------------------------------------------

def _good_args():
    x = np.zeros((2, 3, 5, 5))
    w = np.zeros((4, 3, 3, 3))
    b = np.zeros(4)
    return x, w, b, {"stride": 1, "pad": 1}


@pytest.mark.parametrize("change, error, message", [
    (lambda a: a.update(x=np.zeros((3, 5, 5))), ValueError, r"x must be 4-D \(N, C, H, W\)"),
    (lambda a: a.update(w=np.zeros((4, 3, 3))), ValueError, r"w must be 4-D \(F, C, HH, WW\)"),
    (lambda a: a.update(b=np.zeros((4, 1))), ValueError, r"b must be 1-D \(F,\)"),
    (lambda a: a.update(x=np.zeros((2, 3, 5, 5), dtype=int)), TypeError, "x must have dtype"),
    (lambda a: a.update(x=[[[[0.0]]]]), TypeError, "x must be a NumPy ndarray"),
    (lambda a: a.update(w=np.zeros((4, 2, 3, 3))), ValueError,
     r"w must have shape \(F, C, HH, WW\) with C=3 to match x; got \(4, 2, 3, 3\)"),
    (lambda a: a.update(b=np.zeros(5)), ValueError,
     r"b must have shape \(F,\) with F=4 to match w; got \(5,\)"),
    (lambda a: a.update(conv_param={"stride": 0, "pad": 1}), ValueError,
     r"conv_param\['stride'\] must be a positive int; got 0"),
    (lambda a: a.update(conv_param={"stride": 1.0, "pad": 1}), TypeError,
     r"conv_param\['stride'\] must be a positive int"),
    (lambda a: a.update(conv_param={"stride": 1, "pad": -1}), ValueError,
     r"conv_param\['pad'\] must be a non-negative int; got -1"),
    (lambda a: a.update(conv_param={"stride": 1}), ValueError,
     r"conv_param is missing the key\(s\) \['pad'\]"),
    (lambda a: a.update(conv_param=None), TypeError, "conv_param must be a dict"),
    (lambda a: a.update(w=np.zeros((4, 3, 8, 3))), ValueError,
     r"w's kernel \(8, 3\) must fit in the padded input \(7, 7\)"),
    (lambda a: a.update(w=np.zeros((4, 3, 3, 9)), conv_param={"stride": 2, "pad": 1}),
     ValueError, r"w's kernel \(3, 9\) must fit in the padded input \(7, 7\)"),
], ids=["x-ndim", "w-ndim", "b-ndim", "x-int-dtype", "x-list", "channel-mismatch",
        "bias-length", "stride-zero", "stride-float", "pad-negative", "missing-key",
        "param-not-dict", "kernel-too-big", "kernel-too-wide-with-stride"])
def test_conv_forward_rejects_bad_arguments_with_a_message_naming_them(change, error, message):
    x, w, b, conv_param = _good_args()
    args = {"x": x, "w": w, "b": b, "conv_param": conv_param}
    change(args)
    with pytest.raises(error, match=message):
        conv_forward(**args)


def test_conv_backward_rejects_dout_of_the_wrong_shape():
    x, w, b, conv_param = _good_args()
    out, cache = conv_forward(x, w, b, conv_param)
    with pytest.raises(ValueError, match=r"dout must have the shape of conv_forward's output "
                                         r"\(2, 4, 5, 5\); got \(2, 4, 5, 4\)"):
        conv_backward(np.zeros((2, 4, 5, 4)), cache)


def test_conv_backward_rejects_a_cache_from_another_function():
    x = np.zeros((2, 3, 4, 4))
    _, pool_cache = max_pool_forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(TypeError, match="cache must be the cache returned by conv_forward"):
        conv_backward(np.zeros((2, 3, 2, 2)), pool_cache)
    with pytest.raises(TypeError, match="cache must be the cache returned by conv_forward"):
        conv_backward(np.zeros((2, 3, 2, 2)), ("x", "w", "b", "conv_param", "extra"))
    with pytest.raises(TypeError, match="cache must be the cache returned by conv_forward"):
        conv_backward(np.zeros((2, 3, 2, 2)), None)
