"""Hidden tests of spatial batch normalisation and group normalisation (a3_convolutional_nets).

Expected values come from course_lib.spatial_batchnorm_* / spatial_groupnorm_* (the oracle)
on the same inputs; inputs come from fixed seeds. Inputs are shifted and scaled (5 * z + 12),
as in CS231n's checks, so a missing mean subtraction or a wrong variance is far off.

`bn_param` is updated in place by the student's function (the contract); the grader gets the
dict back as it is after the call and compares its running statistics with the oracle's.

Tolerance (float64): normalising, scaling and the closed-form or graph backward of a correct
implementation differ from the reference by rounding only; with |x - mean| / std = O(1) and
at most 4 * 5 * 6 = 120 values per statistic, that is below 1e-12, so |got - expected| <=
1e-9 + 1e-6 * |expected| accepts any correct formula. The bugs the tests look for (variance
divided by M - 1, eps outside the square root with eps = 0.5, wrong axes or groups, swapped
momentum, batch statistics at test time) change values by 1e-3 or (much) more; with a
variance near eps (var ~ 1e-5 = eps), sqrt(var + eps), sqrt(var) + eps and sqrt(var) differ by
30% or more, so an eps misplaced in the backward pass shows there.

gamma and beta have shape (C,) (CONTRACT.md). Code written for (1, C, 1, 1) (one CS231n year's
group norm) fails with a broadcasting error or returns dgamma of that shape; the message then
names the convention (conventions.py). A backward pass may be called twice with the same cache.
"""

import numpy as np
import pytest

from autograder.checks import GradingFailure, expect_array, expect_tuple, expect_unchanged
from autograder.suites.a3_convolutional_nets.conventions import (
    call_with_channel_params,
    expect_channel_grad,
    expect_param_unchanged,
)
from course_lib import (
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

RTOL, ATOL = 1e-6, 1e-9


def norm_inputs(seed: int, shape: tuple, scale: float = 5.0, shift: float = 12.0):
    rng = np.random.default_rng(seed)
    x = scale * rng.standard_normal(shape) + shift
    C = shape[1]
    gamma = 1.0 + 0.5 * rng.standard_normal(C)
    beta = rng.standard_normal(C)
    return x, gamma, beta


def copy_param(param: dict) -> dict:
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in param.items()}


# ----------------------------------------------------------------------------- batchnorm forward

def _bn_forward(student, x, gamma, beta, bn_param, case):
    """Student's and oracle's forward on copies of bn_param; returns both dicts afterwards."""
    mine, theirs = copy_param(bn_param), copy_param(bn_param)
    out, _ = expect_tuple(call_with_channel_params(student, "spatial_batchnorm_forward", x, gamma,
                                                   beta, mine), 2, "spatial_batchnorm_forward")
    expected, _ = spatial_batchnorm_forward(x, gamma, beta, theirs)
    expect_array(out, expected, f"out ({case})", rtol=RTOL, atol=ATOL)
    return mine, theirs


def _expect_running(mine, theirs, case):
    for key in ("running_mean", "running_var"):
        if key not in mine:
            raise GradingFailure(f"bn_param has no {key!r} after the call ({case}); the "
                                 "forward pass must store the running statistics in bn_param")
        expect_array(mine[key], theirs[key], f"bn_param['{key}'] ({case})", rtol=RTOL,
                     atol=ATOL)


@pytest.mark.points(2)
def test_spatial_batchnorm_forward_normalises_each_channel_in_train_mode(student):
    x, gamma, beta = norm_inputs(3501, (4, 3, 5, 6))
    _bn_forward(student, x, gamma, beta, {"mode": "train"}, "train mode")


@pytest.mark.points(1)
def test_spatial_batchnorm_forward_creates_and_updates_running_statistics(student):
    x, gamma, beta = norm_inputs(3502, (3, 2, 4, 5))
    mine, theirs = _bn_forward(student, x, gamma, beta, {"mode": "train"},
                               "train mode, running statistics created from zeros")
    _expect_running(mine, theirs, "one train-mode step from zeros, default momentum 0.9")


@pytest.mark.points(1)
def test_spatial_batchnorm_forward_running_statistics_over_steps_with_momentum(student):
    rng = np.random.default_rng(3503)
    C = 3
    mine = {"mode": "train", "momentum": 0.7, "running_mean": rng.standard_normal(C),
            "running_var": 1.0 + rng.random(C)}
    theirs = copy_param(mine)
    for step in range(3):
        x, gamma, beta = norm_inputs(3504 + step, (2, C, 3, 4))
        out, _ = expect_tuple(student.spatial_batchnorm_forward(x, gamma, beta, mine), 2,
                              "spatial_batchnorm_forward")
        expected, _ = spatial_batchnorm_forward(x, gamma, beta, theirs)
        expect_array(out, expected, f"out (train step {step + 1}, momentum 0.7)", rtol=RTOL,
                     atol=ATOL)
    _expect_running(mine, theirs, "after three train-mode steps with momentum 0.7")


@pytest.mark.points(1)
def test_spatial_batchnorm_forward_uses_running_statistics_in_test_mode(student):
    rng = np.random.default_rng(3507)
    x, gamma, beta = norm_inputs(3508, (3, 3, 4, 4))
    bn_param = {"mode": "test", "running_mean": 12.0 + rng.standard_normal(3),
                "running_var": 20.0 + 5.0 * rng.random(3)}
    _bn_forward(student, x, gamma, beta, bn_param,
                "test mode: normalise with the running statistics, not the batch's")


@pytest.mark.points(1)
def test_spatial_batchnorm_forward_puts_eps_inside_the_square_root(student):
    x, gamma, beta = norm_inputs(3509, (2, 3, 4, 3))
    x = 0.5 * (x - 12.0) + 3.0               # variance ~6: eps = 0.5 matters
    _bn_forward(student, x, gamma, beta, {"mode": "train", "eps": 0.5},
                "train mode with eps = 0.5: out = gamma * (x - mean) / sqrt(var + eps) + beta")


@pytest.mark.points(1)
def test_spatial_batchnorm_forward_with_one_image_and_one_channel(student):
    x, gamma, beta = norm_inputs(3510, (1, 1, 3, 7))
    mine, theirs = _bn_forward(student, x, gamma, beta, {"mode": "train"},
                               "one image, one channel, 3x7")
    _expect_running(mine, theirs, "one image, one channel, 3x7")


@pytest.mark.points(1)
def test_spatial_batchnorm_forward_does_not_modify_its_input(student):
    x, gamma, beta = norm_inputs(3511, (2, 3, 4, 5))
    student.spatial_batchnorm_forward(x, gamma, beta, {"mode": "train"})
    after = student.last_call.after
    expect_unchanged({"x": x, "gamma": gamma, "beta": beta},
                     {"x": after.get(0), "gamma": after.get(1), "beta": after.get(2)},
                     "spatial_batchnorm_forward")


# ----------------------------------------------------------------------------- batchnorm backward

SECOND_CALL = (", second backward call with the same cache: a backward pass must not change "
               "what its forward pass cached")


def expect_norm_grads(grads, expected, case: str) -> None:
    dx, dgamma, dbeta = grads
    expect_array(dx, expected[0], f"dx ({case})", rtol=RTOL, atol=ATOL)
    expect_channel_grad(dgamma, expected[1], f"dgamma ({case})", "gamma", rtol=RTOL, atol=ATOL)
    expect_channel_grad(dbeta, expected[2], f"dbeta ({case})", "beta", rtol=RTOL, atol=ATOL)


def _check_bn_backward(student, seed, shape, case, eps=None, calls=1, scale=5.0, shift=12.0):
    x, gamma, beta = norm_inputs(seed, shape, scale, shift)
    bn_param = {"mode": "train"} if eps is None else {"mode": "train", "eps": eps}
    _, cache = expect_tuple(call_with_channel_params(student, "spatial_batchnorm_forward", x,
                                                     gamma, beta, copy_param(bn_param)),
                            2, "spatial_batchnorm_forward")
    _, reference_cache = spatial_batchnorm_forward(x, gamma, beta, copy_param(bn_param))
    rng = np.random.default_rng(seed + 50)
    for call in range(calls):
        dout = rng.standard_normal(shape)
        grads = expect_tuple(student.spatial_batchnorm_backward(dout, cache), 3,
                             "spatial_batchnorm_backward")
        expect_norm_grads(grads, spatial_batchnorm_backward(dout, reference_cache),
                          case + (SECOND_CALL if call else ""))


@pytest.mark.points(2)
def test_spatial_batchnorm_backward_in_train_mode(student):
    _check_bn_backward(student, 3601, (4, 3, 5, 6), "train mode")


@pytest.mark.points(1)
def test_spatial_batchnorm_backward_with_a_non_square_input_and_large_eps(student):
    _check_bn_backward(student, 3602, (2, 4, 3, 7), "3x7 input, eps = 0.5", eps=0.5)


@pytest.mark.points(1)
def test_spatial_batchnorm_backward_with_one_image(student):
    _check_bn_backward(student, 3603, (1, 3, 4, 4), "one image")


@pytest.mark.points(1)
def test_spatial_batchnorm_backward_with_variance_near_eps_keeps_eps_inside_the_root(student):
    # var ~ 9e-6, eps = 1e-5: gamma / sqrt(var + eps) is the only scale that matches.
    _check_bn_backward(student, 3606, (3, 2, 4, 5), "variance ~ 9e-6, near eps = 1e-5: "
                       "dx scales with gamma / sqrt(var + eps)", scale=3e-3, shift=0.5)


@pytest.mark.points(1)
def test_spatial_batchnorm_backward_leaves_the_cache_usable_for_a_second_call(student):
    _check_bn_backward(student, 3607, (2, 3, 4, 5), "train mode", calls=2)


@pytest.mark.points(1)
def test_spatial_batchnorm_backward_does_not_modify_dout(student):
    x, gamma, beta = norm_inputs(3604, (2, 3, 4, 5))
    _, cache = expect_tuple(student.spatial_batchnorm_forward(x, gamma, beta,
                                                              {"mode": "train"}),
                            2, "spatial_batchnorm_forward")
    dout = np.random.default_rng(3605).standard_normal(x.shape)
    student.spatial_batchnorm_backward(dout, cache)
    expect_unchanged({"dout": dout}, {"dout": student.last_call.after.get(0)},
                     "spatial_batchnorm_backward")


# ----------------------------------------------------------------------------- groupnorm

def _check_gn_forward(student, seed, shape, G, case, eps=None):
    x, gamma, beta = norm_inputs(seed, shape)
    gn_param = {} if eps is None else {"eps": eps}
    out, _ = expect_tuple(call_with_channel_params(student, "spatial_groupnorm_forward", x, gamma,
                                                   beta, G, dict(gn_param)),
                          2, "spatial_groupnorm_forward")
    expected, _ = spatial_groupnorm_forward(x, gamma, beta, G, dict(gn_param))
    expect_array(out, expected, f"out ({case})", rtol=RTOL, atol=ATOL)


@pytest.mark.points(2)
def test_spatial_groupnorm_forward_with_two_groups_of_three_channels(student):
    _check_gn_forward(student, 3701, (2, 6, 4, 5), 2,
                      "G = 2 groups of 3 consecutive channels")


@pytest.mark.points(1)
def test_spatial_groupnorm_forward_with_one_group_is_layer_norm(student):
    _check_gn_forward(student, 3702, (3, 4, 3, 3), 1, "G = 1 (layer norm over C, H, W)")


@pytest.mark.points(1)
def test_spatial_groupnorm_forward_with_one_channel_per_group_is_instance_norm(student):
    _check_gn_forward(student, 3703, (2, 4, 3, 5), 4, "G = C (instance norm)")


@pytest.mark.points(1)
def test_spatial_groupnorm_forward_with_one_image_and_custom_eps(student):
    _check_gn_forward(student, 3704, (1, 6, 2, 7), 3, "one image, G = 3, 2x7, eps = 0.3",
                      eps=0.3)


@pytest.mark.points(1)
def test_spatial_groupnorm_forward_does_not_modify_its_input(student):
    x, gamma, beta = norm_inputs(3705, (2, 4, 3, 3))
    call_with_channel_params(student, "spatial_groupnorm_forward", x, gamma, beta, 2, {})
    after = student.last_call.after
    expect_unchanged({"x": x, "gamma": gamma, "beta": beta},
                     {"x": after.get(0), "gamma": after.get(1), "beta": after.get(2)},
                     "spatial_groupnorm_forward")
    expect_param_unchanged({}, after.get(4), "spatial_groupnorm_forward", "gn_param")


def _check_gn_backward(student, seed, shape, G, case, eps=None, calls=1):
    x, gamma, beta = norm_inputs(seed, shape)
    gn_param = {} if eps is None else {"eps": eps}
    _, cache = expect_tuple(call_with_channel_params(student, "spatial_groupnorm_forward", x,
                                                     gamma, beta, G, dict(gn_param)),
                            2, "spatial_groupnorm_forward")
    _, reference_cache = spatial_groupnorm_forward(x, gamma, beta, G, dict(gn_param))
    rng = np.random.default_rng(seed + 50)
    for call in range(calls):
        dout = rng.standard_normal(shape)
        grads = expect_tuple(student.spatial_groupnorm_backward(dout, cache), 3,
                             "spatial_groupnorm_backward")
        expect_norm_grads(grads, spatial_groupnorm_backward(dout, reference_cache),
                          case + (SECOND_CALL if call else ""))


@pytest.mark.points(2)
def test_spatial_groupnorm_backward_with_two_groups_of_three_channels(student):
    _check_gn_backward(student, 3801, (2, 6, 4, 5), 2, "G = 2 groups of 3 consecutive channels")


@pytest.mark.points(1)
def test_spatial_groupnorm_backward_with_one_group(student):
    _check_gn_backward(student, 3802, (3, 4, 3, 3), 1, "G = 1 (layer norm over C, H, W)")


@pytest.mark.points(1)
def test_spatial_groupnorm_backward_with_one_channel_per_group(student):
    _check_gn_backward(student, 3803, (2, 4, 3, 5), 4, "G = C (instance norm)")


@pytest.mark.points(1)
def test_spatial_groupnorm_backward_with_one_image_and_custom_eps(student):
    _check_gn_backward(student, 3804, (1, 6, 2, 7), 3, "one image, G = 3, 2x7, eps = 0.3",
                       eps=0.3)


@pytest.mark.points(1)
def test_spatial_groupnorm_backward_leaves_the_cache_usable_for_a_second_call(student):
    _check_gn_backward(student, 3805, (2, 6, 3, 4), 3, "G = 3", calls=2)
