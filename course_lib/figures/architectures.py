"""Diagrams of ConvNet architectures: a residual block, an Inception block, layer volumes.

The numbers on the diagrams are computed, not typed: `layer_volumes` applies the output-size
formula 1 + (H + 2P - K) // S (course_lib.validation.conv_output_size) layer by layer, and
`inception_costs` counts each branch's output channels and multiplications,

    multiplications of a K x K conv with F filters on a C x H x W input (stride 1, same size)
        = H * W * F * C * K * K,

so the drawings and the tables in notebook 10 cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from course_lib.validation import check_positive_int, conv_output_size

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ALEXNET_LAYERS", "NAIVE_INCEPTION", "BOTTLENECK_INCEPTION", "layer_volumes",
           "conv_multiplies", "inception_costs", "plot_volumes", "plot_residual_block",
           "plot_inception_block"]

# AlexNet (Krizhevsky et al. 2012) as one column, without the two-GPU split and the local
# response normalisation, which change no shapes. The 227 x 227 input is what makes the first
# layer's arithmetic work: (227 - 11) / 4 + 1 = 55.
ALEXNET_LAYERS = [
    {"name": "conv1", "kind": "conv", "filters": 96, "size": 11, "stride": 4, "pad": 0},
    {"name": "pool1", "kind": "pool", "size": 3, "stride": 2},
    {"name": "conv2", "kind": "conv", "filters": 256, "size": 5, "stride": 1, "pad": 2},
    {"name": "pool2", "kind": "pool", "size": 3, "stride": 2},
    {"name": "conv3", "kind": "conv", "filters": 384, "size": 3, "stride": 1, "pad": 1},
    {"name": "conv4", "kind": "conv", "filters": 384, "size": 3, "stride": 1, "pad": 1},
    {"name": "conv5", "kind": "conv", "filters": 256, "size": 3, "stride": 1, "pad": 1},
    {"name": "pool3", "kind": "pool", "size": 3, "stride": 2},
    {"name": "fc6", "kind": "fc", "units": 4096},
    {"name": "fc7", "kind": "fc", "units": 4096},
    {"name": "fc8", "kind": "fc", "units": 1000},
]

# An Inception module on a 28 x 28 x 256 input (the CS231n lecture's example): one list of
# operations per branch, each ("conv", K, F) or ("pool", K, None) (3 x 3 max pool, stride 1,
# same size, channels kept). The branches' outputs are concatenated along the channels.
NAIVE_INCEPTION = [[("conv", 1, 128)], [("conv", 3, 192)], [("conv", 5, 96)], [("pool", 3, None)]]
BOTTLENECK_INCEPTION = [[("conv", 1, 128)], [("conv", 1, 64), ("conv", 3, 192)],
                        [("conv", 1, 64), ("conv", 5, 96)], [("pool", 3, None), ("conv", 1, 64)]]


def _check_shape3(shape: Any, name: str) -> tuple[int, int, int]:
    if not isinstance(shape, Sequence) or len(shape) != 3:
        raise ValueError(f"{name} must be (C, H, W), three positive ints; got {shape!r}")
    C, H, W = (check_positive_int(s, f"{name}[{i}]") for i, s in enumerate(shape))
    return C, H, W


def layer_volumes(input_shape: Sequence[int],
                  layers: Sequence[Mapping[str, Any]] = ALEXNET_LAYERS
                  ) -> list[tuple[str, tuple[int, ...]]]:
    """[(name, output shape)] for each layer, starting with ("input", (C, H, W)).

    layers: dicts with 'name' and 'kind': 'conv' ('filters', 'size', 'stride', 'pad') gives
    (F, H', W'); 'pool' ('size', 'stride') gives (C, H', W'); 'fc' ('units') gives (units,).
    """
    shape: tuple[int, ...] = _check_shape3(input_shape, "input_shape")
    volumes = [("input", shape)]
    for i, layer in enumerate(layers):
        kind = layer.get("kind") if isinstance(layer, Mapping) else None
        if kind == "fc":
            shape = (check_positive_int(layer["units"], f"layers[{i}]['units']"),)
        elif kind in ("conv", "pool"):
            if len(shape) != 3:
                raise ValueError(f"layers[{i}] ({layer.get('name')}) is a {kind} layer after a "
                                 f"fully connected one; conv and pool need a (C, H, W) input")
            C, H, W = shape
            stride, pad = layer["stride"], layer.get("pad", 0)
            channels = layer["filters"] if kind == "conv" else C
            shape = (channels, conv_output_size(H, layer["size"], stride, pad),
                     conv_output_size(W, layer["size"], stride, pad))
        else:
            raise ValueError(f"layers[{i}] must be a dict with 'kind' 'conv', 'pool' or 'fc'; "
                             f"got {layer!r}")
        volumes.append((str(layer["name"]), shape))
    return volumes


def conv_multiplies(height: int, width: int, in_channels: int, out_channels: int,
                    kernel: int) -> int:
    """Multiplications of a kernel x kernel conv, stride 1, output height x width x out_channels:
    H * W * F * C * K * K (each output value is a dot product of C * K * K numbers)."""
    return height * width * out_channels * in_channels * kernel * kernel


def inception_costs(input_shape: Sequence[int], branches: Sequence[Sequence[tuple]]
                    ) -> tuple[list[list[tuple[str, int, int]]], int]:
    """Per branch, per operation: (label, output channels, multiplications); and the depth of
    the concatenated output. input_shape: (C, H, W); every operation keeps H and W."""
    C, H, W = _check_shape3(input_shape, "input_shape")
    costs = []
    for b, branch in enumerate(branches):
        channels, rows = C, []
        for kind, kernel, filters in branch:
            if kind == "conv":
                rows.append((f"{kernel}x{kernel} conv, {filters}", filters,
                             conv_multiplies(H, W, channels, filters, kernel)))
                channels = filters
            elif kind == "pool":
                rows.append((f"{kernel}x{kernel} max pool", channels, 0))
            else:
                raise ValueError(f"branches[{b}] operations must be ('conv', K, F) or "
                                 f"('pool', K, None); got {(kind, kernel, filters)!r}")
        costs.append(rows)
    return costs, sum(rows[-1][1] for rows in costs)


def _box(ax: Axes, x: float, y: float, text: str, color: str, width: float = 1.6,
         height: float = 0.5, fontsize: float = 9) -> None:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.04", facecolor=color, edgecolor="k",
                                linewidth=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float],
           connectionstyle: str = "arc3") -> None:
    ax.annotate("", xy=end, xytext=start,
                arrowprops={"arrowstyle": "->", "lw": 1.0, "connectionstyle": connectionstyle})


def _blank(ax: Axes, xlim: tuple[float, float], ylim: tuple[float, float], title: str) -> None:
    ax.set(xlim=xlim, ylim=ylim, title=title)
    ax.set_axis_off()


COLORS = {"conv": "#9ecae1", "norm": "#fdd0a2", "relu": "#c7e9c0", "pool": "#dadaeb",
          "io": "#f0f0f0", "sum": "#fcbba1"}


def plot_residual_block(figsize: tuple[float, float] = (9, 5.5)) -> Figure:
    """A plain two-conv block (left) beside a residual block (right), ResNet's basic block:
    y = ReLU(x + BN(conv(ReLU(BN(conv(x)))))). Returns the Figure (2 axes)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=figsize)
    stack = [("3x3 conv", "conv"), ("batch norm", "norm"), ("ReLU", "relu"),
             ("3x3 conv", "conv"), ("batch norm", "norm")]
    for ax, residual in zip(axes, [False, True], strict=True):
        y = 6.0
        _box(ax, 0, y, "x  (C x H x W)", COLORS["io"])
        for text, kind in stack:
            _arrow(ax, (0, y - 0.27), (0, y - 0.73))
            y -= 1.0
            _box(ax, 0, y, text, COLORS[kind])
        if residual:
            _arrow(ax, (0, y - 0.27), (0, y - 0.73))
            y -= 1.0
            _box(ax, 0, y, "+", COLORS["sum"], width=0.5, fontsize=12)
            # The shortcut: from x around the stack into the sum.
            _arrow(ax, (0.8, 6.0), (0.25, y), connectionstyle="arc,angleA=0,angleB=0,armA=45,"
                                                            "armB=45,rad=10")
            ax.text(1.55, (6.0 + y) / 2, "identity\nshortcut x\n(gradient\npasses\nunchanged)",
                    ha="center", va="center", fontsize=8)
        _arrow(ax, (0, y - 0.27), (0, y - 0.73))
        y -= 1.0
        _box(ax, 0, y, "ReLU", COLORS["relu"])
        _arrow(ax, (0, y - 0.27), (0, y - 0.73))
        y -= 1.0
        _box(ax, 0, y, "F(x) + x" if residual else "F(x)", COLORS["io"])
        _blank(ax, (-1.6, 2.4), (y - 0.6, 6.6),
               "residual block: y = ReLU(F(x) + x)" if residual else "plain block: y = ReLU(F(x))")
    fig.suptitle("The layers learn only the residual F(x) = y - x; the shortcut adds x back")
    fig.tight_layout()
    return fig


def plot_inception_block(input_shape: Sequence[int] = (256, 28, 28),
                         branches: Sequence[Sequence[tuple]] = BOTTLENECK_INCEPTION,
                         title: str = "Inception module",
                         ax: Axes | None = None) -> Figure:
    """Parallel branches on one input, concatenated along the channels; each operation is
    labelled with its output channels and multiplications (from `inception_costs`).
    Returns the Figure (draws into ax when given)."""
    import matplotlib.pyplot as plt

    C, H, W = _check_shape3(input_shape, "input_shape")
    costs, depth = inception_costs(input_shape, branches)
    if ax is None:
        fig, ax = plt.subplots(figsize=(2.3 * len(costs) + 1, 4.5))
    else:
        fig = ax.figure
    longest = max(len(rows) for rows in costs)
    top, bottom = longest + 1.0, 0.0
    xs = (np.arange(len(costs)) - (len(costs) - 1) / 2) * 2.1
    _box(ax, 0, top, f"input {H}x{W}x{C}", COLORS["io"], width=2.4)
    for x, rows in zip(xs, costs, strict=True):
        # Short branches sit at the bottom, so no arrow crosses another branch's box.
        y = top - 1.0 * (longest - len(rows))
        for j, (label, channels, multiplies) in enumerate(rows):
            start = (0, top - 0.27) if j == 0 else (x, y - 0.4)
            y -= 1.0
            _arrow(ax, start, (x, y + 0.4))
            kind = "pool" if "pool" in label else "conv"
            cost = f"{multiplies / 1e6:.0f} M mult." if multiplies else "no mult."
            _box(ax, x, y, f"{label}\n-> {H}x{W}x{channels}\n{cost}", COLORS[kind],
                 width=1.9, height=0.75, fontsize=8)
        _arrow(ax, (x, y - 0.4), (0, bottom + 0.27))
    total = sum(m for rows in costs for _, _, m in rows)
    _box(ax, 0, bottom, f"concatenate: {H}x{W}x{depth}", COLORS["sum"], width=2.8)
    _blank(ax, (xs[0] - 1.2, xs[-1] + 1.2), (bottom - 0.6, top + 0.5),
           f"{title}: {total / 1e6:.0f} M multiplications, output depth {depth}")
    return fig


def plot_volumes(volumes: Sequence[tuple[str, tuple[int, ...]]],
                 title: str = "Output volume of every layer",
                 figsize: tuple[float, float] = (14, 4.5)) -> Figure:
    """Each (C, H, W) volume as a box (width ~ sqrt(C), height ~ sqrt(H), depth ~ sqrt(W)),
    each fully connected output as a bar, labelled with its shape. Returns the Figure (1 axes)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    if not volumes:
        raise ValueError("volumes must hold at least one (name, shape); got none")
    fig, ax = plt.subplots(figsize=figsize)
    x = 0.0
    for name, shape in volumes:
        if len(shape) == 3:                 # front: channels x height; oblique: width
            C, H, W = shape
            wide, tall, deep = 0.06 * np.sqrt(C), 0.25 * np.sqrt(H), 0.12 * np.sqrt(W)
            label = f"{H}x{W}x{C}"
            color = "#9ecae1" if name.startswith("conv") else "#dadaeb"
        else:
            wide, tall, deep = 0.08, 0.04 * np.sqrt(shape[0]), 0.08
            label = f"{shape[0]}"
            color = "#c7e9c0"
        if name == "input":
            color = "#f0f0f0"
        dx, dy = deep * 0.7, deep * 0.5                  # oblique projection of the width
        front = [(x, 0), (x + wide, 0), (x + wide, tall), (x, tall)]
        top = [(x, tall), (x + wide, tall), (x + wide + dx, tall + dy), (x + dx, tall + dy)]
        right = [(x + wide, 0), (x + wide + dx, dy), (x + wide + dx, tall + dy), (x + wide, tall)]
        for polygon in (front, top, right):
            ax.add_patch(Polygon(polygon, closed=True, facecolor=color, edgecolor="k", lw=0.7))
        middle = x + (wide + dx) / 2
        ax.text(middle, -0.25, name, ha="center", va="top", fontsize=9)
        ax.text(middle, -0.65, label, ha="center", va="top", fontsize=8)
        x += max(wide + dx, 0.6) + 0.55
    ax.set(xlim=(-0.3, x), ylim=(-1.1, 5.8), title=title)
    ax.set_aspect("equal")
    ax.set_axis_off()
    fig.tight_layout()
    return fig
