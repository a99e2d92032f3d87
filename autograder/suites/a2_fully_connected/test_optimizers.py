"""Hidden tests of the update rules sgd, sgd_momentum, sgd_nesterov, adagrad, rmsprop, adam.

Each rule is `next_w, config = rule(w, dw, config)`; the state (velocity, cache, m, v, t)
travels in config, and the Solver feeds the returned config into the next call. Expected values
come from course_lib.optim (the oracle), run side by side on deep copies of the same config,
so a multi-step test checks the state after every step. Tolerance (float64): the updates are
elementwise formulas, so a correct implementation differs from the reference by rounding only
(~1e-16 relative); |got - expected| <= 1e-12 + 1e-7 * |expected| accepts that and rejects a
swapped coefficient, a missing bias correction or an un-accumulated cache (all O(1e-3) or more
on these inputs, whose updates are O(1e-2)).
"""

import copy

import numpy as np
import pytest

from autograder.checks import GradingFailure, expect_array, expect_tuple, expect_unchanged
from course_lib import optim

RTOL, ATOL = 1e-7, 1e-12

STATE = {"sgd": (), "sgd_momentum": ("velocity",), "sgd_nesterov": ("velocity",),
         "adagrad": ("cache",), "rmsprop": ("cache",), "adam": ("m", "v")}
DEFAULTS = {"sgd": {"learning_rate": 1e-2},
            "sgd_momentum": {"learning_rate": 1e-2, "momentum": 0.9},
            "sgd_nesterov": {"learning_rate": 1e-2, "momentum": 0.9},
            "adagrad": {"learning_rate": 1e-2, "epsilon": 1e-8},
            "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-8},
            "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8}}
# Hyperparameters other than the defaults, so a hard-coded default is caught.
CUSTOM = {"sgd": {"learning_rate": 0.05},
          "sgd_momentum": {"learning_rate": 0.03, "momentum": 0.6},
          "sgd_nesterov": {"learning_rate": 0.03, "momentum": 0.7},
          "adagrad": {"learning_rate": 0.05, "epsilon": 1e-6},
          "rmsprop": {"learning_rate": 0.02, "decay_rate": 0.9, "epsilon": 1e-6},
          "adam": {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6}}


def weights(seed: int, shape=(4, 6)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape), [rng.standard_normal(shape) for _ in range(5)]


def step(student, rule: str, w, dw, config):
    """One student step; returns (next_w, config) after checking their types."""
    next_w, new_config = expect_tuple(getattr(student, rule)(w, dw, config), 2, rule)
    if type(new_config) is not dict:
        raise GradingFailure(f"{rule} should return (next_w, config) with config a dict; "
                             f"the second item is a {type(new_config).__name__}")
    return next_w, new_config


def compare_state(rule: str, got: dict, want: dict, when: str) -> None:
    for key in STATE[rule]:
        if key not in got:
            raise GradingFailure(f"{rule} should store its state in config['{key}'] ({when})")
        expect_array(got[key], want[key], f"config['{key}'] {when}", rtol=RTOL, atol=ATOL)
    if rule == "adam":
        t = got.get("t")
        if type(t) is not int and not isinstance(t, np.integer):
            raise GradingFailure(f"adam should keep the step count config['t'] as an int "
                                 f"({when}); got {type(t).__name__}")
        if int(t) != want["t"]:
            raise GradingFailure(f"config['t'] is {int(t)} {when}; expected {want['t']} "
                                 "(t is incremented once per step, before it is used)")


def run_steps(student, rule: str, seed: int, config: dict | None, steps: int) -> None:
    """`steps` updates fed back into each other, compared after every step."""
    w, dws = weights(seed)
    mine, ref = copy.deepcopy(config), copy.deepcopy(config)
    for k in range(steps):
        when = f"after step {k + 1}" if steps > 1 else "after one step"
        next_w, mine = step(student, rule, w, dws[k], mine)
        want_w, ref = getattr(optim, rule)(w, dws[k], ref)
        expect_array(next_w, want_w, f"next_w {when}", rtol=RTOL, atol=ATOL)
        compare_state(rule, mine, ref, when)
        w = want_w


def first_step_with_defaults(student, rule: str, seed: int) -> None:
    run_steps(student, rule, seed, None, 1)
    w, dws = weights(seed)
    _, config = step(student, rule, w, dws[0], None)
    for key, value in DEFAULTS[rule].items():
        if not isinstance(config.get(key), float | int) or config[key] != value:
            raise GradingFailure(f"with config=None, {rule} should use (and return) "
                                 f"config['{key}'] = {value}; got {config.get(key)!r}")


def inputs_unchanged(student, rule: str, seed: int) -> None:
    w, dws = weights(seed)
    config = {**CUSTOM[rule]}
    step(student, rule, w, dws[0], config)
    after = student.last_call.after
    expect_unchanged({"w": w, "dw": dws[0]}, {"w": after.get(0), "dw": after.get(1)}, rule)


def given_state(rule: str, seed: int) -> dict:
    """A config in the middle of training: state arrays present (and t for adam)."""
    rng = np.random.default_rng(seed)
    config = {**CUSTOM[rule]}
    for key in STATE[rule]:
        value = rng.standard_normal((4, 6))
        config[key] = np.abs(value) if key in ("cache", "v") else 0.1 * value
    if rule == "adam":
        config["t"] = 4
    return config


# ----------------------------------------------------------------------------- sgd

@pytest.mark.points(1)
def test_sgd_first_step_uses_the_default_learning_rate(student):
    first_step_with_defaults(student, "sgd", 6101)


@pytest.mark.points(1)
def test_sgd_matches_reference_over_several_steps(student):
    run_steps(student, "sgd", 6102, CUSTOM["sgd"], 3)


@pytest.mark.points(1)
def test_sgd_does_not_modify_w_or_dw(student):
    inputs_unchanged(student, "sgd", 6103)


# ----------------------------------------------------------------------------- sgd_momentum

@pytest.mark.points(1)
def test_sgd_momentum_first_step_uses_the_defaults(student):
    first_step_with_defaults(student, "sgd_momentum", 6201)


@pytest.mark.points(1)
def test_sgd_momentum_continues_from_a_given_velocity(student):
    run_steps(student, "sgd_momentum", 6202, given_state("sgd_momentum", 6203), 1)


@pytest.mark.points(2)
def test_sgd_momentum_matches_reference_over_five_steps(student):
    run_steps(student, "sgd_momentum", 6204, CUSTOM["sgd_momentum"], 5)


@pytest.mark.points(1)
def test_sgd_momentum_does_not_modify_w_or_dw(student):
    inputs_unchanged(student, "sgd_momentum", 6205)


# ----------------------------------------------------------------------------- sgd_nesterov

@pytest.mark.points(1)
def test_sgd_nesterov_first_step_uses_the_defaults(student):
    first_step_with_defaults(student, "sgd_nesterov", 6301)


@pytest.mark.points(1)
def test_sgd_nesterov_continues_from_a_given_velocity(student):
    run_steps(student, "sgd_nesterov", 6302, given_state("sgd_nesterov", 6303), 1)


@pytest.mark.points(2)
def test_sgd_nesterov_matches_reference_over_five_steps(student):
    run_steps(student, "sgd_nesterov", 6304, CUSTOM["sgd_nesterov"], 5)


@pytest.mark.points(1)
def test_sgd_nesterov_does_not_modify_w_or_dw(student):
    inputs_unchanged(student, "sgd_nesterov", 6305)


# ----------------------------------------------------------------------------- adagrad

@pytest.mark.points(1)
def test_adagrad_first_step_uses_the_defaults(student):
    first_step_with_defaults(student, "adagrad", 6401)


@pytest.mark.points(1)
def test_adagrad_continues_from_a_given_cache(student):
    run_steps(student, "adagrad", 6402, given_state("adagrad", 6403), 1)


@pytest.mark.points(2)
def test_adagrad_accumulates_the_cache_over_five_steps(student):
    run_steps(student, "adagrad", 6404, CUSTOM["adagrad"], 5)


@pytest.mark.points(1)
def test_adagrad_does_not_modify_w_or_dw(student):
    inputs_unchanged(student, "adagrad", 6405)


# ----------------------------------------------------------------------------- rmsprop

@pytest.mark.points(1)
def test_rmsprop_first_step_uses_the_defaults(student):
    first_step_with_defaults(student, "rmsprop", 6501)


@pytest.mark.points(1)
def test_rmsprop_continues_from_a_given_cache(student):
    run_steps(student, "rmsprop", 6502, given_state("rmsprop", 6503), 1)


@pytest.mark.points(2)
def test_rmsprop_matches_reference_over_five_steps(student):
    run_steps(student, "rmsprop", 6504, CUSTOM["rmsprop"], 5)


@pytest.mark.points(1)
def test_rmsprop_does_not_modify_w_or_dw(student):
    inputs_unchanged(student, "rmsprop", 6505)


# ----------------------------------------------------------------------------- adam

@pytest.mark.points(2)
def test_adam_first_step_uses_the_defaults_and_sets_t_to_1(student):
    first_step_with_defaults(student, "adam", 6601)


@pytest.mark.points(1)
def test_adam_continues_from_given_moments_and_t(student):
    run_steps(student, "adam", 6602, given_state("adam", 6603), 1)


@pytest.mark.points(2)
def test_adam_matches_reference_over_five_steps(student):
    run_steps(student, "adam", 6604, CUSTOM["adam"], 5)


@pytest.mark.points(1)
def test_adam_does_not_modify_w_or_dw(student):
    inputs_unchanged(student, "adam", 6605)
