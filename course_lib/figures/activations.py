"""Where a ReLU unit is active: max(0, w.x + b) is positive on one side of the line w.x + b = 0.
A unit whose line leaves every data point on the inactive side is *dead*: its output and its
gradient are 0 for all the data, so gradient descent never moves it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["relu_active_fraction", "plot_relu_half_planes"]


def relu_active_fraction(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """X: (N, D) data, W: (D, H), b: (H,). Fraction of the N points on which each of the H
    units x.W + b is > 0; shape (H,). A 0 is a dead unit."""
    X, W, b = (np.asarray(a, dtype=np.float64) for a in (X, W, b))
    if X.ndim != 2 or W.ndim != 2 or W.shape[0] != X.shape[1]:
        raise ValueError(f"X must be (N, D) and W (D, H) with the same D; got X {X.shape}, "
                         f"W {W.shape}")
    if b.shape != (W.shape[1],):
        raise ValueError(f"b must have shape (H,) = ({W.shape[1]},); got {b.shape}")
    return np.mean(X @ W + b > 0, axis=0)


def plot_relu_half_planes(X: np.ndarray, W: np.ndarray, b: np.ndarray,
                          figsize: tuple[float, float] = (5.5, 5)) -> Figure:
    """2-D data X (N, 2) and the line w.x + b = 0 of each ReLU unit (W: (2, H), b: (H,)), with a
    short arrow on the active side; dead units are drawn dashed in red. Returns the Figure."""
    import matplotlib.pyplot as plt

    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"X must have shape (N, 2) to be drawn in the plane; got {X.shape}")
    active = relu_active_fraction(X, W, b)
    W, b = np.asarray(W, dtype=np.float64), np.asarray(b, dtype=np.float64)
    fig, ax = plt.subplots(figsize=figsize)
    ax.scatter(X[:, 0], X[:, 1], s=8, color="0.4", label="data")
    lo, hi = X.min(axis=0) - 1.5, X.max(axis=0) + 1.5
    t = np.linspace(-1, 1, 2) * np.linalg.norm(hi - lo)
    for unit in range(W.shape[1]):
        w = W[:, unit]
        norm = np.linalg.norm(w)
        if norm == 0:
            continue
        point = -b[unit] * w / norm ** 2          # the point of the line closest to the origin
        direction = np.array([-w[1], w[0]]) / norm
        line = point[:, None] + direction[:, None] * t
        dead = active[unit] == 0
        ax.plot(line[0], line[1], "--" if dead else "-", color="tab:red" if dead else "tab:blue",
                linewidth=1.2)
        # Clipped: a dead unit's line often lies outside the data, and so outside the axes.
        ax.annotate("", xy=point + 0.6 * w / norm, xytext=point, annotation_clip=True,
                    arrowprops={"arrowstyle": "->", "color": "tab:red" if dead else "tab:blue"})
        ax.text(*(point + 0.75 * w / norm), f"{active[unit]:.0%}", fontsize=8, clip_on=True,
                color="tab:red" if dead else "tab:blue")
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set(xlabel="$x_1$", ylabel="$x_2$",
           title=f"ReLU units: active side (arrow) and % of data active\n"
                 f"{int(np.sum(active == 0))} of {W.shape[1]} dead (red, dashed)")
    fig.tight_layout()
    return fig
