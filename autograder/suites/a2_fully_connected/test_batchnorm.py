"""Hidden tests of batchnorm_forward, batchnorm_backward and batchnorm_backward_alt.

Expected values come from course_lib (the oracle) on the same inputs and a copy of the same
bn_param; the running statistics are read from the student's bn_param as it is after the call
(the contract updates it in place). A backward test runs the student's own forward pass for the
cache. Tolerance (float64): a correct implementation differs from the reference by rounding
only (~1e-15 relative on these O(1)-O(10) values), so |got - expected| <= 1e-9 + 1e-6 *
|expected|; the bugs these tests target (N - 1 variance, eps outside the square root with
eps = 0.5, swapped momentum, batch statistics at test time, a missing gradient path) change
values by 1e-2 or more. Shapes pinned (CONTRACT.md): gamma, beta, dgamma, dbeta are (D,); a
(1, D) dgamma gets a message naming that convention.

eps in the backward pass: with var of order 1 eps = 1e-5 hardly matters, so one test per
backward uses features whose variance is about eps (x ~ 3e-3 * N(0, 1)): sqrt(var) + eps or
a missing eps are then off by 30% or more. A backward is called twice with one cache to catch
a backward that overwrites its cache.
"""

import copy

import numpy as np
import pytest

from autograder.checks import GradingFailure, expect_array, expect_tuple, expect_unchanged
from autograder.suites.a2_fully_connected.conventions import expect_param_grad
from course_lib import batchnorm_backward, batchnorm_forward

RTOL, ATOL = 1e-6, 1e-9


def bn_inputs(seed: int, n: int, d: int, scale: float = 3.0, shift: float = 2.0):
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal((n, d)) + shift
    gamma = 1.0 + 0.5 * rng.standard_normal(d)
    beta = rng.standard_normal(d)
    return x, gamma, beta


def student_forward(student, x, gamma, beta, bn_param):
    out, cache = expect_tuple(student.batchnorm_forward(x, gamma, beta, bn_param), 2,
                              "batchnorm_forward")
    return out, cache


def expect_running(bn_param: dict, reference: dict, when: str) -> None:
    for key in ("running_mean", "running_var"):
        if key not in bn_param:
            raise GradingFailure(f"batchnorm_forward should store bn_param['{key}'] ({when})")
        expect_array(bn_param[key], reference[key], f"bn_param['{key}'] {when}",
                     rtol=RTOL, atol=ATOL)


# ----------------------------------------------------------------------------- forward

@pytest.mark.points(2)
def test_batchnorm_forward_train_mode_matches_reference(student):
    x, gamma, beta = bn_inputs(7101, 8, 5)
    out, _ = student_forward(student, x, gamma, beta, {"mode": "train"})
    expect_array(out, batchnorm_forward(x, gamma, beta, {"mode": "train"})[0], "out",
                 rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_batchnorm_forward_creates_running_stats_with_default_momentum(student):
    x, gamma, beta = bn_inputs(7102, 6, 4)
    mine, ref = {"mode": "train"}, {"mode": "train"}
    student_forward(student, x, gamma, beta, mine)
    batchnorm_forward(x, gamma, beta, ref)
    expect_running(mine, ref, "after one call with no running statistics given")


@pytest.mark.points(2)
def test_batchnorm_forward_updates_running_stats_over_three_batches(student):
    mine = {"mode": "train", "momentum": 0.7}
    ref = copy.deepcopy(mine)
    for k in range(3):
        x, gamma, beta = bn_inputs(7103 + k, 10, 3, shift=2.0 + k)
        out, _ = student_forward(student, x, gamma, beta, mine)
        expect_array(out, batchnorm_forward(x, gamma, beta, ref)[0], f"out of batch {k + 1}",
                     rtol=RTOL, atol=ATOL)
        expect_running(mine, ref, f"after batch {k + 1} (momentum 0.7)")


@pytest.mark.points(2)
def test_batchnorm_forward_test_mode_uses_the_running_stats(student):
    x, gamma, beta = bn_inputs(7111, 7, 4)
    rng = np.random.default_rng(7112)
    running = {"running_mean": rng.standard_normal(4), "running_var": 0.5 + rng.random(4)}
    mine = {"mode": "test", **copy.deepcopy(running)}
    out, _ = student_forward(student, x, gamma, beta, mine)
    want, _ = batchnorm_forward(x, gamma, beta, {"mode": "test", **copy.deepcopy(running)})
    expect_array(out, want, "out in test mode", rtol=RTOL, atol=ATOL)
    expect_running(mine, running, "after a call in test mode (it must not change them)")


@pytest.mark.points(1)
def test_batchnorm_forward_puts_eps_inside_the_square_root(student):
    # var ~ 0.25 and eps = 0.5: sqrt(var + eps) and sqrt(var) + eps differ by ~50%.
    x, gamma, beta = bn_inputs(7121, 9, 3, scale=0.5)
    for mode in ("train", "test"):
        param = {"mode": mode, "eps": 0.5, "running_mean": np.full(3, 2.0),
                 "running_var": np.full(3, 0.3)}
        out, _ = student_forward(student, x, gamma, beta, copy.deepcopy(param))
        expect_array(out, batchnorm_forward(x, gamma, beta, param)[0],
                     f"out in {mode} mode with bn_param['eps'] = 0.5", rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_batchnorm_forward_handles_a_batch_of_one(student):
    # One sample: its variance is 0 and every output equals beta (no division by N - 1 = 0).
    x, gamma, beta = bn_inputs(7131, 1, 6)
    out, _ = student_forward(student, x, gamma, beta, {"mode": "train"})
    expect_array(out, batchnorm_forward(x, gamma, beta, {"mode": "train"})[0],
                 "out for a batch of one sample", rtol=RTOL, atol=ATOL)


@pytest.mark.points(1)
def test_batchnorm_forward_does_not_modify_x_gamma_or_beta(student):
    x, gamma, beta = bn_inputs(7141, 5, 4)
    student_forward(student, x, gamma, beta, {"mode": "train"})
    after = student.last_call.after
    expect_unchanged({"x": x, "gamma": gamma, "beta": beta},
                     {"x": after.get(0), "gamma": after.get(1), "beta": after.get(2)},
                     "batchnorm_forward")


# ----------------------------------------------------------------------------- backward

def expect_grads(grads, expected, when: str = "") -> None:
    dx, dgamma, dbeta = grads
    expect_array(dx, expected[0], f"dx{when}", rtol=RTOL, atol=ATOL)
    expect_param_grad(dgamma, expected[1], f"dgamma{when}", "gamma", rtol=RTOL, atol=ATOL)
    expect_param_grad(dbeta, expected[2], f"dbeta{when}", "beta", rtol=RTOL, atol=ATOL)


def check_backward(student, name: str, seed: int, n: int, d: int, scale=3.0, shift=2.0,
                   calls: int = 1):
    x, gamma, beta = bn_inputs(seed, n, d, scale, shift)
    rng = np.random.default_rng(seed + 1)
    _, cache = student_forward(student, x, gamma, beta, {"mode": "train"})
    reference_cache = batchnorm_forward(x, gamma, beta, {"mode": "train"})[1]
    for call in range(calls):
        dout = rng.standard_normal((n, d))
        grads = expect_tuple(getattr(student, name)(dout, cache), 3, name)
        when = "" if calls == 1 else (" of the second backward call with the same cache (a "
                                      "backward pass must not change its cache)" if call else "")
        expect_grads(grads, batchnorm_backward(dout, reference_cache), when)


def backward_keeps_dout(student, name: str, seed: int):
    x, gamma, beta = bn_inputs(seed, 6, 3)
    dout = np.random.default_rng(seed + 1).standard_normal((6, 3))
    _, cache = student_forward(student, x, gamma, beta, {"mode": "train"})
    getattr(student, name)(dout, cache)
    expect_unchanged({"dout": dout}, {"dout": student.last_call.after.get(0)}, name)


@pytest.mark.points(2)
def test_batchnorm_backward_matches_reference(student):
    check_backward(student, "batchnorm_backward", 7201, 6, 4)


@pytest.mark.points(2)
def test_batchnorm_backward_matches_reference_for_data_far_from_zero(student):
    check_backward(student, "batchnorm_backward", 7203, 10, 3, scale=5.0, shift=12.0)


@pytest.mark.points(1)
def test_batchnorm_backward_with_variance_near_eps_keeps_eps_inside_the_square_root(student):
    # var ~ 1e-5 = eps: sqrt(var + eps), sqrt(var) + eps and sqrt(var) differ by 30% or more.
    check_backward(student, "batchnorm_backward", 7207, 8, 4, scale=3e-3, shift=0.5)


@pytest.mark.points(1)
def test_batchnorm_backward_leaves_the_cache_usable_for_a_second_call(student):
    check_backward(student, "batchnorm_backward", 7209, 5, 3, calls=2)


@pytest.mark.points(1)
def test_batchnorm_backward_does_not_modify_dout(student):
    backward_keeps_dout(student, "batchnorm_backward", 7205)


@pytest.mark.points(2)
def test_batchnorm_backward_alt_matches_reference(student):
    check_backward(student, "batchnorm_backward_alt", 7301, 6, 4)


@pytest.mark.points(2)
def test_batchnorm_backward_alt_matches_reference_for_data_far_from_zero(student):
    check_backward(student, "batchnorm_backward_alt", 7303, 10, 3, scale=5.0, shift=12.0)


@pytest.mark.points(1)
def test_batchnorm_backward_alt_with_variance_near_eps_keeps_eps_inside_the_square_root(student):
    # var ~ 1e-5 = eps: sqrt(var + eps), sqrt(var) + eps and sqrt(var) differ by 30% or more.
    check_backward(student, "batchnorm_backward_alt", 7307, 8, 4, scale=3e-3, shift=0.5)


@pytest.mark.points(1)
def test_batchnorm_backward_alt_leaves_the_cache_usable_for_a_second_call(student):
    check_backward(student, "batchnorm_backward_alt", 7309, 5, 3, calls=2)


@pytest.mark.points(1)
def test_batchnorm_backward_alt_does_not_modify_dout(student):
    backward_keeps_dout(student, "batchnorm_backward_alt", 7305)
