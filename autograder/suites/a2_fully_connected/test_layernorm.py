"""Hidden tests of layernorm_forward and layernorm_backward (a2_fully_connected).

Expected values come from course_lib (the oracle) on the same inputs. Shapes have N != D, so
statistics over the wrong axis (batch norm's) cannot pass by symmetry. Tolerance (float64): a
correct implementation differs from the reference by rounding only (~1e-15 relative), so
|got - expected| <= 1e-9 + 1e-6 * |expected|; the wrong axis, a missing eps or a missing
gradient term change values by 1e-2 or more. ln_param is not documented as updated, so it must
come back unchanged; dgamma and dbeta are (D,) like gamma and beta.
"""

import numpy as np
import pytest

from autograder.checks import GradingFailure, expect_array, expect_tuple, expect_unchanged
from autograder.suites.a2_fully_connected.conventions import expect_param_grad
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


@pytest.mark.points(1)
def test_layernorm_forward_does_not_modify_ln_param(student):
    # ln_param is not documented as updated (only bn_param is): it must come back as it went.
    # (Reading a default with ln_param.get("eps", 1e-5) is fine; setdefault adds a key.)
    x, gamma, beta = ln_inputs(8106, 3, 5)
    for given in ({}, {"eps": 1e-4, "mode": "train"}):
        student.layernorm_forward(x, gamma, beta, dict(given))
        after = student.last_call.after.get(3)
        if after != given:
            raise GradingFailure(f"layernorm_forward changed ln_param {given} (it came back as "
                                 f"{after!r}); only bn_param and an optimizer's config are "
                                 "documented as updated")


# ----------------------------------------------------------------------------- backward

def check_backward(student, seed: int, n: int, d: int, ln_param=None, calls: int = 1):
    x, gamma, beta = ln_inputs(seed, n, d)
    rng = np.random.default_rng(seed + 1)
    ln_param = ln_param or {}
    _, cache = expect_tuple(student.layernorm_forward(x, gamma, beta, dict(ln_param)), 2,
                            "layernorm_forward")
    reference_cache = layernorm_forward(x, gamma, beta, dict(ln_param))[1]
    for call in range(calls):
        dout = rng.standard_normal((n, d))
        dx, dgamma, dbeta = expect_tuple(student.layernorm_backward(dout, cache), 3,
                                         "layernorm_backward")
        when = (" of the second backward call with the same cache (a backward pass must not "
                "change its cache)") if call else ""
        want = layernorm_backward(dout, reference_cache)
        expect_array(dx, want[0], f"dx{when}", rtol=RTOL, atol=ATOL)
        expect_param_grad(dgamma, want[1], f"dgamma{when}", "gamma", rtol=RTOL, atol=ATOL)
        expect_param_grad(dbeta, want[2], f"dbeta{when}", "beta", rtol=RTOL, atol=ATOL)


@pytest.mark.points(2)
def test_layernorm_backward_matches_reference(student):
    check_backward(student, 8201, 4, 6)


@pytest.mark.points(1)
def test_layernorm_backward_matches_reference_with_more_samples_than_features(student):
    check_backward(student, 8203, 9, 2, {"eps": 1e-3})


@pytest.mark.points(1)
def test_layernorm_backward_leaves_the_cache_usable_for_a_second_call(student):
    check_backward(student, 8207, 3, 5, calls=2)


@pytest.mark.points(1)
def test_layernorm_backward_does_not_modify_dout(student):
    x, gamma, beta = ln_inputs(8205, 5, 4)
    dout = np.random.default_rng(8206).standard_normal((5, 4))
    _, cache = expect_tuple(student.layernorm_forward(x, gamma, beta, {}), 2,
                            "layernorm_forward")
    student.layernorm_backward(dout, cache)
    expect_unchanged({"dout": dout}, {"dout": student.last_call.after.get(0)},
                     "layernorm_backward")
