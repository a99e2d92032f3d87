"""course_lib max/avg pooling against naive loops, numerical gradients, CS231n's published values,
hand-worked tie and NaN cases and (when installed) PyTorch."""

import numpy as np
import pytest
from naive_conv_pool import (
    avg_pool_backward_naive,
    avg_pool_forward_naive,
    max_pool_backward_naive,
    max_pool_forward_naive,
)

from course_lib import (
    avg_pool_backward,
    avg_pool_forward,
    conv_forward,
    eval_numerical_gradient_array,
    max_pool_backward,
    max_pool_forward,
    rel_error,
)


def _pool(ph, pw, stride):
    return {"pool_height": ph, "pool_width": pw, "stride": stride}


# (x shape, pool_height, pool_width, stride)
SHAPES = [
    pytest.param((2, 3, 8, 8), 2, 2, 2, id="2x2-stride2"),
    pytest.param((1, 1, 7, 9), 3, 3, 2, id="batch1-one-channel-3x3-stride2-H!=W"),
    pytest.param((2, 2, 6, 5), 2, 3, 1, id="overlapping-2x3-stride1"),
    pytest.param((2, 3, 9, 7), 3, 1, 2, id="3x1-stride2"),
    pytest.param((1, 2, 5, 5), 5, 5, 1, id="window-as-large-as-input"),
    pytest.param((2, 2, 4, 6), 1, 1, 1, id="1x1-identity"),
    pytest.param((2, 2, 10, 10), 4, 4, 3, id="4x4-stride3"),
    pytest.param((2, 2, 6, 8), 2, 2, 2, id="2x2-stride2-H!=W"),
    pytest.param((2, 2, 7, 7), 3, 3, 2, id="3x3-stride2-7x7-gives-3x3"),
    # Strides that do not divide (H - pool_height): the output size is floored.
    pytest.param((2, 2, 7, 7), 2, 2, 2, id="floored-2x2-stride2-7x7-gives-3x3"),
    pytest.param((1, 3, 8, 9), 3, 3, 2, id="floored-3x3-stride2-8x9"),
    pytest.param((2, 1, 10, 9), 2, 3, 3, id="floored-2x3-stride3"),
    pytest.param((1, 2, 9, 9), 2, 2, 4, id="floored-stride-larger-than-window"),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, ph, pw, stride", SHAPES)
def test_max_pool_matches_naive_loops(rng, shape, ph, pw, stride, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = max_pool_forward(x, _pool(ph, pw, stride))
    # A max selects one input and a gradient only moves values: both are exact in any dtype.
    np.testing.assert_array_equal(out, max_pool_forward_naive(x, _pool(ph, pw, stride)))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = max_pool_backward(dout, cache)
    expected = max_pool_backward_naive(dout, x, _pool(ph, pw, stride))
    if ph <= stride and pw <= stride:  # windows do not overlap: no sums, exact
        np.testing.assert_array_equal(dx, expected)
    else:  # overlapping windows add gradients, maybe in another order: a few roundoffs
        np.testing.assert_allclose(dx, expected, rtol=10 * np.finfo(dtype).eps,
                                   atol=10 * np.finfo(dtype).eps)
    assert out.dtype == dx.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, ph, pw, stride", SHAPES)
def test_avg_pool_matches_naive_loops(rng, shape, ph, pw, stride, dtype):
    x = rng.standard_normal(shape).astype(dtype)
    out, cache = avg_pool_forward(x, _pool(ph, pw, stride))
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = avg_pool_backward(dout, cache)
    # A mean of at most 25 terms of size ~1, in the dtype of x: ~25 roundoffs of the dtype.
    tol = 50 * np.finfo(dtype).eps
    np.testing.assert_allclose(out, avg_pool_forward_naive(x, _pool(ph, pw, stride)),
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, avg_pool_backward_naive(dout, x, _pool(ph, pw, stride)),
                               rtol=tol, atol=tol)
    assert out.dtype == dx.dtype == dtype


def test_max_pool_forward_matches_cs231n_reference_values():
    # CS231n ConvolutionalNetworks.ipynb, "Max-Pooling: Naive forward" (REFERENCE_VALUES T3).
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    out, _ = max_pool_forward(x, _pool(2, 2, 2))
    correct_out = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                             [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                             [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                            [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                             [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                             [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])
    # Published with 8 decimals; the notebook prints a difference of 4.2e-8.
    assert rel_error(out, correct_out) < 1e-7


def test_max_pool_finds_the_maximum_wherever_it_is_in_the_window():
    # T3's input is monotone (every max is bottom-right); here each window has its max elsewhere.
    x = np.array([[[[9, 1, 2, 8],
                    [3, 4, 5, 6],
                    [1, 7, 0, 2],
                    [5, 3, 9, 1]]]], dtype=np.float64)
    out, cache = max_pool_forward(x, _pool(2, 2, 2))
    np.testing.assert_array_equal(out, [[[[9, 8], [7, 9]]]])
    dx = max_pool_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    np.testing.assert_array_equal(dx, [[[[1, 0, 0, 2],
                                         [0, 0, 0, 0],
                                         [0, 3, 0, 0],
                                         [0, 0, 4, 0]]]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_pool_backward_sends_a_tied_window_gradient_to_its_first_maximum(dtype):
    x = np.array([[[[1, 3, 0, 0],
                    [3, 2, 0, 0],
                    [5, 5, 2, 2],
                    [5, 5, 2, 2]]]], dtype=dtype)
    out, cache = max_pool_forward(x, _pool(2, 2, 2))
    np.testing.assert_array_equal(out, [[[[3, 0], [5, 2]]]])
    dx = max_pool_backward(np.array([[[[1, 2], [3, 4]]]], dtype=dtype), cache)
    # First maximum in row-major order, as np.argmax: (0, 1) not (1, 0); top-left on full ties.
    np.testing.assert_array_equal(dx, [[[[0, 1, 2, 0],
                                         [0, 0, 0, 0],
                                         [3, 0, 4, 0],
                                         [0, 0, 0, 0]]]])


def test_max_pool_backward_adds_gradients_of_overlapping_windows_sharing_a_maximum():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # the maximum of all four 2x2 windows (stride 1)
    out, cache = max_pool_forward(x, _pool(2, 2, 1))
    np.testing.assert_array_equal(out, np.ones((1, 1, 2, 2)))
    dx = max_pool_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    expected = np.zeros((1, 1, 3, 3))
    expected[0, 0, 1, 1] = 10.0
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("pool", [_pool(2, 2, 2), _pool(2, 3, 1)], ids=["2x2", "general"])
def test_max_pool_propagates_nan_and_routes_its_gradient_to_the_first_nan(pool):
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 1, 0] = np.nan
    x[0, 0, 1, 1] = 5.0
    out, cache = max_pool_forward(x, pool)
    assert np.isnan(out[0, 0, 0, 0])  # like np.max
    np.testing.assert_array_equal(out, max_pool_forward_naive(x, pool))  # NaNs compare equal
    dout = np.arange(1.0, out.size + 1).reshape(out.shape)
    # The naive backward uses np.argmax, which picks the first NaN of a window.
    np.testing.assert_array_equal(max_pool_backward(dout, cache),
                                  max_pool_backward_naive(dout, x, pool))


def test_max_pool_backward_matches_numerical_gradient_on_cs231n_problem():
    # CS231n's check (REFERENCE_VALUES T4): "on the order of e-12". Random values have no ties,
    # so max pooling is differentiable there and h=1e-5 never changes which input is the max.
    np.random.seed(231)
    x = np.random.randn(3, 2, 8, 8)
    dout = np.random.randn(3, 2, 4, 4)
    pool_param = _pool(2, 2, 2)
    dx_num = eval_numerical_gradient_array(lambda v: max_pool_forward(v, pool_param)[0], x, dout)
    _, cache = max_pool_forward(x, pool_param)
    assert rel_error(max_pool_backward(dout, cache), dx_num) < 1e-10


@pytest.mark.parametrize("forward, backward", [(max_pool_forward, max_pool_backward),
                                               (avg_pool_forward, avg_pool_backward)],
                         ids=["max", "avg"])
@pytest.mark.parametrize("shape, ph, pw, stride", [
    pytest.param((2, 2, 7, 6), 3, 2, 2, id="overlapping-3x2-stride2"),
    pytest.param((2, 2, 8, 7), 3, 3, 2, id="floored-overlapping-3x3-stride2"),
    pytest.param((1, 2, 9, 8), 2, 2, 3, id="floored-2x2-stride3"),
])
def test_pool_backward_matches_numerical_gradient(rng, forward, backward, shape, ph, pw,
                                                  stride):
    x = rng.standard_normal(shape)
    pool_param = _pool(ph, pw, stride)
    out, cache = forward(x, pool_param)
    dout = rng.standard_normal(out.shape)
    dx_num = eval_numerical_gradient_array(lambda v: forward(v, pool_param)[0], x, dout)
    # Piecewise linear (max) or linear (avg): centred differences are exact up to rounding
    # (~1e-16/h = 1e-11 relative), so 1e-8 leaves a wide margin.
    assert rel_error(backward(dout, cache), dx_num) < 1e-8


@pytest.mark.parametrize("forward, backward", [(max_pool_forward, max_pool_backward),
                                               (avg_pool_forward, avg_pool_backward)],
                         ids=["max", "avg"])
def test_pooling_does_not_modify_inputs_and_accepts_read_only_strided_arrays(rng, forward,
                                                                            backward):
    x = rng.standard_normal((2, 6, 6, 3)).transpose(0, 3, 1, 2)  # non-contiguous view
    pool_param = _pool(2, 2, 2)
    dout = rng.standard_normal((2, 3, 3, 3))
    x_copy, dout_copy = x.copy(), dout.copy()
    x.flags.writeable = False
    dout.flags.writeable = False
    out, cache = forward(x, pool_param)
    dx = backward(dout, cache)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(dout, dout_copy)
    assert pool_param == _pool(2, 2, 2)
    assert dx.shape == x.shape and dx.flags.c_contiguous


@pytest.mark.torch
@pytest.mark.parametrize("forward, backward", [(max_pool_forward, max_pool_backward),
                                               (avg_pool_forward, avg_pool_backward)],
                         ids=["max", "avg"])
@pytest.mark.parametrize("shape, ph, pw, stride", [
    pytest.param((2, 3, 8, 8), 2, 2, 2, id="2x2-stride2"),
    pytest.param((2, 2, 9, 7), 3, 3, 2, id="3x3-stride2"),
    pytest.param((2, 2, 7, 7), 3, 3, 2, id="3x3-stride2-7x7"),
    pytest.param((2, 2, 7, 7), 2, 2, 2, id="floored-2x2-stride2-7x7"),
    pytest.param((1, 2, 10, 11), 3, 2, 3, id="floored-3x2-stride3"),
])
def test_pooling_matches_pytorch(rng, forward, backward, shape, ph, pw, stride):
    torch = pytest.importorskip("torch")
    torch_pool = {max_pool_forward: torch.nn.functional.max_pool2d,
                  avg_pool_forward: torch.nn.functional.avg_pool2d}[forward]
    x = rng.standard_normal(shape)  # continuous values: no ties to break differently
    out, cache = forward(x, _pool(ph, pw, stride))
    dout = rng.standard_normal(out.shape)
    tx = torch.tensor(x, requires_grad=True)
    t_out = torch_pool(tx, (ph, pw), stride)  # ceil_mode=False: the floored size
    t_out.backward(torch.tensor(dout))
    assert out.shape == tuple(t_out.shape)
    # float64, a max moves values and a mean has at most 9 terms: ~1e-16.
    np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backward(dout, cache), tx.grad.numpy(), rtol=1e-12, atol=1e-12)


# ---- argument checks -------------------------------------------------------------------------

@pytest.mark.parametrize("forward", [max_pool_forward, avg_pool_forward], ids=["max", "avg"])
@pytest.mark.parametrize("x, pool_param, error, message", [
    (np.zeros((3, 8, 8)), _pool(2, 2, 2), ValueError, r"x must be 4-D \(N, C, H, W\)"),
    (np.zeros((1, 1, 8, 8), dtype=np.int64), _pool(2, 2, 2), TypeError, "x must have dtype"),
    (np.zeros((1, 1, 8, 8)), {"pool_height": 2, "stride": 2}, ValueError,
     r"pool_param is missing the key\(s\) \['pool_width'\]"),
    (np.zeros((1, 1, 8, 8)), _pool(0, 2, 2), ValueError,
     r"pool_param\['pool_height'\] must be a positive int; got 0"),
    (np.zeros((1, 1, 8, 8)), _pool(2, -1, 2), ValueError,
     r"pool_param\['pool_width'\] must be a positive int; got -1"),
    (np.zeros((1, 1, 8, 8)), _pool(2, 2, 0), ValueError,
     r"pool_param\['stride'\] must be a positive int; got 0"),
    (np.zeros((1, 1, 8, 8)), _pool(9, 2, 1), ValueError,
     r"pool window \(9, 2\) must fit in the input \(8, 8\)"),
    (np.zeros((1, 1, 8, 5)), _pool(2, 6, 3), ValueError,
     r"pool window \(2, 6\) must fit in the input \(8, 5\)"),
], ids=["x-ndim", "x-int", "missing-key", "zero-height", "negative-width", "zero-stride",
        "window-too-big", "window-too-wide-with-stride"])
def test_pool_forward_rejects_bad_arguments_with_a_message_naming_them(forward, x, pool_param,
                                                                       error, message):
    with pytest.raises(error, match=message):
        forward(x, pool_param)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("forward, backward", [(max_pool_forward, max_pool_backward),
                                               (avg_pool_forward, avg_pool_backward)],
                         ids=["max", "avg"])
def test_pooling_with_a_floored_output_equals_pooling_of_the_input_cropped_to_the_reached_rows(
        rng, forward, backward, dtype):
    # 3x3 windows at stride 2 on 8x9 start at rows 0, 2, 4 (ending at row 6) and columns 0, 2,
    # 4, 6 (ending at column 8): row 7 is never read, so it cannot change the output and gets
    # zero gradient; the shapes the layers used to refuse now work.
    x = rng.standard_normal((2, 3, 8, 9)).astype(dtype)
    pool_param = _pool(3, 3, 2)
    out, cache = forward(x, pool_param)
    assert out.shape == (2, 3, 3, 4)
    cropped_out, cropped_cache = forward(x[:, :, :7, :], pool_param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = backward(dout, cache)
    np.testing.assert_array_equal(out, cropped_out)
    np.testing.assert_array_equal(dx[:, :, :7, :], backward(dout, cropped_cache))
    assert not dx[:, :, 7:, :].any()
    assert forward(np.zeros((1, 1, 7, 8)), _pool(2, 2, 2))[0].shape == (1, 1, 3, 4)


@pytest.mark.parametrize("forward, backward", [(max_pool_forward, max_pool_backward),
                                               (avg_pool_forward, avg_pool_backward)],
                         ids=["max", "avg"])
def test_pool_backward_rejects_dout_of_the_wrong_shape_and_foreign_caches(forward, backward):
    x = np.zeros((2, 3, 4, 4))
    _, cache = forward(x, _pool(2, 2, 2))
    with pytest.raises(ValueError, match=r"dout must have the shape of .*_pool_forward's output "
                                         r"\(2, 3, 2, 2\); got \(2, 3, 2, 1\)"):
        backward(np.zeros((2, 3, 2, 1)), cache)
    other = avg_pool_forward if forward is max_pool_forward else max_pool_forward
    _, other_cache = other(x, _pool(2, 2, 2))
    _, conv_cache = conv_forward(x, np.zeros((3, 3, 1, 1)), np.zeros(3), {"stride": 1, "pad": 0})
    for foreign in (other_cache, conv_cache, None, (1, 2, 3, 4)):
        with pytest.raises(TypeError, match=f"cache must be the cache returned by "
                                            f"{forward.__name__}"):
            backward(np.zeros((2, 3, 2, 2)), foreign)
