"""Hidden tests of dropout_forward and dropout_backward (a2_fully_connected).

The contract fixes what dropout computes but not how the mask is drawn: p is the probability of
DROPPING a unit, kept units are scaled by 1 / (1 - p), a seed in dropout_param means
np.random.seed(seed) before drawing, and test mode is the identity. `rand >= p` and
`rand < 1 - p` are both correct and give different masks for the same seed, so training mode
is graded by what every correct mask satisfies:

* exactly: every output is 0 or x / (1 - p) (rtol 1e-12: one multiplication or division of
  rounding); test mode returns x exactly; the same seed gives the same output, another seed
  (or no seed, twice) a different one; backward is dout times the forward's own mask, which
  is recovered from the student's forward output as out / x (inputs have no zeros);
* statistically, on 60 000 units: the kept fraction is within 0.015 of 1 - p (the standard
  deviation of the fraction is at most 0.002, so 0.015 is 7 sigma) and the output mean within
  3% of the input mean (inputs ~ N(10, 1): the relative standard deviation of the mean is at
  most 0.7% for p <= 0.7, so 3% is 4 sigma or more). The inputs are seeded, so the grade is
  deterministic for a given implementation; the margins make it independent of the draw.

Other course years use p as the probability of KEEPING a unit (CS231n since 2019:
`dropout_keep_ratio`). A result that matches that convention (a kept fraction of p, kept units
scaled by 1 / p) fails with a message that says so. The mask is drawn once per forward call and
reused by the backward pass (pinned: `..._uses_the_mask_of_the_forward_pass`); dropout_param is
not documented as updated, so it must come back unchanged; a backward may be called twice with
one cache.
"""

import numpy as np
import pytest

from autograder.checks import GradingFailure, expect_array, expect_tuple, expect_unchanged

SHAPE = (200, 300)


def big_input(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(SHAPE) + 10.0     # no zeros


def forward(student, x, param) -> np.ndarray:
    """The student's out for dropout_forward(x, a copy of param)."""
    out, _ = expect_tuple(student.dropout_forward(x, dict(param)), 2, "dropout_forward")
    return expect_array(out, x, "out", rtol=0, atol=np.inf)    # type, dtype, shape only


def kept_mask(out: np.ndarray, x: np.ndarray, p: float, what: str = "out") -> np.ndarray:
    """The kept units; fails unless every output is exactly 0 or x / (1 - p)."""
    kept = out != 0
    scaled = np.isclose(out, x / (1 - p), rtol=1e-12, atol=0)
    wrong = int(np.count_nonzero(kept & ~scaled))
    if wrong and p not in (0.5, 1.0) and np.allclose(out[kept], x[kept] / p, rtol=1e-12, atol=0):
        raise GradingFailure(f"{what}: kept units are scaled by 1 / p (p = {p}), the keep "
                             "probability of another course year; in this course p is the "
                             "probability of DROPPING a unit, so kept units are scaled by "
                             "1 / (1 - p) (CONTRACT.md)")
    if wrong:
        raise GradingFailure(f"{what}: {wrong} kept units are not x / (1 - p) (p = {p}); "
                             "inverted dropout scales every kept unit by 1 / (1 - p)")
    return kept


# ----------------------------------------------------------------------------- forward

@pytest.mark.points(1)
def test_dropout_forward_test_mode_returns_x(student):
    x = np.random.default_rng(9101).standard_normal((6, 7))
    out = forward(student, x, {"p": 0.3, "mode": "test", "seed": 1})
    expect_array(out, x, "out in test mode", rtol=0, atol=0)


@pytest.mark.points(1)
@pytest.mark.parametrize("p", [0.25, 0.7])
def test_dropout_forward_drops_a_fraction_p_of_the_units(student, p):
    x = big_input(9102)
    out = forward(student, x, {"p": p, "mode": "train", "seed": 231})
    kept = kept_mask(out, x, p).mean()
    if abs(kept - p) <= 0.015 < abs(kept - (1 - p)):
        raise GradingFailure(f"with p = {p} you kept {kept:.1%} of the units, about p: that is "
                             "p used as the probability of KEEPING a unit (another course "
                             "year's convention); in this course p is the probability of "
                             f"DROPPING a unit, so about {1 - p:.0%} should be kept (CONTRACT.md)")
    if abs(kept - (1 - p)) > 0.015:
        raise GradingFailure(f"with p = {p} about {1 - p:.0%} of the units should be kept "
                             f"(p is the probability of dropping a unit); {kept:.1%} were kept")


@pytest.mark.points(2)
def test_dropout_forward_scales_kept_units_by_one_over_one_minus_p(student):
    x = np.random.default_rng(9103).standard_normal((30, 40)) + 3.0
    out = forward(student, x, {"p": 0.4, "mode": "train", "seed": 5})
    kept = kept_mask(out, x, 0.4)
    if not kept.any() or kept.all():
        raise GradingFailure("with p = 0.4 some units should be kept and some dropped")


@pytest.mark.points(1)
def test_dropout_forward_preserves_the_mean_in_train_mode(student):
    x = big_input(9104)
    for p in (0.4, 0.7):
        out = forward(student, x, {"p": p, "mode": "train", "seed": 17})
        ratio = out.mean() / x.mean()
        if abs(ratio - 1) > 0.03:
            raise GradingFailure(f"with p = {p} the mean of out should be about the mean of x "
                                 f"(inverted dropout); it is {ratio:.2f} times it")


@pytest.mark.points(1)
def test_dropout_forward_with_p_zero_keeps_every_unit(student):
    x = np.random.default_rng(9105).standard_normal((8, 9))
    out = forward(student, x, {"p": 0.0, "mode": "train", "seed": 3})
    expect_array(out, x, "out with p = 0", rtol=1e-12, atol=0)


@pytest.mark.points(1)
def test_dropout_forward_same_seed_gives_the_same_mask(student):
    x = np.random.default_rng(9106).standard_normal((20, 30)) + 5.0
    first = forward(student, x, {"p": 0.5, "mode": "train", "seed": 123})
    again = forward(student, x, {"p": 0.5, "mode": "train", "seed": 123})
    other = forward(student, x, {"p": 0.5, "mode": "train", "seed": 124})
    if not np.array_equal(first, again):
        raise GradingFailure("two calls with the same dropout_param['seed'] gave different "
                             "outputs; call np.random.seed(seed) before drawing the mask")
    if np.array_equal(first, other):
        raise GradingFailure("different seeds gave the same mask; the mask must come from "
                             "np.random after np.random.seed(dropout_param['seed'])")


@pytest.mark.points(1)
def test_dropout_forward_without_a_seed_draws_a_new_mask_each_call(student):
    x = np.random.default_rng(9107).standard_normal((20, 30)) + 5.0
    first = forward(student, x, {"p": 0.5, "mode": "train"})
    second = forward(student, x, {"p": 0.5, "mode": "train"})
    if np.array_equal(first, second):
        raise GradingFailure("without dropout_param['seed'] two calls gave the same mask; "
                             "seed only when a seed is given")


@pytest.mark.points(1)
def test_dropout_forward_does_not_modify_x(student):
    x = np.random.default_rng(9108).standard_normal((10, 12))
    student.dropout_forward(x, {"p": 0.5, "mode": "train", "seed": 8})
    expect_unchanged({"x": x}, {"x": student.last_call.after.get(0)}, "dropout_forward")


@pytest.mark.points(1)
def test_dropout_forward_does_not_modify_dropout_param(student):
    # dropout_param is not documented as updated: seed, p and mode must come back as they went.
    x = np.random.default_rng(9109).standard_normal((6, 4)) + 4.0
    for param in ({"p": 0.3, "mode": "train", "seed": 11}, {"p": 0.3, "mode": "train"},
                  {"p": 0.3, "mode": "test", "seed": 11}):
        forward(student, x, param)
        after = student.last_call.after.get(1)
        if after != param:
            raise GradingFailure(f"dropout_forward changed dropout_param {param} (it came back "
                                 f"as {after!r}); only bn_param and an optimizer's config are "
                                 "documented as updated")


# ----------------------------------------------------------------------------- backward

def backward_case(student, seed: int, param: dict):
    x = np.random.default_rng(seed).standard_normal((25, 16)) + 4.0
    dout = np.random.default_rng(seed + 1).standard_normal(x.shape)
    out, cache = expect_tuple(student.dropout_forward(x, dict(param)), 2, "dropout_forward")
    out = expect_array(out, x, "out of dropout_forward", rtol=0, atol=np.inf)
    dx = student.dropout_backward(dout, cache)
    return x, dout, out, dx


@pytest.mark.points(2)
def test_dropout_backward_uses_the_mask_of_the_forward_pass(student):
    x, dout, out, dx = backward_case(student, 9201, {"p": 0.4, "mode": "train", "seed": 42})
    expect_array(dx, dout * (out / x), "dx (should be dout times the forward's mask)",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(1)
def test_dropout_backward_reuses_an_unseeded_mask(student):
    # Without a seed, the only copy of the mask is the cache: drawing again gives another one.
    x, dout, out, dx = backward_case(student, 9203, {"p": 0.5, "mode": "train"})
    expect_array(dx, dout * (out / x), "dx (should be dout times the forward's mask)",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.points(1)
def test_dropout_backward_test_mode_passes_dout_through(student):
    _, dout, _, dx = backward_case(student, 9205, {"p": 0.3, "mode": "test"})
    expect_array(dx, dout, "dx in test mode", rtol=0, atol=0)


@pytest.mark.points(1)
def test_dropout_backward_leaves_the_cache_usable_for_a_second_call(student):
    x = np.random.default_rng(9209).standard_normal((10, 8)) + 4.0
    rng = np.random.default_rng(9210)
    out, cache = expect_tuple(student.dropout_forward(x, {"p": 0.5, "mode": "train"}), 2,
                              "dropout_forward")
    out = expect_array(out, x, "out of dropout_forward", rtol=0, atol=np.inf)
    for call in ("first", "second"):
        dout = rng.standard_normal(x.shape)
        expect_array(student.dropout_backward(dout, cache), dout * (out / x),
                     f"dx of the {call} backward call with the same cache (dout times the "
                     "forward's mask; a backward pass must not change its cache)",
                     rtol=1e-10, atol=1e-12)


@pytest.mark.points(1)
def test_dropout_backward_does_not_modify_dout(student):
    x = np.random.default_rng(9207).standard_normal((6, 5)) + 4.0
    dout = np.random.default_rng(9208).standard_normal(x.shape)
    _, cache = expect_tuple(student.dropout_forward(x, {"p": 0.5, "mode": "train", "seed": 9}),
                            2, "dropout_forward")
    student.dropout_backward(dout, cache)
    expect_unchanged({"dout": dout}, {"dout": student.last_call.after.get(0)},
                     "dropout_backward")
