"""Data augmentation: each transform's behaviour, determinism, dtype and input safety."""
from functools import partial

import numpy as np
import pytest

from course_lib.data import (
    Compose,
    augment_batch,
    color_jitter,
    cutout,
    mixup,
    random_crop,
    random_flip,
)

TRANSFORMS = {
    "flip": random_flip,
    "crop": random_crop,
    "crop_smaller": partial(random_crop, pad=2, crop_size=(5, 6)),
    "jitter": color_jitter,
    "cutout": partial(cutout, size=3),
    "mixup_images": lambda X, rng: mixup(X, np.arange(len(X)) % 3, rng)[0],
}


def _batch(rng, N=6, C=3, H=8, W=8, dtype=np.float64):
    return rng.standard_normal((N, C, H, W)).astype(dtype)


# ---------------------------------------------------------------------------------------------
# properties shared by every transform


@pytest.mark.parametrize("name", TRANSFORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_keeps_dtype_and_does_not_modify_its_input(rng, name, dtype):
    X = _batch(rng, dtype=dtype)
    X_copy = X.copy()
    out = TRANSFORMS[name](X, rng)
    assert out.dtype == dtype
    assert not np.shares_memory(out, X)
    np.testing.assert_array_equal(X, X_copy)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_transform_is_deterministic_for_a_seed(rng, name):
    X = _batch(rng, N=16)
    a = TRANSFORMS[name](X, np.random.default_rng(7))
    b = TRANSFORMS[name](X, np.random.default_rng(7))
    c = TRANSFORMS[name](X, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------------------------------------
# random_flip


def test_flip_with_p_one_mirrors_and_flipping_twice_is_the_identity(rng):
    X = _batch(rng)
    once = random_flip(X, rng, p=1.0)
    np.testing.assert_array_equal(once, X[:, :, :, ::-1])
    np.testing.assert_array_equal(random_flip(once, rng, p=1.0), X)
    np.testing.assert_array_equal(random_flip(X, rng, p=0.0), X)


def test_flip_mirrors_each_image_independently(rng):
    X = _batch(rng, N=200, C=1, H=2, W=3)
    out = random_flip(X, rng, p=0.5)
    flipped = np.array([np.array_equal(o, x[:, :, ::-1]) for o, x in zip(out, X, strict=True)])
    kept = np.array([np.array_equal(o, x) for o, x in zip(out, X, strict=True)])
    assert np.all(flipped ^ kept)            # each image is either mirrored or untouched
    # Binomial(200, 0.5): 60..140 holds with probability 1 - 1e-8.
    assert 60 <= flipped.sum() <= 140


# ---------------------------------------------------------------------------------------------
# random_crop


def test_crop_with_zero_padding_is_the_identity(rng):
    X = _batch(rng)
    np.testing.assert_array_equal(random_crop(X, rng, pad=0), X)


def _offset_of(window, padded):
    """The (top, left) at which window occurs in padded (unique since values are distinct)."""
    h, w = window.shape[-2:]
    for top in range(padded.shape[-2] - h + 1):
        for left in range(padded.shape[-1] - w + 1):
            if np.array_equal(padded[..., top:top + h, left:left + w], window):
                return top, left
    raise AssertionError("window not found in the padded image")


@pytest.mark.parametrize("crop_size, offsets_per_axis", [(None, 5), (3, 6)])
def test_crop_takes_a_window_of_the_padded_image_at_every_offset(rng, crop_size,
                                                                 offsets_per_axis):
    pad, N, H, W = 2, 500, 4, 4
    # Distinct positive values, so zeros can only come from the padding.
    X = np.tile(np.arange(1.0, 1 + 2 * H * W).reshape(1, 2, H, W), (N, 1, 1, 1))
    out = random_crop(X, rng, pad=pad, crop_size=crop_size)
    h = H if crop_size is None else crop_size
    assert out.shape == (N, 2, h, h)
    padded = np.pad(X[0], ((0, 0), (pad, pad), (pad, pad)))
    seen = {_offset_of(o, padded) for o in out}
    # Every offset in [0, H + 2*pad - h]^2 occurs and no other: with 500 draws over <= 36
    # offsets a missing one has probability < 36 * (35/36)**500 < 1e-4 (and the seed is fixed).
    assert seen == {(t, left) for t in range(offsets_per_axis)
                    for left in range(offsets_per_axis)}


def test_crop_size_can_be_rectangular(rng):
    assert random_crop(_batch(rng), rng, pad=1, crop_size=(3, 5)).shape == (6, 3, 3, 5)


# ---------------------------------------------------------------------------------------------
# color_jitter


def test_color_jitter_with_zero_strength_is_the_identity(rng):
    X = _batch(rng)
    out = color_jitter(X, rng, brightness=0, contrast=0, saturation=0)
    np.testing.assert_allclose(out, X, rtol=0, atol=1e-12)


def test_brightness_scales_each_image_by_one_factor_in_range(rng):
    X = rng.uniform(0.1, 1.0, size=(50, 3, 4, 4))
    out = color_jitter(X, rng, brightness=0.3, contrast=0, saturation=0)
    ratios = out / X
    factors = ratios[:, 0, 0, 0]
    np.testing.assert_allclose(ratios, factors[:, None, None, None] * np.ones_like(X),
                               rtol=1e-12)
    assert factors.min() >= 0.7 and factors.max() <= 1.3
    assert factors.max() - factors.min() > 0.3      # factors differ between images


def test_contrast_keeps_the_mean_grey_level_and_scales_deviations(rng):
    X = rng.uniform(0, 1, size=(20, 3, 5, 5))
    out = color_jitter(X, rng, brightness=0, contrast=0.5, saturation=0)
    luma = np.array([0.299, 0.587, 0.114])[None, :, None, None]
    mean_grey = (X * luma).sum(axis=1).mean(axis=(1, 2))
    np.testing.assert_allclose((out * luma).sum(axis=1).mean(axis=(1, 2)), mean_grey,
                               atol=1e-12)
    dev_ratio = (out - mean_grey[:, None, None, None]) / (X - mean_grey[:, None, None, None])
    assert np.all((dev_ratio > 0.5 - 1e-9) & (dev_ratio < 1.5 + 1e-9))


def test_saturation_leaves_grey_images_and_single_channel_images_alone(rng):
    grey_rgb = np.repeat(rng.uniform(0, 1, size=(10, 1, 4, 4)), 3, axis=1)
    np.testing.assert_allclose(color_jitter(grey_rgb, rng, brightness=0, contrast=0,
                                            saturation=1.0), grey_rgb, atol=1e-12)
    mono = rng.uniform(0, 1, size=(10, 1, 4, 4))
    np.testing.assert_allclose(color_jitter(mono, rng, brightness=0, contrast=0,
                                            saturation=1.0), mono, atol=1e-12)


def test_saturation_changes_colourful_images(rng):
    X = rng.uniform(0, 1, size=(10, 3, 4, 4))
    out = color_jitter(X, rng, brightness=0, contrast=0, saturation=0.5)
    assert not np.allclose(out, X)


# ---------------------------------------------------------------------------------------------
# cutout


@pytest.mark.parametrize("size", [3, 4])
def test_cutout_zeroes_one_square_clipped_at_the_border(rng, size):
    N, H, W = 400, 10, 12
    X = np.ones((N, 2, H, W))
    out = cutout(X, rng, size=size)
    full = clipped = 0
    for img in out:
        np.testing.assert_array_equal(img[0], img[1])          # same square in every channel
        rows, cols = np.nonzero(img[0] == 0)
        assert rows.size > 0
        r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
        # The zeros form one filled rectangle of at most size x size.
        assert rows.size == (r1 - r0 + 1) * (c1 - c0 + 1)
        assert r1 - r0 + 1 <= size and c1 - c0 + 1 <= size
        if 0 < r0 and r1 < H - 1 and 0 < c0 and c1 < W - 1:
            assert rows.size == size * size                  # fully inside: exactly size^2
            full += 1
        elif rows.size < size * size:
            clipped += 1
    assert full > 0 and clipped > 0


def test_cutout_square_is_centred_on_a_pixel_of_the_image(rng):
    # size 1 zeroes exactly its centre pixel, which is uniform over the whole image.
    out = cutout(np.ones((500, 1, 3, 3)), rng, size=1)
    assert np.all((out == 0).sum(axis=(1, 2, 3)) == 1)
    assert np.all((out == 0).any(axis=0))                  # every pixel gets chosen


# ---------------------------------------------------------------------------------------------
# mixup


def test_mixup_labels_sum_to_one_and_images_use_the_same_convex_combination():
    rng = np.random.default_rng(0)
    N = 12
    X = rng.standard_normal((N, 3, 4, 4))
    y = np.arange(N)                    # distinct labels reveal the partner of each sample
    X_mixed, y_soft = mixup(X, y, rng, alpha=1.0)
    assert y_soft.shape == (N, N) and X_mixed.shape == X.shape
    np.testing.assert_allclose(y_soft.sum(axis=1), 1, atol=1e-12)
    assert np.all(y_soft >= 0)
    partners = []
    lams = []
    for i in range(N):
        if y_soft[i, i] == 1.0:         # paired with itself by the permutation
            partners.append(i)
            np.testing.assert_allclose(X_mixed[i], X[i], atol=1e-12)
            continue
        lam = y_soft[i, i]
        others = np.flatnonzero(y_soft[i])
        j = int(others[others != i][0])
        partners.append(j)
        lams.append(lam)
        np.testing.assert_allclose(y_soft[i, j], 1 - lam, atol=1e-12)
        np.testing.assert_allclose(X_mixed[i], lam * X[i] + (1 - lam) * X[j], atol=1e-12)
    assert sorted(partners) == list(range(N))          # partners form a permutation
    np.testing.assert_allclose(lams, lams[0], atol=1e-12)  # one lambda for the whole batch


def test_mixup_num_classes_and_float32(rng):
    X = _batch(rng, dtype=np.float32)
    X_mixed, y_soft = mixup(X, np.array([0, 1, 2, 0, 1, 2]), rng, num_classes=10)
    assert y_soft.shape == (6, 10) and y_soft.dtype == np.float32
    assert X_mixed.dtype == np.float32
    np.testing.assert_allclose(y_soft[:, 3:], 0)


# ---------------------------------------------------------------------------------------------
# Compose / augment_batch


def test_compose_applies_transforms_in_order_with_one_generator(rng):
    X = _batch(rng)
    transforms = [random_flip, partial(random_crop, pad=2), partial(cutout, size=2)]
    expected_rng = np.random.default_rng(1)
    expected = X
    for t in transforms:
        expected = t(expected, expected_rng)
    np.testing.assert_array_equal(Compose(transforms)(X, np.random.default_rng(1)), expected)
    np.testing.assert_array_equal(augment_batch(X, np.random.default_rng(1), transforms),
                                  expected)


def test_empty_compose_returns_a_copy(rng):
    X = _batch(rng)
    out = augment_batch(X, rng, [])
    np.testing.assert_array_equal(out, X)
    assert out is not X


# ---------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("call, error, match", [
    (lambda X, rng: random_flip(X, np.random.RandomState(0)), TypeError, "np.random.Generator"),
    (lambda X, rng: random_flip(X[0], rng), ValueError, "4-D"),
    (lambda X, rng: random_flip(X.astype(np.uint8), rng), TypeError, "float32 or float64"),
    (lambda X, rng: random_flip(X, rng, p=1.5), ValueError, "p must be in"),
    (lambda X, rng: random_crop(X, rng, pad=-1), ValueError, "pad"),
    (lambda X, rng: random_crop(X, rng, pad=1, crop_size=11), ValueError, "crop_size must fit"),
    (lambda X, rng: random_crop(X, rng, crop_size=(2, 0)), ValueError, "crop_size\\[1\\]"),
    (lambda X, rng: color_jitter(X, rng, brightness=1.5), ValueError, "brightness"),
    (lambda X, rng: color_jitter(X, rng, contrast="x"), TypeError, "contrast"),
    (lambda X, rng: cutout(X, rng, size=0), ValueError, "size"),
    (lambda X, rng: mixup(X, np.zeros(5, dtype=int), rng), ValueError, "length 6"),
    (lambda X, rng: mixup(X, np.zeros(6), rng), TypeError, "integer labels"),
    (lambda X, rng: mixup(X, np.arange(6), rng, num_classes=3), ValueError, "\\[0, 3\\)"),
    (lambda X, rng: mixup(X, np.arange(6), rng, alpha=0), ValueError, "alpha"),
    (lambda X, rng: Compose([random_flip, "crop"]), TypeError, "transforms\\[1\\]"),
    (lambda X, rng: augment_batch(X, rng, random_flip), TypeError, "list of callables"),
])
def test_augmentation_rejects_bad_input(rng, call, error, match):
    with pytest.raises(error, match=match):
        call(_batch(rng, H=8, W=8), rng)
