"""Gradient descent on the parabola f(w) = c w^2 / 2, where the step is
w <- w - lr * c * w = (1 - lr c) w: it converges when 0 < lr c < 2, oscillates when
1 < lr c < 2, and diverges (the loss grows every step, then overflows to inf and NaN) when
lr c > 2. The one-dimensional picture of a loss that goes up because the learning rate is too high.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["descent_on_parabola", "plot_descent_on_parabola"]


def descent_on_parabola(curvature: float, learning_rate: float, start: float = 1.0,
                        steps: int = 8) -> np.ndarray:
    """Iterates w_0 = start, w_(t+1) = w_t - learning_rate * curvature * w_t; shape (steps + 1,)."""
    if not curvature > 0:
        raise ValueError(f"curvature must be > 0; got {curvature}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0; got {learning_rate}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int; got {steps!r}")
    w = np.empty(steps + 1)
    w[0] = start
    for t in range(steps):
        w[t + 1] = w[t] - learning_rate * curvature * w[t]  # the gradient of c w^2 / 2 is c w
    return w


def plot_descent_on_parabola(curvature: float = 1.0,
                             learning_rates: Sequence[float] = (0.3, 1.5, 2.2),
                             start: float = 1.0, steps: int = 6,
                             figsize: tuple[float, float] | None = None) -> Figure:
    """One panel per learning rate: the parabola and the path of gradient descent on it.

    Each title gives lr * c and the loss after the last step. Returns the Figure.
    """
    import matplotlib.pyplot as plt

    n = len(learning_rates)
    if n == 0:
        raise ValueError("learning_rates must hold at least one value; got none")
    fig, axes = plt.subplots(1, n, figsize=figsize or (4.2 * n, 3.6), squeeze=False)
    for ax, lr in zip(axes[0], learning_rates, strict=True):
        path = descent_on_parabola(curvature, lr, start, steps)
        losses = 0.5 * curvature * path ** 2
        reach = max(abs(start), np.max(np.abs(path))) * 1.1
        grid = np.linspace(-reach, reach, 200)
        ax.plot(grid, 0.5 * curvature * grid ** 2, color="0.6")
        ax.plot(path, losses, "o", color="tab:red", markersize=4)
        for t in range(steps):
            ax.annotate("", xy=(path[t + 1], losses[t + 1]), xytext=(path[t], losses[t]),
                        arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 1})
        factor = lr * curvature
        verdict = ("converges" if factor < 1 else "oscillates, converges" if factor < 2
                   else "diverges: the loss goes up")
        ax.set(title=f"lr*c = {factor:g}: {verdict}\nloss {losses[0]:.3g} -> {losses[-1]:.3g}",
               xlabel="weight w", ylabel="loss c w^2 / 2")
    fig.suptitle("Gradient descent on a parabola: a step multiplies w by (1 - lr*c)")
    fig.tight_layout()
    return fig
