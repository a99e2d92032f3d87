"""The course's standard plots: training curves, conv filters, activation histograms, images.

Each function builds one matplotlib Figure with pyplot (so Jupyter shows it under the inline
backend) and returns it; every panel has a title and, for data plots, labelled axes. Nothing
here picks a backend, so it runs headless with Agg (MPLBACKEND=Agg) as well as in notebooks.
Save with fig.savefig("name.png"); in long loops, plt.close(fig) frees the memory.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from course_lib.validation import check_float_array, check_int_array, check_positive_int

if TYPE_CHECKING:  # matplotlib is imported only when a plot is drawn
    from matplotlib.figure import Figure

__all__ = ["plot_training_history", "plot_filter_grid", "plot_activation_histograms",
           "show_image_grid"]

HISTORY_KEYS = ("loss_history", "train_acc_history", "val_acc_history")


def _history_series(history: Any, key: str) -> np.ndarray:
    """history[key] (dict) or history.key (Solver) as a 1-D float array."""
    if isinstance(history, Mapping):
        present = key in history
        value = history.get(key)
    else:
        present = hasattr(history, key)
        value = getattr(history, key, None)
    if not present:
        raise TypeError(f"history must be a Solver (or any object) with attributes, or a dict "
                        f"with keys, {', '.join(HISTORY_KEYS)}; {type(history).__name__} has no "
                        f"{key!r}")
    try:
        series = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"history's {key} must be a list of numbers; got "
                        f"{type(value).__name__}") from None
    if series.ndim != 1:
        raise ValueError(f"history's {key} must be a flat list of numbers; got shape "
                         f"{series.shape}")
    return series


def plot_training_history(history: Any, title: str = "Training history",
                          figsize: tuple[float, float] = (11, 4)) -> Figure:
    """Loss per iteration (left) and train/validation accuracy per epoch (right).

    history: a Solver, or any object or dict with loss_history (one value per iteration) and
    train_acc_history, val_acc_history (one value per check, usually per epoch starting at 0).
    Returns the Figure (2 axes).
    """
    import matplotlib.pyplot as plt

    loss, train_acc, val_acc = (_history_series(history, key) for key in HISTORY_KEYS)
    if loss.size == 0:
        raise ValueError("history's loss_history must hold at least one value; got an empty "
                         "list (has the solver been trained?)")
    if train_acc.size == 0 or train_acc.shape != val_acc.shape:
        raise ValueError(f"history's train_acc_history and val_acc_history must be non-empty and "
                         f"of equal length; got lengths {train_acc.size} and {val_acc.size}")

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=figsize)
    ax_loss.plot(np.arange(loss.size), loss, ".", markersize=3, alpha=0.6)
    ax_loss.set(title="Training loss", xlabel="iteration", ylabel="loss")
    epochs = np.arange(train_acc.size)
    ax_acc.plot(epochs, train_acc, "-o", label="train")
    ax_acc.plot(epochs, val_acc, "-o", label="validation")
    ax_acc.set(title="Classification accuracy", xlabel="epoch", ylabel="accuracy")
    ax_acc.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_filter_grid(W: np.ndarray, title: str = "Convolution filters", ncols: int | None = None,
                     padding: int = 1, figsize: tuple[float, float] | None = None) -> Figure:
    """Show conv weights W: (F, C, HH, WW), C = 1 (greyscale) or 3 (RGB), as one grid image.

    Each filter is min-max normalised on its own, (w - min) / (max - min), so its pattern is
    visible whatever its scale (a constant filter shows as mid-grey). Filter k sits in row
    k // ncols, column k % ncols; ncols defaults to ceil(sqrt(F)). Returns the Figure (1 axes).
    """
    import matplotlib.pyplot as plt

    check_float_array(W, "W", ndim=4, layout="(F, C, HH, WW)")
    F, C, HH, WW = W.shape
    if C not in (1, 3) or F == 0:
        raise ValueError(f"W must have shape (F, C, HH, WW) with F >= 1 and C = 1 (greyscale) "
                         f"or C = 3 (RGB); got {W.shape}")
    ncols = math.ceil(math.sqrt(F)) if ncols is None else check_positive_int(ncols, "ncols")
    padding = check_positive_int(padding, "padding")
    nrows = math.ceil(F / ncols)

    lo = W.min(axis=(1, 2, 3), keepdims=True)
    span = W.max(axis=(1, 2, 3), keepdims=True) - lo
    filters = np.where(span > 0, (W - lo) / np.where(span > 0, span, 1), 0.5)
    filters = np.broadcast_to(filters, (F, 3, HH, WW)).transpose(0, 2, 3, 1)   # (F, HH, WW, 3)
    # RGBA grid; the padding is transparent so it shows the axes' background between filters.
    grid = np.zeros((nrows * (HH + padding) + padding, ncols * (WW + padding) + padding, 4))
    for k in range(F):
        top = padding + (k // ncols) * (HH + padding)
        left = padding + (k % ncols) * (WW + padding)
        grid[top:top + HH, left:left + WW, :3] = filters[k]
        grid[top:top + HH, left:left + WW, 3] = 1.0

    if figsize is None:
        figsize = (min(2 + 0.6 * ncols, 12), min(1.5 + 0.6 * nrows, 12))
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_facecolor("white")
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks(padding + np.arange(ncols) * (WW + padding) + (WW - 1) / 2,
                  labels=[str(c) for c in range(ncols)], fontsize=7)
    ax.set_yticks(padding + np.arange(nrows) * (HH + padding) + (HH - 1) / 2,
                  labels=[str(r) for r in range(nrows)], fontsize=7)
    ax.set(title=f"{title}\n{F} filters of {C}x{HH}x{WW}, each min-max normalised",
           xlabel=f"column (filter index = row * {ncols} + column)", ylabel="row")
    fig.tight_layout()
    return fig


def plot_activation_histograms(activations: Mapping[str, np.ndarray] | Sequence[np.ndarray],
                               title: str = "Activations per layer", bins: int = 30,
                               value_range: tuple[float, float] | None = None, ncols: int = 5,
                               figsize: tuple[float, float] | None = None) -> Figure:
    """One histogram per layer of its activation values, with their mean and std in the title.

    activations: {layer name: array} or a list of arrays (named "layer 1", "layer 2", ...);
    each array (any shape, e.g. (N, H) or (N, C, H, W)) is flattened. value_range: a common
    (low, high) x-range for every panel, e.g. (-1, 1) for tanh, to compare layers at a glance.
    Returns the Figure (one axes per layer, ncols per row).
    """
    import matplotlib.pyplot as plt

    if isinstance(activations, Mapping):
        items = [(str(name), value) for name, value in activations.items()]
    elif isinstance(activations, Sequence) and not isinstance(activations, (str, bytes)):
        items = [(f"layer {i + 1}", value) for i, value in enumerate(activations)]
    else:
        raise TypeError(f"activations must be a dict {{layer name: array}} or a list of arrays; "
                        f"got {type(activations).__name__}")
    if not items:
        raise ValueError("activations must hold at least one layer; got none")
    for name, value in items:
        check_float_array(value, f"activations[{name!r}]")
        if value.size == 0 or not np.all(np.isfinite(value)):
            raise ValueError(f"activations[{name!r}] must be non-empty and finite; got "
                             f"{value.size} values"
                             + ("" if value.size == 0 else " including NaN or inf"))
    bins = check_positive_int(bins, "bins")
    ncols = min(check_positive_int(ncols, "ncols"), len(items))
    if value_range is not None:
        if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
                or not value_range[0] < value_range[1]):
            raise ValueError(f"value_range must be None or (low, high) with low < high; got "
                             f"{value_range!r}")
    nrows = math.ceil(len(items) / ncols)
    if figsize is None:
        figsize = (3 * ncols, 2.8 * nrows + 0.6)

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for ax, (name, value) in zip(axes.flat, items, strict=False):
        ax.hist(value.ravel(), bins=bins, range=value_range)
        ax.set(title=f"{name}\nmean {value.mean():+.3g}, std {value.std():.3g}",
               xlabel="activation value", ylabel="count")
    for ax in axes.flat[len(items):]:
        fig.delaxes(ax)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_image_grid(X: np.ndarray, labels: np.ndarray | None = None,
                    class_names: Sequence[str] | None = None, ncols: int = 8,
                    title: str = "Images", value_range: tuple[float, float] | None = None,
                    figsize: tuple[float, float] | None = None) -> Figure:
    """A gallery of images X: (N, C, H, W), C = 1 (greyscale) or 3 (RGB), e.g. augmentations.

    Each panel is titled with class_names[labels[i]], labels[i], or its index i. Pixel values
    are mapped to the display range by (x - low) / (high - low), clipped to [0, 1], with one
    (low, high) for the whole batch so brightness differences stay visible: value_range, by
    default (X.min(), X.max()); pass (0, 1) for images already in [0, 1].
    Returns the Figure (one axes per image).
    """
    import matplotlib.pyplot as plt

    check_float_array(X, "X", ndim=4, layout="(N, C, H, W)")
    N, C, H, W = X.shape
    if C not in (1, 3) or N == 0:
        raise ValueError(f"X must have shape (N, C, H, W) with N >= 1 and C = 1 (greyscale) or "
                         f"C = 3 (RGB); got {X.shape}")
    if class_names is not None and (isinstance(class_names, (str, bytes))
                                    or not isinstance(class_names, Sequence)):
        raise TypeError(f"class_names must be a list of str; got {type(class_names).__name__}")
    if labels is not None:
        upper = None if class_names is None else len(class_names)
        check_int_array(labels, "labels", length=N, upper=upper)
    ncols = min(check_positive_int(ncols, "ncols"), N)
    if value_range is None:
        low, high = float(X.min()), float(X.max())
    elif (isinstance(value_range, (tuple, list)) and len(value_range) == 2
          and value_range[0] < value_range[1]):
        low, high = float(value_range[0]), float(value_range[1])
    else:
        raise ValueError(f"value_range must be None or (low, high) with low < high; got "
                         f"{value_range!r}")
    scaled = np.clip((X - low) / (high - low if high > low else 1.0), 0, 1)

    nrows = math.ceil(N / ncols)
    if figsize is None:
        figsize = (1.5 * ncols, 1.6 * nrows + 0.8)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
    for i, ax in enumerate(axes.flat[:N]):
        if C == 1:
            ax.imshow(scaled[i, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        else:
            ax.imshow(scaled[i].transpose(1, 2, 0), interpolation="nearest")
        if labels is None:
            name = f"#{i}"
        else:
            name = class_names[labels[i]] if class_names is not None else str(labels[i])
        ax.set_title(str(name), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[N:]:
        fig.delaxes(ax)
    fig.suptitle(title)
    fig.supxlabel(f"{N} images of {H}x{W} pixels, row by row", fontsize=9)
    fig.tight_layout()
    return fig
