"""Which values share one mean and variance in batch, layer, instance and group norm.

An activation tensor (N, C, H, W) is drawn as a block of N x C x (H*W) cubes, as in Wu & He
(2018), "Group Normalization", figure 2. For one chosen value at (sample n, channel c), the
cubes that are normalised with the same mean and variance are shaded:

    batch norm      same channel c, every sample:          over N, H, W
    layer norm      same sample n, every channel:          over C, H, W
    instance norm   same sample n and channel c:           over H, W
    group norm      same sample n, the C/G channels of c's group:  over C/G, H, W

`shared_statistics_mask` computes the shaded set; the figure only draws it, and the tests check
the mask against what course_lib's layers actually compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from course_lib.validation import check_nonnegative_int, check_positive_int

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.figure import Figure

__all__ = ["NORMALIZERS", "shared_statistics_mask", "plot_normalization_axes"]

NORMALIZERS = ("batch norm", "layer norm", "instance norm", "group norm")


def _check_normalizer(normalizer: object) -> str:
    if normalizer not in NORMALIZERS:
        raise ValueError(f"normalizer must be one of {NORMALIZERS}; got {normalizer!r}")
    return str(normalizer)


def _check_block(shape: object, num_groups: object) -> tuple[int, int, int, int]:
    if not isinstance(shape, Sequence) or len(shape) != 3:
        raise ValueError(f"shape must be (N, C, H*W), three positive ints; got {shape!r}")
    N, C, HW = (check_positive_int(s, f"shape[{i}]") for i, s in enumerate(shape))
    G = check_positive_int(num_groups, "num_groups")
    if C % G:
        raise ValueError(f"num_groups must divide the number of channels C={C}; got {G}")
    return N, C, HW, G


def shared_statistics_mask(normalizer: str, shape: Sequence[int], sample: int, channel: int,
                           num_groups: int = 2) -> np.ndarray:
    """Boolean mask (N, C, H*W): the values normalised with the same mean and variance as the
    values of (sample, channel).

    normalizer: one of NORMALIZERS; shape: (N, C, H*W); num_groups (G) is used by group norm
    only and must divide C.
    """
    normalizer = _check_normalizer(normalizer)
    N, C, HW, G = _check_block(shape, num_groups)
    n, c = check_nonnegative_int(sample, "sample"), check_nonnegative_int(channel, "channel")
    if n >= N or c >= C:
        raise ValueError(f"(sample, channel) must index the block of shape {(N, C, HW)}; "
                         f"got ({n}, {c})")
    same_sample = np.arange(N)[:, None] == n                        # (N, 1)
    same_channel = np.arange(C)[None, :] == c                       # (1, C)
    same_group = (np.arange(C) // (C // G))[None, :] == c // (C // G)
    shared = {
        "batch norm": np.ones((N, 1), bool) & same_channel,
        "layer norm": same_sample & np.ones((1, C), bool),
        "instance norm": same_sample & same_channel,
        "group norm": same_sample & same_group,
    }[normalizer]
    return np.repeat(shared[:, :, None], HW, axis=2)


def plot_normalization_axes(shape: Sequence[int] = (4, 6, 5), num_groups: int = 2,
                            sample: int = 1, channel: int = 2,
                            normalizers: Sequence[str] = NORMALIZERS,
                            figsize: tuple[float, float] | None = None) -> Figure:
    """One panel per normalizer: the (N, C, H*W) block, the shared-statistics set shaded.

    Returns the Figure (one 3-D axes per normalizer, in the order given).
    """
    import matplotlib.pyplot as plt

    N, C, HW, G = _check_block(shape, num_groups)
    normalizers = [_check_normalizer(name) for name in normalizers]
    if not normalizers:
        raise ValueError("normalizers must name at least one of " + ", ".join(NORMALIZERS))
    fig = plt.figure(figsize=figsize or (3.4 * len(normalizers), 3.8))
    for i, name in enumerate(normalizers, start=1):
        mask = shared_statistics_mask(name, (N, C, HW), sample, channel, G)
        # voxels are indexed (x, y, z): x = channel, y = sample, z = spatial position. Two calls,
        # so that the shaded set keeps all its faces inside the translucent rest of the block.
        shaded = mask.transpose(1, 0, 2)
        ax = fig.add_subplot(1, len(normalizers), i, projection="3d")
        ax.voxels(~shaded, facecolors=(0.85, 0.85, 0.85, 0.12), edgecolor=(0.4, 0.4, 0.4, 0.25),
                  linewidth=0.3)
        ax.voxels(shaded, facecolors=(0.13, 0.47, 0.71, 0.9), edgecolor=(0.05, 0.2, 0.4, 0.6),
                  linewidth=0.4)
        ax.set_box_aspect((C, N, HW))
        ax.view_init(elev=22, azim=-58)
        ax.set_xlabel("C (channels)", labelpad=-8)
        ax.set_ylabel("N (samples)", labelpad=-8)
        ax.set_zlabel("H, W (positions)", labelpad=-8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_zticks([])
        label = f"group norm (G={G})" if name == "group norm" else name
        ax.set_title(f"{label}\n{int(mask.sum())} values share one mean", fontsize=10)
    fig.suptitle(f"Blue: the values normalised together with sample {sample}, channel "
                 f"{channel} (N={N}, C={C}, H*W={HW})")
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    return fig
