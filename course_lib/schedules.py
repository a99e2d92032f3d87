"""Learning-rate schedules.

Each factory returns a function `schedule(t) -> lr`, where t >= 0 counts epochs or iterations
(the caller decides which; t = 0 is the start) and is a number or an array of numbers (then an
array of rates comes back, handy for plots). Without warm-up, schedule(0) == lr0.

    constant      lr0
    step          lr0 * gamma ** floor(t / step_size)
    exponential   lr0 * decay_rate ** t
    inverse_time  lr0 / (1 + k * t)
    cosine        lr_min + (lr0 - lr_min) * (1 + cos(pi * t / T)) / 2, then lr_min for t >= T
    linear        lr0 + (lr_end - lr0) * t / T, then lr_end for t >= T
    inverse_sqrt  lr0 * min(s / W, sqrt(W / s)) with s = t + 1 (warm-up W, as in the Transformer)

get_schedule(name, **kwargs) builds one by name, e.g. get_schedule("cosine", lr0=0.1,
total_steps=20); a Solver sets config['learning_rate'] = schedule(epoch) before each epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

import numpy as np

from course_lib.validation import check_nonnegative_int, check_positive_int

__all__ = [
    "constant_schedule", "step_decay", "exponential_decay", "inverse_time_decay",
    "cosine_schedule", "linear_schedule", "inverse_sqrt_schedule",
    "get_schedule", "SCHEDULES",
]

Schedule = Callable[[float], float]


# --------------------------------------------------------------------------- argument checks
def _real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number; got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    return value


def _positive(value, name: str) -> float:
    value = _real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be > 0; got {value}")
    return value


def _factor(value, name: str) -> float:
    """A multiplicative decay factor in (0, 1]."""
    value = _real(value, name)
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1]; got {value}")
    return value


def _end_rate(value, name: str, lr0: float) -> float:
    value = _real(value, name)
    if not 0 <= value <= lr0:
        raise ValueError(f"{name} must be in [0, lr0={lr0}]; got {value}")
    return value


def _times(t) -> np.ndarray:
    """t as a float64 array of non-negative finite numbers."""
    times = np.asarray(t)
    if times.dtype.kind not in "iuf":  # not bool, str or object
        raise TypeError(f"t must be a number >= 0 or an array of them; got "
                        f"{type(t).__name__}" + (f" of dtype {times.dtype}"
                                                 if isinstance(t, np.ndarray) else ""))
    times = times.astype(np.float64)
    if not np.all(np.isfinite(times)) or np.any(times < 0):
        raise ValueError(f"t must be >= 0 and finite (the epoch or iteration); got {t!r}")
    return times


def _scalar_or_array(values: np.ndarray, t):
    return float(values) if np.ndim(t) == 0 else values


# --------------------------------------------------------------------------- schedules
def constant_schedule(lr0: float) -> Schedule:
    """lr(t) = lr0."""
    lr0 = _positive(lr0, "lr0")

    def schedule(t):
        return _scalar_or_array(np.full_like(_times(t), lr0), t)
    return schedule


def step_decay(lr0: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """lr(t) = lr0 * gamma ** floor(t / step_size): multiplied by gamma every step_size epochs."""
    lr0 = _positive(lr0, "lr0")
    step_size = check_positive_int(step_size, "step_size")
    gamma = _factor(gamma, "gamma")

    def schedule(t):
        return _scalar_or_array(lr0 * gamma ** np.floor(_times(t) / step_size), t)
    return schedule


def exponential_decay(lr0: float, decay_rate: float) -> Schedule:
    """lr(t) = lr0 * decay_rate ** t (CS231n's lr_decay applied once per epoch)."""
    lr0 = _positive(lr0, "lr0")
    decay_rate = _factor(decay_rate, "decay_rate")

    def schedule(t):
        return _scalar_or_array(lr0 * decay_rate ** _times(t), t)
    return schedule


def inverse_time_decay(lr0: float, k: float) -> Schedule:
    """lr(t) = lr0 / (1 + k * t), the 1/t decay; k >= 0."""
    lr0 = _positive(lr0, "lr0")
    k = _real(k, "k")
    if k < 0:
        raise ValueError(f"k must be >= 0; got {k}")

    def schedule(t):
        return _scalar_or_array(lr0 / (1 + k * _times(t)), t)
    return schedule


def cosine_schedule(lr0: float, total_steps: int, lr_min: float = 0.0,
                    warmup_steps: int = 0) -> Schedule:
    """Cosine annealing from lr0 to lr_min over total_steps (T), with optional linear warm-up.

    Without warm-up: lr(t) = lr_min + (lr0 - lr_min) * (1 + cos(pi * t / T)) / 2 for t <= T and
    lr_min after. With warm-up W (0 <= W < T): lr(t) = lr0 * (t + 1) / W for t < W, then the
    cosine over the remaining T - W steps: t is replaced by t - W and T by T - W.
    """
    lr0 = _positive(lr0, "lr0")
    total_steps = check_positive_int(total_steps, "total_steps")
    lr_min = _end_rate(lr_min, "lr_min", lr0)
    warmup_steps = check_nonnegative_int(warmup_steps, "warmup_steps")
    if warmup_steps >= total_steps:
        raise ValueError(f"warmup_steps must be < total_steps={total_steps}; got {warmup_steps}")
    span = total_steps - warmup_steps

    def schedule(t):
        times = _times(t)
        progress = np.clip(times - warmup_steps, 0, span) / span
        lr = lr_min + (lr0 - lr_min) * (1 + np.cos(np.pi * progress)) / 2
        if warmup_steps:
            lr = np.where(times < warmup_steps, lr0 * (times + 1) / warmup_steps, lr)
        return _scalar_or_array(lr, t)
    return schedule


def linear_schedule(lr0: float, total_steps: int, lr_end: float = 0.0) -> Schedule:
    """lr(t) = lr0 + (lr_end - lr0) * min(t, T) / T: a straight line from lr0 to lr_end at
    t = T = total_steps (0 by default), constant after."""
    lr0 = _positive(lr0, "lr0")
    total_steps = check_positive_int(total_steps, "total_steps")
    lr_end = _end_rate(lr_end, "lr_end", lr0)

    def schedule(t):
        fraction = np.minimum(_times(t), total_steps) / total_steps
        return _scalar_or_array(lr0 + (lr_end - lr0) * fraction, t)
    return schedule


def inverse_sqrt_schedule(lr0: float, warmup_steps: int = 0) -> Schedule:
    """Inverse square root decay after a linear warm-up (Vaswani et al. 2017, "noam"),
    scaled so that the peak rate is lr0. With s = t + 1 the 1-based step and W = warmup_steps:

    lr(t) = lr0 * min(s / W, sqrt(W / s))   (W > 0: rises to lr0 at s = W, then decays)
    lr(t) = lr0 / sqrt(s)                    (W = 0)
    """
    lr0 = _positive(lr0, "lr0")
    warmup_steps = check_nonnegative_int(warmup_steps, "warmup_steps")

    def schedule(t):
        s = _times(t) + 1
        if warmup_steps == 0:
            return _scalar_or_array(lr0 / np.sqrt(s), t)
        return _scalar_or_array(
            lr0 * np.minimum(s / warmup_steps, np.sqrt(warmup_steps / s)), t)
    return schedule


SCHEDULES: dict[str, Callable[..., Schedule]] = {
    "constant": constant_schedule,
    "step": step_decay,
    "exponential": exponential_decay,
    "inverse_time": inverse_time_decay,
    "cosine": cosine_schedule,
    "linear": linear_schedule,
    "inverse_sqrt": inverse_sqrt_schedule,
}


def get_schedule(name: str, **kwargs) -> Schedule:
    """The schedule called `name` (a key of SCHEDULES), built with the factory's keyword
    arguments, e.g. get_schedule("step", lr0=0.1, step_size=10, gamma=0.5)."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {sorted(SCHEDULES)}")
    return SCHEDULES[name](**kwargs)
