"""The linear classifier f(x) = W x + b drawn as CS231n's slide: the image's pixels stretched
into a column, the weight matrix (one row per class), the bias, and the scores they give.

The scores are computed here (W @ x + b) and written into the figure, so changing a number in
the notebook changes the drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_linear_scores"]


def _cells(ax: Axes, values: np.ndarray, left: float, top: float, colour: str,
           label: str) -> None:
    """A matrix of numbered cells whose top-left corner is (left, top); the label goes above."""
    from matplotlib.patches import Rectangle

    rows, cols = values.shape
    for i in range(rows):
        for j in range(cols):
            ax.add_patch(Rectangle((left + j, top - i - 1), 1, 1, facecolor=colour,
                                   edgecolor="black", linewidth=0.6))
            ax.text(left + j + 0.5, top - i - 0.5, f"{values[i, j]:g}", ha="center",
                    va="center", fontsize=8)
    ax.text(left + cols / 2, top + 0.3, label, ha="center", va="bottom", fontsize=9)


def plot_linear_scores(image: np.ndarray, W: np.ndarray, b: np.ndarray,
                       class_names: Sequence[str] | None = None,
                       figsize: tuple[float, float] = (11, 3.8)) -> Figure:
    """image: (H, W) pixels; W: (C, H*W), one row (template) per class; b: (C,).

    Draws image -> x (the pixels as a column, row by row) and W x + b = scores, with the
    scores computed here. Returns the Figure (1 axes).
    """
    import matplotlib.pyplot as plt

    image = np.asarray(image, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"image must be a 2-D array (H, W); got shape {image.shape}")
    if W.ndim != 2 or W.shape[1] != image.size:
        raise ValueError(f"W must have shape (C, H*W) = (C, {image.size}) to match image "
                         f"{image.shape}; got {W.shape}")
    if b.shape != (W.shape[0],):
        raise ValueError(f"b must have shape (C,) = ({W.shape[0]},) to match W; got {b.shape}")
    names = list(class_names) if class_names is not None else [
        f"class {c}" for c in range(W.shape[0])]
    if len(names) != W.shape[0]:
        raise ValueError(f"class_names must have one name per row of W ({W.shape[0]}); got "
                         f"{len(names)}")
    x = image.reshape(-1, 1)
    scores = W @ x[:, 0] + b

    fig, ax = plt.subplots(figsize=figsize)
    height = max(x.shape[0], W.shape[0])
    top = height
    _cells(ax, image, 0, top, "#e0e0e0", "input image")
    left = image.shape[1] + 1.5
    ax.annotate("", xy=(left - 0.2, top - 1), xytext=(image.shape[1] + 0.2, top - 1),
                arrowprops={"arrowstyle": "->"})
    _cells(ax, W, left, top, "#c6dbef", "W (one row per class)")
    left += W.shape[1] + 0.4
    _cells(ax, x, left, top, "#e0e0e0", "x (stretched)")
    left += 1.4
    ax.text(left, top - W.shape[0] / 2, "+", fontsize=16, ha="center", va="center")
    left += 0.6
    _cells(ax, b[:, None], left, top, "#fdd0a2", "b")
    left += 1.4
    ax.text(left, top - W.shape[0] / 2, "=", fontsize=16, ha="center", va="center")
    left += 0.6
    _cells(ax, np.round(scores[:, None], 2), left, top, "#c7e9c0", "scores")
    for c, name in enumerate(names):
        ax.text(left + 1.3, top - c - 0.5, name, va="center", fontsize=9)
    ax.set_xlim(-0.5, left + 4)
    ax.set_ylim(top - height - 0.5, top + 1.2)
    ax.set_aspect("equal")
    ax.axis("off")
    best = names[int(np.argmax(scores))]
    ax.set_title(f"A linear classifier: scores = W x + b (highest: {best})")
    fig.tight_layout()
    return fig
