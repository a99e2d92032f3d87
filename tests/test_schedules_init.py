"""Tests for course_lib.schedules (values at known points) and course_lib.init (standard
deviations on large draws, fan-in of conv weights, seeding)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib.init import (
    fan_in_fan_out,
    gaussian_init,
    he_init,
    init_weights,
    xavier_init,
)
from course_lib.schedules import (
    SCHEDULES,
    constant_schedule,
    cosine_schedule,
    exponential_decay,
    get_schedule,
    inverse_sqrt_schedule,
    inverse_time_decay,
    linear_schedule,
    step_decay,
)

# --------------------------------------------------------------------------- schedules
# (schedule, {t: expected lr}), all values worked out by hand from the docstring formulas.
KNOWN_POINTS = {
    "constant": (constant_schedule(0.3), {0: 0.3, 7: 0.3, 1e6: 0.3}),
    "step": (step_decay(0.1, step_size=10, gamma=0.5),
             {0: 0.1, 9: 0.1, 9.99: 0.1, 10: 0.05, 25: 0.025}),
    "exponential": (exponential_decay(1.0, decay_rate=0.9), {0: 1.0, 1: 0.9, 2: 0.81}),
    "inverse_time": (inverse_time_decay(1.0, k=0.5), {0: 1.0, 2: 0.5, 6: 0.25}),
    "cosine": (cosine_schedule(1.0, total_steps=10),
               {0: 1.0, 5: 0.5, 10: 0.0, 20: 0.0, 10 / 3: 0.75}),
    "cosine lr_min": (cosine_schedule(1.0, total_steps=10, lr_min=0.1),
                      {0: 1.0, 5: 0.55, 10: 0.1, 15: 0.1}),
    "cosine warm-up": (cosine_schedule(1.0, total_steps=12, warmup_steps=2),
                       {0: 0.5, 1: 1.0, 2: 1.0, 7: 0.5, 12: 0.0}),
    "linear": (linear_schedule(1.0, total_steps=4), {0: 1.0, 1: 0.75, 2: 0.5, 4: 0.0, 10: 0.0}),
    "linear lr_end": (linear_schedule(1.0, total_steps=4, lr_end=0.2),
                      {2: 0.6, 4: 0.2, 8: 0.2}),
    "inverse_sqrt": (inverse_sqrt_schedule(1.0), {0: 1.0, 3: 0.5, 99: 0.1}),
    "inverse_sqrt warm-up": (inverse_sqrt_schedule(2.0, warmup_steps=4),
                             {0: 0.5, 1: 1.0, 3: 2.0, 15: 1.0, 63: 0.5}),
}


@pytest.mark.parametrize("case", sorted(KNOWN_POINTS))
def test_schedule_values_at_known_points(case):
    schedule, points = KNOWN_POINTS[case]
    for t, expected in points.items():
        lr = schedule(t)
        assert isinstance(lr, float)
        assert lr == pytest.approx(expected, rel=1e-12, abs=1e-15), (case, t)


@pytest.mark.parametrize("case", sorted(KNOWN_POINTS))
def test_schedule_accepts_an_array_of_times(case):
    schedule, points = KNOWN_POINTS[case]
    times = np.array(sorted(points))
    values = schedule(times)
    assert isinstance(values, np.ndarray) and values.shape == times.shape
    np.testing.assert_allclose(values, [schedule(float(t)) for t in times], rtol=1e-15)


@pytest.mark.parametrize("name, kwargs", [
    ("step", dict(lr0=0.1, step_size=3)), ("exponential", dict(lr0=0.1, decay_rate=0.95)),
    ("inverse_time", dict(lr0=0.1, k=0.2)), ("cosine", dict(lr0=0.1, total_steps=30)),
    ("linear", dict(lr0=0.1, total_steps=30)), ("inverse_sqrt", dict(lr0=0.1)),
])
def test_decaying_schedules_start_at_lr0_and_never_increase(name, kwargs):
    schedule = get_schedule(name, **kwargs)
    values = schedule(np.arange(40))
    assert values[0] == pytest.approx(0.1, rel=1e-15)
    assert np.all(np.diff(values) <= 1e-18) and np.all(values >= 0)


def test_get_schedule_builds_the_named_schedule():
    assert set(SCHEDULES) == {"constant", "step", "exponential", "inverse_time", "cosine",
                              "linear", "inverse_sqrt"}
    by_name = get_schedule("cosine", lr0=0.2, total_steps=8, lr_min=0.01)
    direct = cosine_schedule(0.2, 8, lr_min=0.01)
    t = np.arange(10)
    np.testing.assert_array_equal(by_name(t), direct(t))


def test_get_schedule_rejects_unknown_names_and_arguments():
    with pytest.raises(ValueError, match=r"unknown schedule 'cosin'; choose one of \["):
        get_schedule("cosin", lr0=0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        get_schedule("cosine", lr0=0.1, T=10)


@pytest.mark.parametrize("factory, kwargs, error, match", [
    (constant_schedule, dict(lr0=0.0), ValueError, "lr0 must be > 0"),
    (constant_schedule, dict(lr0="0.1"), TypeError, "lr0 must be a number"),
    (step_decay, dict(lr0=0.1, step_size=0), ValueError, "step_size must be a positive int"),
    (step_decay, dict(lr0=0.1, step_size=2, gamma=1.5), ValueError, r"gamma must be in \(0, 1\]"),
    (step_decay, dict(lr0=0.1, step_size=2, gamma=0.0), ValueError, r"gamma must be in \(0, 1\]"),
    (exponential_decay, dict(lr0=0.1, decay_rate=-0.9), ValueError, "decay_rate must be in"),
    (inverse_time_decay, dict(lr0=0.1, k=-1.0), ValueError, "k must be >= 0"),
    (cosine_schedule, dict(lr0=0.1, total_steps=0), ValueError, "total_steps must be a positive"),
    (cosine_schedule, dict(lr0=0.1, total_steps=5, lr_min=0.2), ValueError,
     r"lr_min must be in \[0, lr0=0.1\]"),
    (cosine_schedule, dict(lr0=0.1, total_steps=5, warmup_steps=5), ValueError,
     "warmup_steps must be < total_steps=5"),
    (linear_schedule, dict(lr0=0.1, total_steps=5, lr_end=-0.1), ValueError, "lr_end must be in"),
    (inverse_sqrt_schedule, dict(lr0=0.1, warmup_steps=-1), ValueError,
     "warmup_steps must be a non-negative int"),
])
def test_schedule_factories_reject_bad_parameters(factory, kwargs, error, match):
    with pytest.raises(error, match=match):
        factory(**kwargs)


def test_schedule_rejects_negative_or_non_numeric_time():
    schedule = cosine_schedule(0.1, 10)
    with pytest.raises(ValueError, match="t must be >= 0"):
        schedule(-1)
    with pytest.raises(ValueError, match="t must be >= 0"):
        schedule(np.array([0.0, float("nan")]))
    with pytest.raises(TypeError, match="t must be a number"):
        schedule("3")


# --------------------------------------------------------------------------- init
def test_fan_in_and_fan_out_for_affine_and_conv_shapes():
    assert fan_in_fan_out((100, 10)) == (100, 10)
    assert fan_in_fan_out((64, 32, 3, 3)) == (32 * 3 * 3, 64 * 3 * 3)
    assert fan_in_fan_out([8, 3, 5, 7]) == (3 * 5 * 7, 8 * 5 * 7)


# (init call, expected std, number of values). The sample std of n normal values has a
# standard error of std / sqrt(2n): 1.6e-3 relative for n = 2e5 and 2.6e-3 for n = 73728.
# A 2% tolerance is > 7 standard errors, while the wrong fan (e.g. fan_in = C for a conv
# weight, or a missing factor 2) is off by 30% or more.
STD_CASES = {
    "gaussian": (lambda rng: gaussian_init((400, 500), weight_scale=0.05, rng=rng), 0.05),
    "xavier fan_in": (lambda rng: xavier_init((400, 500), rng=rng), math.sqrt(1 / 400)),
    "xavier fan_avg": (lambda rng: xavier_init((400, 500), rng=rng, mode="fan_avg"),
                       math.sqrt(2 / 900)),
    "xavier uniform": (lambda rng: xavier_init((400, 500), rng=rng, distribution="uniform"),
                       math.sqrt(1 / 400)),
    "he affine": (lambda rng: he_init((400, 500), rng=rng), math.sqrt(2 / 400)),
    "he conv": (lambda rng: he_init((256, 32, 3, 3), rng=rng), math.sqrt(2 / 288)),
    "he conv uniform": (lambda rng: he_init((256, 32, 3, 3), rng=rng, distribution="uniform"),
                        math.sqrt(2 / 288)),
    "xavier conv": (lambda rng: xavier_init((256, 32, 3, 3), rng=rng), math.sqrt(1 / 288)),
}


@pytest.mark.parametrize("case", sorted(STD_CASES))
def test_init_standard_deviation_matches_its_formula(case):
    make, std = STD_CASES[case]
    w = make(np.random.default_rng(7))
    assert w.std() == pytest.approx(std, rel=0.02)
    assert abs(w.mean()) < 0.02 * std  # standard error of the mean: std / sqrt(n) < 0.004 std
    if "uniform" in case:
        bound = math.sqrt(3) * std
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound


def test_init_dtype_shape_and_same_values_for_both_dtypes():
    w64 = he_init((6, 4, 3, 3), rng=5)
    w32 = he_init((6, 4, 3, 3), rng=5, dtype=np.float32)
    assert w64.shape == (6, 4, 3, 3) and w64.dtype == np.float64 and w32.dtype == np.float32
    np.testing.assert_allclose(w32, w64, rtol=1e-7)  # float32 rounding of the same draw


def test_init_seeding_generator_int_and_global_state():
    a = gaussian_init((3, 4), rng=np.random.default_rng(1))
    b = gaussian_init((3, 4), rng=1)
    np.testing.assert_array_equal(a, b)
    np.random.seed(231)
    c = gaussian_init((3, 4), weight_scale=1e-3)
    np.random.seed(231)
    # rng=None draws from NumPy's global generator, exactly as CS231n's weight_scale * randn
    np.testing.assert_array_equal(c, 1e-3 * np.random.randn(3, 4))


@pytest.mark.parametrize("method, direct", [
    ("gaussian", lambda: gaussian_init((5, 3), 0.1, rng=0)),
    ("xavier", lambda: xavier_init((5, 3), rng=0)),
    ("he", lambda: he_init((5, 3), rng=0)),
])
def test_init_weights_by_name_matches_the_function(method, direct):
    np.testing.assert_array_equal(init_weights((5, 3), method, weight_scale=0.1, rng=0), direct())


def test_init_weights_passes_options_to_xavier():
    np.testing.assert_array_equal(init_weights((5, 3), "xavier", rng=0, mode="fan_avg"),
                                  xavier_init((5, 3), rng=0, mode="fan_avg"))


@pytest.mark.parametrize("call, error, match", [
    (lambda: init_weights((5, 3), "kaiming"), ValueError,
     r"unknown init method 'kaiming'; choose one of \['gaussian', 'xavier', 'he'\]"),
    (lambda: init_weights((5, 3), "gaussian", mode="fan_in"), TypeError, "takes no options"),
    (lambda: he_init((10,)), ValueError, "at least 2 positive dimensions"),
    (lambda: he_init((10, 0)), ValueError, "at least 2 positive dimensions"),
    (lambda: he_init(10), TypeError, "shape must be a tuple of ints"),
    (lambda: he_init((10, 2.0)), TypeError, "shape must be a tuple of ints"),
    (lambda: he_init((10, 2), dtype=np.int64), TypeError, "dtype must be np.float32"),
    (lambda: gaussian_init((10, 2), weight_scale=-1.0), ValueError, "weight_scale must be"),
    (lambda: xavier_init((10, 2), mode="fan_out"), ValueError, "mode must be 'fan_in'"),
    (lambda: he_init((10, 2), distribution="laplace"), ValueError, "distribution must be"),
    (lambda: he_init((10, 2), rng="seed"), TypeError, "rng must be a np.random.Generator"),
])
def test_init_rejects_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
