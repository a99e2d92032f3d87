"""Hidden tests of layernorm_forward and layernorm_backward (a2_fully_connected).

Expected values come from course_lib (the oracle) on the same inputs. Shapes have N != D, so
statistics over the wrong axis (batch norm's) cannot pass by symmetry. Tolerance (float64): a
correct implementation differs from the reference by rounding only (~1e-15 relative), so
|got - expected| <= 1e-9 + 1e-6 * |expected|; the wrong axis, a missing eps or a missing
gradient term change values by 1e-2 or more.
"""

import numpy as np
import pytest

from autograder.checks import expect_array, expect_tuple, expect_unchanged
from course_lib import layernorm_backward, layernorm_forward

RTOL, ATOL = 1e-6, 1e-9


def ln_inputs(seed: int, n: int, d: int, scale: float = 2.0, shift: float = 3.0):
    rng = np.random.default_rng(seed)
    # Each sample gets its own offset, so per-sample and per-feature statistics differ.
    x = scale * rng.standard_normal((n, d)) + shift * rng.standard_normal((n, 1))
    gamma = 1.0 + 0.5 * rng.standard_normal(d)
    beta = rng.standard_normal(d)
    return x, gamma, beta


def check_forward(student, x, gamma, beta, ln_param, what="out"):
    out, _ = expect_tuple(student.layernorm_forward(x, gamma, beta, dict(ln_param)), 2,
                          "layernorm_forward")
    expect_array(out, layernorm_forward(x, gamma, beta, dict(ln_param))[0], what,
                 rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- forward

@pytest.mark.points(2)
def test_layernorm_forward_matches_reference(student):
    check_forward(student, *ln_inputs(8101, 5, 8), {})


@pytest.mark.points(1)
def test_layernorm_forward_normalises_each_sample_over_its_features(student):
    check_forward(student, *ln_inputs(8102, 12, 3), {}, "out (12 samples of 3 features)")


@pytest.mark.points(1)
def test_layernorm_forward_uses_ln_param_eps(student):
    check_forward(student, *ln_inputs(8103, 4, 6, scale=0.5), {"eps": 0.3},
                  "out with ln_param['eps'] = 0.3")


@pytest.mark.points(1)
def test_layernorm_forward_is_the_same_in_test_mode(student):
    check_forward(student, *ln_inputs(8104, 6, 5), {"mode": "test"},
                  "out with ln_param['mode'] = 'test' (layer norm has no running statistics)")


@pytest.mark.points(1)
def test_layernorm_forward_does_not_modify_x_gamma_or_beta(student):
    x, gamma, beta = ln_inputs(8105, 4, 7)
    student.layernorm_forward(x, gamma, beta, {})
    after = student.last_call.after
    expect_unchanged({"x": x, "gamma": gamma, "beta": beta},
                     {"x": after.get(0), "gamma": after.get(1), "beta": after.get(2)},
                     "layernorm_forward")


# ----------------------------------------------------------------------------- backward

def check_backward(student, seed: int, n: int, d: int, ln_param=None):
    x, gamma, beta = ln_inputs(seed, n, d)
    dout = np.random.default_rng(seed + 1).standard_normal((n, d))
    ln_param = ln_param or {}
    _, cache = expect_tuple(student.layernorm_forward(x, gamma, beta, dict(ln_param)), 2,
                            "layernorm_forward")
    grads = expect_tuple(student.layernorm_backward(dout, cache), 3, "layernorm_backward")
    expected = layernorm_backward(dout, layernorm_forward(x, gamma, beta, dict(ln_param))[1])
    for what, got, want in zip(("dx", "dgamma", "dbeta"), grads, expected, strict=True):
        expect_array(got, want, what, rtol=RTOL, atol=ATOL)


@pytest.mark.points(2)
def test_layernorm_backward_matches_reference(student):
    check_backward(student, 8201, 4, 6)


@pytest.mark.points(1)
def test_layernorm_backward_matches_reference_with_more_samples_than_features(student):
    check_backward(student, 8203, 9, 2, {"eps": 1e-3})


@pytest.mark.points(1)
def test_layernorm_backward_does_not_modify_dout(student):
    x, gamma, beta = ln_inputs(8205, 5, 4)
    dout = np.random.default_rng(8206).standard_normal((5, 4))
    _, cache = expect_tuple(student.layernorm_forward(x, gamma, beta, {}), 2,
                            "layernorm_forward")
    student.layernorm_backward(dout, cache)
    expect_unchanged({"dout": dout}, {"dout": student.last_call.after.get(0)},
                     "layernorm_backward")
