"""Diagrams for training networks: momentum steps, dropout vs DropConnect, ten crops, search.

- `momentum_steps` and `plot_momentum_steps`: the step of momentum and of Nesterov momentum as
  a sum of two arrows (notebook 07).
- `plot_dropout_vs_dropconnect`: a small network with dropped units beside the same network
  with dropped connections (notebook 08).
- `five_crop_corners` and `plot_ten_crops`: the corners and centre crops of test-time
  augmentation, and their mirror images (notebook 08).
- `search_layouts` and `plot_search_layouts`: grid against random search when only one of two
  hyperparameters matters (Bergstra & Bengio 2012, figure 1; notebook 09).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from course_lib.validation import check_float_array, check_positive_int, check_probability

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["momentum_steps", "plot_momentum_steps", "plot_dropout_vs_dropconnect",
           "five_crop_corners", "plot_ten_crops", "search_layouts", "plot_search_layouts"]


def momentum_steps(grad: Callable[[np.ndarray], np.ndarray], w: np.ndarray,
                   velocity: np.ndarray, learning_rate: float, momentum: float
                   ) -> dict[str, np.ndarray]:
    """The arrows of one momentum and one Nesterov step from w with velocity v (all shape (D,)):

        momentum:  step = mu * v - lr * grad(w)
        Nesterov:  step = mu * v - lr * grad(w + mu * v)      (gradient at the look-ahead point)

    Returns {'velocity': mu * v, 'gradient step': -lr * grad(w), 'momentum step',
    'look-ahead gradient step': -lr * grad(w + mu * v), 'Nesterov step'}.
    """
    w = check_float_array(w, "w", ndim=1)
    velocity = check_float_array(velocity, "velocity", ndim=1)
    if velocity.shape != w.shape:
        raise ValueError(f"velocity must have the shape of w, {w.shape}; got {velocity.shape}")
    carried = momentum * velocity
    gradient_step = -learning_rate * np.asarray(grad(w), dtype=np.float64)
    look_ahead_step = -learning_rate * np.asarray(grad(w + carried), dtype=np.float64)
    return {"velocity": carried, "gradient step": gradient_step,
            "momentum step": carried + gradient_step,
            "look-ahead gradient step": look_ahead_step,
            "Nesterov step": carried + look_ahead_step}


def _arrow(ax: Axes, start: np.ndarray, vector: np.ndarray, color: str, label: str) -> None:
    ax.annotate("", xy=start + vector, xytext=start,
                arrowprops={"arrowstyle": "-|>", "color": color, "lw": 2})
    ax.plot([], [], color=color, lw=2, label=label)          # legend entry


def plot_momentum_steps(grad: Callable[[np.ndarray], np.ndarray],
                        f: Callable[[np.ndarray], np.ndarray], w: Sequence[float],
                        velocity: Sequence[float], learning_rate: float = 0.02,
                        momentum: float = 0.9, xlim: tuple[float, float] = (-6, 2),
                        ylim: tuple[float, float] = (-2, 2),
                        figsize: tuple[float, float] = (12, 4.2)) -> Figure:
    """Momentum (left) and Nesterov momentum (right): the actual step is the sum of the carried
    velocity and a gradient step, taken at w or at the look-ahead point w + mu v. f draws the
    contours (f maps an array (2, ...) to values (...)); w, velocity: 2-D points.
    Returns the Figure (2 axes)."""
    import matplotlib.pyplot as plt

    w = np.asarray(w, dtype=np.float64)
    velocity = np.asarray(velocity, dtype=np.float64)
    if w.shape != (2,) or velocity.shape != (2,):
        raise ValueError(f"w and velocity must be 2-D points, shape (2,); got {w.shape} and "
                         f"{velocity.shape}")
    steps = momentum_steps(grad, w, velocity, learning_rate, momentum)
    X, Y = np.meshgrid(np.linspace(*xlim, 200), np.linspace(*ylim, 200))
    fig, axes = plt.subplots(1, 2, figsize=figsize)
    for ax, nesterov in zip(axes, [False, True], strict=True):
        ax.contour(X, Y, f(np.stack([X, Y])), levels=20, cmap="Greys", linewidths=0.6)
        ax.plot(*w, "ko")
        ax.annotate("w", w, textcoords="offset points", xytext=(-12, 6))
        _arrow(ax, w, steps["velocity"], "C0", "velocity mu*v (carried over)")
        if nesterov:
            look_ahead = w + steps["velocity"]
            ax.plot(*look_ahead, "o", color="C0", ms=4)
            _arrow(ax, look_ahead, steps["look-ahead gradient step"], "C3",
                   "-lr * gradient at the look-ahead point w + mu*v")
            _arrow(ax, w, steps["Nesterov step"], "k", "actual step")
            title = "Nesterov: gradient taken after the velocity step"
        else:
            _arrow(ax, w, steps["gradient step"], "C3", "-lr * gradient at w")
            _arrow(ax, steps["velocity"] + w, steps["gradient step"], "C3", "_")
            _arrow(ax, w, steps["momentum step"], "k", "actual step")
            title = "Momentum: velocity plus the gradient step at w"
        ax.set(xlim=xlim, ylim=ylim, xlabel="$w_0$", ylabel="$w_1$", title=title)
        ax.set_aspect("equal")
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _draw_network(ax: Axes, sizes: Sequence[int], unit_kept: list[np.ndarray],
                  weight_kept: list[np.ndarray], title: str) -> None:
    xs = np.arange(len(sizes)) * 2.0
    positions = [np.linspace(-(n - 1) / 2, (n - 1) / 2, n) for n in sizes]
    for layer, kept in enumerate(weight_kept):           # kept: (sizes[layer], sizes[layer+1])
        for i, y0 in enumerate(positions[layer]):
            for j, y1 in enumerate(positions[layer + 1]):
                alive = kept[i, j] and unit_kept[layer][i]
                ax.plot([xs[layer], xs[layer + 1]], [y0, y1], color="k" if alive else "0.85",
                        lw=1.0 if alive else 0.6, ls="-" if alive else ":", zorder=1)
    for layer, ys in enumerate(positions):
        for i, y in enumerate(ys):
            alive = unit_kept[layer][i]
            ax.scatter(xs[layer], y, s=260, zorder=2, edgecolors="k",
                       c="#9ecae1" if alive else "white", linewidths=1.0 if alive else 0.6)
            if not alive:
                ax.plot(xs[layer], y, "x", color="C3", ms=10, zorder=3)
    ax.set(title=title, xlim=(-0.6, xs[-1] + 0.6))
    ax.set_axis_off()


def plot_dropout_vs_dropconnect(layer_sizes: Sequence[int] = (4, 6, 3), p: float = 0.5,
                                seed: int = 0, figsize: tuple[float, float] = (11, 4)
                                ) -> Figure:
    """The same network twice: dropout drops hidden units (with all their connections), each
    with probability p; DropConnect drops single weights, each with probability p. Input and
    output units are never dropped. Returns the Figure (2 axes)."""
    import matplotlib.pyplot as plt

    sizes = [check_positive_int(n, f"layer_sizes[{i}]") for i, n in enumerate(layer_sizes)]
    if len(sizes) < 3:
        raise ValueError(f"layer_sizes must have an input, at least one hidden and an output "
                         f"layer; got {list(layer_sizes)}")
    p = check_probability(p, "p")
    rng = np.random.default_rng(seed)
    everything = [np.ones(n, bool) for n in sizes]
    all_weights = [np.ones((a, b), bool) for a, b in zip(sizes, sizes[1:], strict=False)]
    dropout_units = [everything[0]] + [rng.random(n) >= p for n in sizes[1:-1]] + [everything[-1]]
    # A dropped unit sends nothing: its outgoing weights are gone too (drawn by _draw_network).
    connect_weights = [rng.random(w.shape) >= p for w in all_weights]
    fig, axes = plt.subplots(1, 2, figsize=figsize)
    _draw_network(axes[0], sizes, dropout_units, all_weights,
                  f"Dropout: each hidden unit dropped with p = {p:g}")
    _draw_network(axes[1], sizes, everything, connect_weights,
                  f"DropConnect: each weight dropped with p = {p:g}")
    fig.suptitle("One training step's random mask (grey dotted: dropped); a new mask every step")
    fig.tight_layout()
    return fig


def five_crop_corners(height: int, width: int, crop: int) -> list[tuple[int, int]]:
    """(top, left) of the four corner crops and the centre crop of size crop x crop, in the
    order top-left, top-right, bottom-left, bottom-right, centre."""
    height, width = check_positive_int(height, "height"), check_positive_int(width, "width")
    crop = check_positive_int(crop, "crop")
    if crop > min(height, width):
        raise ValueError(f"crop must fit in the image of {height}x{width}; got {crop}")
    return [(0, 0), (0, width - crop), (height - crop, 0), (height - crop, width - crop),
            ((height - crop) // 2, (width - crop) // 2)]


def plot_ten_crops(image: np.ndarray, crop: int, figsize: tuple[float, float] = (12, 4.2)
                   ) -> Figure:
    """Left: a greyscale image (H, W) with the five crop windows; right: the ten crops, the five
    and their mirror images, which a test-time-augmented prediction averages over.
    Returns the Figure (1 + 10 axes)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    image = check_float_array(image, "image", ndim=2)
    corners = five_crop_corners(*image.shape, crop)
    names = ["top left", "top right", "bottom left", "bottom right", "centre"]
    fig = plt.figure(figsize=figsize)
    grid = fig.add_gridspec(2, 7)
    ax = fig.add_subplot(grid[:, :2])
    ax.imshow(image, cmap="gray")
    for k, (top, left) in enumerate(corners):
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), crop, crop, fill=False, lw=1.5,
                               edgecolor=f"C{k}", ls="-" if k < 4 else "--"))
    ax.set(title=f"{image.shape[0]}x{image.shape[1]} image, five {crop}x{crop} windows",
           xticks=[], yticks=[])
    for k, (top, left) in enumerate(corners):
        patch = image[top:top + crop, left:left + crop]
        for row, (shown, kind) in enumerate([(patch, ""), (patch[:, ::-1], "mirrored ")]):
            sub = fig.add_subplot(grid[row, 2 + k])
            sub.imshow(shown, cmap="gray", vmin=image.min(), vmax=image.max())
            sub.set_title(f"{kind}{names[k]}", fontsize=8, color=f"C{k}")
            sub.set(xticks=[], yticks=[])
    fig.suptitle("Ten crops: the prediction averages the class probabilities of all ten")
    fig.tight_layout()
    return fig


def search_layouts(num_trials: int = 9, seed: int = 0) -> dict[str, np.ndarray]:
    """Points (num_trials, 2) in the unit square: a sqrt(num_trials)-per-side grid (cell
    centres) and uniform random points. num_trials must be a square number."""
    num_trials = check_positive_int(num_trials, "num_trials")
    side = int(round(np.sqrt(num_trials)))
    if side * side != num_trials:
        raise ValueError(f"num_trials must be a square number (a grid of k x k); got "
                         f"{num_trials}")
    ticks = (np.arange(side) + 0.5) / side
    grid = np.array([(a, b) for a in ticks for b in ticks])
    return {"grid": grid, "random": np.random.default_rng(seed).random((num_trials, 2))}


def _important(x: np.ndarray) -> np.ndarray:
    # A made-up validation score that depends on the important parameter only: one sharp peak.
    return np.exp(-((x - 0.73) / 0.08) ** 2)


def _unimportant(y: np.ndarray) -> np.ndarray:
    return 0.15 * np.exp(-((y - 0.4) / 0.5) ** 2)


def plot_search_layouts(num_trials: int = 9, seed: int = 0,
                        figsize: tuple[float, float] = (11, 5.5)) -> Figure:
    """Grid (left) and random (right) search with the same budget, when the score depends
    mostly on the horizontal parameter: on top, the score as a function of it, with the values
    each layout tried. The grid tries sqrt(num_trials) distinct values, random num_trials.
    Returns the Figure (4 axes)."""
    import matplotlib.pyplot as plt

    layouts = search_layouts(num_trials, seed)
    fig, axes = plt.subplots(2, 2, figsize=figsize, height_ratios=[1, 2.2], sharex=True)
    t = np.linspace(0, 1, 400)
    for column, (name, points) in enumerate(layouts.items()):
        top, square = axes[0, column], axes[1, column]
        top.plot(t, _important(t), color="C2")
        top.plot(points[:, 0], _important(points[:, 0]), "o", color="k", ms=5)
        top.vlines(points[:, 0], 0, _important(points[:, 0]), colors="k", lw=0.6)
        distinct = len(np.unique(np.round(points[:, 0], 9)))
        top.set(title=f"{name} search: {distinct} distinct values of the important parameter",
                ylabel="score", ylim=(0, 1.1))
        square.plot(points[:, 0], points[:, 1], "o", color="k", ms=7)
        square.set(xlim=(0, 1), ylim=(0, 1), xlabel="important parameter (e.g. learning rate)",
                   ylabel="unimportant parameter")
        side = axes[1, column].inset_axes((1.01, 0, 0.12, 1), sharey=square)
        side.plot(_unimportant(t), t, color="C1")
        side.set_axis_off()
    fig.suptitle(f"The same budget of {num_trials} runs; the score depends mostly on the "
                 f"horizontal parameter (green), hardly on the vertical one (orange)")
    fig.tight_layout()
    return fig
