"""Diagrams of convolution: a window sliding over a padded input, and receptive fields.

- `plot_sliding_window`: the zero-padded input with the window at one step, and the output map
  with the one value that step computes; with `x` and `w` the cells show numbers and the output
  is computed by `course_lib.conv_forward`.
- `sliding_window_widget`: the same figure under sliders (step, stride, pad, kernel size), when
  ipywidgets is importable.
- `receptive_field_sizes` and `plot_receptive_field`: how far back one unit of a stack of layers
  sees, r_l = r_(l-1) + (k_l - 1) * j_(l-1), with the jump j_l = j_(l-1) * s_l (r_0 = j_0 = 1).

Output sizes come from `course_lib.validation.conv_output_size` (floored, as the contract says).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from course_lib.validation import (
    check_nonnegative_int,
    check_positive_int,
    conv_output_size,
)

if TYPE_CHECKING:  # matplotlib and ipywidgets are imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["window_starts", "plot_sliding_window", "ipywidgets_available",
           "sliding_window_widget", "receptive_field_sizes", "plot_receptive_field"]

PAD_COLOUR = "#d9d9d9"
WINDOW_COLOUR = "tab:blue"
OUTPUT_COLOUR = "tab:orange"
UNREACHED_COLOUR = "#f4cccc"


def window_starts(size: int, window: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """First row (or column) of each window position along one axis, in padded coordinates.

    Returns an int array of length conv_output_size(size, window, stride, pad):
    [0, stride, 2*stride, ...].
    """
    size = check_positive_int(size, "size")
    window = check_positive_int(window, "window")
    stride = check_positive_int(stride, "stride")
    pad = check_nonnegative_int(pad, "pad")
    if window > size + 2 * pad:
        raise ValueError(f"window must fit in the padded input (size + 2*pad = {size + 2 * pad}); "
                         f"got window={window}")
    return stride * np.arange(conv_output_size(size, window, stride, pad))


def _check_geometry(input_size: int, kernel_size: int, stride: int, pad: int
                    ) -> tuple[np.ndarray, int]:
    """Window starts along one axis and the output size, with errors naming the arguments."""
    input_size = check_positive_int(input_size, "input_size")
    kernel_size = check_positive_int(kernel_size, "kernel_size")
    stride = check_positive_int(stride, "stride")
    pad = check_nonnegative_int(pad, "pad")
    if kernel_size > input_size + 2 * pad:
        raise ValueError(f"kernel_size must be at most input_size + 2*pad = "
                         f"{input_size + 2 * pad}; got kernel_size={kernel_size}")
    starts = window_starts(input_size, kernel_size, stride, pad)
    return starts, starts.size


def _draw_grid(ax: Axes, values: np.ndarray | None, n_rows: int, n_cols: int,
               colours: np.ndarray, fmt: str = "{:.0f}") -> None:
    """Square cells with facecolours colours[i, j] and, if given, the numbers values[i, j]."""
    from matplotlib.patches import Rectangle

    for i in range(n_rows):
        for j in range(n_cols):
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=colours[i, j], edgecolor="black",
                                   linewidth=0.6))
            if values is not None:
                ax.text(j + 0.5, i + 0.5, fmt.format(values[i, j]), ha="center", va="center",
                        fontsize=8)
    ax.set_xlim(-0.1, n_cols + 0.1)
    ax.set_ylim(n_rows + 0.1, -0.1)  # row 0 at the top, as in an image
    ax.set_aspect("equal")
    ax.set_xticks(np.arange(n_cols) + 0.5, [str(j) for j in range(n_cols)], fontsize=7)
    ax.set_yticks(np.arange(n_rows) + 0.5, [str(i) for i in range(n_rows)], fontsize=7)
    ax.tick_params(length=0)


def plot_sliding_window(input_size: int = 5, kernel_size: int = 3, stride: int = 1,
                        pad: int = 1, step: int = 0, x: np.ndarray | None = None,
                        w: np.ndarray | None = None,
                        figsize: tuple[float, float] = (10, 4.5)) -> Figure:
    """One step of a square kernel sliding over a square, zero-padded input.

    input_size: H = W of the input; kernel_size: HH = WW; stride, pad: as in conv_param.
    step: which output value to show, 0 .. H_out*W_out - 1, in reading order.
    x: optional (H, W) input and w: optional (HH, WW) kernel; with both, the cells show their
    numbers and the output map is conv_forward's (bias 0). Returns the Figure (2 axes: the padded
    input with the window, the output with the computed value).
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    starts, out_size = _check_geometry(input_size, kernel_size, stride, pad)
    step = check_nonnegative_int(step, "step")
    if step >= out_size * out_size:
        raise ValueError(f"step must be in 0 .. {out_size * out_size - 1} (the output is "
                         f"{out_size}x{out_size}); got step={step}")
    if (x is None) != (w is None):
        raise ValueError("give both x (the input) and w (the kernel), or neither; got only "
                         + ("x" if w is None else "w"))
    padded_values = output_values = None
    if x is not None:
        from course_lib.layers.conv import conv_forward

        x = np.asarray(x, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        if x.shape != (input_size, input_size):
            raise ValueError(f"x must have shape (input_size, input_size) = "
                             f"({input_size}, {input_size}); got {x.shape}")
        if w.shape != (kernel_size, kernel_size):
            raise ValueError(f"w must have shape (kernel_size, kernel_size) = "
                             f"({kernel_size}, {kernel_size}); got {w.shape}")
        padded_values = np.pad(x, pad)
        out, _ = conv_forward(x[None, None], w[None, None], np.zeros(1),
                              {"stride": stride, "pad": pad})
        output_values = out[0, 0]

    padded = input_size + 2 * pad
    row, col = divmod(step, out_size)
    top, left = int(starts[row]), int(starts[col])
    reached = int(starts[-1]) + kernel_size  # rows/cols >= reached are never under a window
    colours = np.full((padded, padded), "white", dtype=object)
    colours[:pad, :] = colours[-pad or padded:, :] = PAD_COLOUR
    colours[:, :pad] = colours[:, -pad or padded:] = PAD_COLOUR
    colours[reached:, :] = colours[:, reached:] = UNREACHED_COLOUR
    colours[top:top + kernel_size, left:left + kernel_size] = "#c6dbef"

    fig, (ax_in, ax_out) = plt.subplots(
        1, 2, figsize=figsize, gridspec_kw={"width_ratios": [padded, max(out_size, 3)]})
    _draw_grid(ax_in, padded_values, padded, padded, colours)
    ax_in.add_patch(Rectangle((left, top), kernel_size, kernel_size, fill=False,
                              edgecolor=WINDOW_COLOUR, linewidth=3))
    if pad:
        ax_in.add_patch(Rectangle((pad, pad), input_size, input_size, fill=False,
                                  edgecolor="black", linewidth=2, linestyle="--"))
    ax_in.set(title=f"input {input_size}x{input_size}, pad {pad} (grey zeros), "
                    f"kernel {kernel_size}x{kernel_size}, stride {stride}",
              xlabel="column (padded)", ylabel="row (padded)")

    out_colours = np.full((out_size, out_size), "white", dtype=object)
    for done in range(step):
        out_colours[divmod(done, out_size)] = "#fde0c5"
    out_colours[row, col] = OUTPUT_COLOUR
    _draw_grid(ax_out, output_values, out_size, out_size, out_colours, fmt="{:.1f}")
    ax_out.set(title=f"output {out_size}x{out_size}: value ({row}, {col})",
               xlabel="output column", ylabel="output row")
    formula = (f"H_out = 1 + (H + 2P - F) // S = 1 + ({input_size} + {2 * pad} - {kernel_size})"
               f" // {stride} = {out_size}")
    if reached < padded:
        formula += f";  red rows/columns {reached}.. are never reached (floored)"
    fig.suptitle(f"step {step + 1} of {out_size * out_size}: window rows "
                 f"{top}..{top + kernel_size - 1}, columns {left}..{left + kernel_size - 1}"
                 f"\n{formula}", fontsize=10)
    fig.tight_layout()
    return fig


def ipywidgets_available() -> bool:
    """True when ipywidgets can be imported (the interactive figures need it)."""
    return importlib.util.find_spec("ipywidgets") is not None


def sliding_window_widget(input_size: int = 5, kernel_size: int = 3, stride: int = 1,
                          pad: int = 1, x: np.ndarray | None = None,
                          w: np.ndarray | None = None) -> Any:
    """plot_sliding_window under sliders for the step, the stride, the padding, the kernel size.

    Returns an ipywidgets.VBox (display it as the cell's last value). Its attribute `redraw`
    draws the figure for the sliders' current values and returns it; `figure` holds the last one.
    With x and w the kernel-size slider is fixed to w's size. Raises ImportError when ipywidgets is
    missing (check ipywidgets_available() first; plot_sliding_window draws the static figure).
    """
    if not ipywidgets_available():
        raise ImportError("sliding_window_widget needs ipywidgets (pip install ipywidgets); "
                          "plot_sliding_window draws the same figure without it")
    import ipywidgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    _check_geometry(input_size, kernel_size, stride, pad)
    fixed_kernel = w is not None
    step_slider = ipywidgets.IntSlider(value=0, min=0, max=0, description="step")
    stride_slider = ipywidgets.IntSlider(value=stride, min=1, max=4, description="stride")
    pad_slider = ipywidgets.IntSlider(value=pad, min=0, max=3, description="pad")
    kernel_slider = ipywidgets.IntSlider(value=kernel_size, min=1, max=input_size,
                                         description="kernel", disabled=fixed_kernel)
    output = ipywidgets.Output()
    box = ipywidgets.VBox([ipywidgets.HBox([step_slider, stride_slider]),
                           ipywidgets.HBox([pad_slider, kernel_slider]), output])
    box.figure = None

    def redraw(_change: Any = None) -> Figure:
        _, out_size = _check_geometry(input_size, kernel_slider.value, stride_slider.value,
                                      pad_slider.value)
        step_slider.max = out_size * out_size - 1  # clamps value when the output shrinks
        fig = plot_sliding_window(input_size, kernel_slider.value, stride_slider.value,
                                  pad_slider.value, step_slider.value, x=x, w=w)
        box.figure = fig
        output.clear_output(wait=True)
        with output:
            display(fig)
        plt.close(fig)
        return fig

    for slider in (step_slider, stride_slider, pad_slider, kernel_slider):
        slider.observe(redraw, names="value")
    box.redraw = redraw
    box.sliders = {"step": step_slider, "stride": stride_slider, "pad": pad_slider,
                   "kernel": kernel_slider}
    redraw()
    return box


def _check_stack(kernel_sizes: Sequence[int], strides: Sequence[int] | None
                 ) -> tuple[list[int], list[int]]:
    kernels = [check_positive_int(k, f"kernel_sizes[{i}]") for i, k in enumerate(kernel_sizes)]
    if not kernels:
        raise ValueError("kernel_sizes must name at least one layer; got an empty sequence")
    if strides is None:
        strides = [1] * len(kernels)
    if len(strides) != len(kernels):
        raise ValueError(f"strides must have one entry per layer ({len(kernels)}); got "
                         f"{len(strides)}")
    return kernels, [check_positive_int(s, f"strides[{i}]") for i, s in enumerate(strides)]


def receptive_field_sizes(kernel_sizes: Sequence[int], strides: Sequence[int] | None = None
                          ) -> list[int]:
    """Receptive field (in input pixels, along one axis) of one unit after each layer.

    kernel_sizes, strides: one entry per layer (strides default to 1; pooling is a layer with
    its window and stride). Returns [r_1, ..., r_L] with r_l = r_(l-1) + (k_l - 1) * j_(l-1),
    j_l = j_(l-1) * s_l, r_0 = j_0 = 1. Padding moves a field but does not change its size.
    """
    kernels, strides = _check_stack(kernel_sizes, strides)
    sizes, field, jump = [], 1, 1
    for kernel, stride in zip(kernels, strides, strict=True):
        field += (kernel - 1) * jump
        jump *= stride
        sizes.append(field)
    return sizes


def plot_receptive_field(kernel_sizes: Sequence[int], strides: Sequence[int] | None = None,
                         top_width: int = 3, figsize: tuple[float, float] | None = None
                         ) -> Figure:
    """Layers drawn as rows of units (input at the bottom); the units one top unit depends on.

    Along one axis, no padding: layer l-1 has (n_l - 1) * s_l + k_l units so that the top layer
    has top_width units. The centre top unit's dependencies are coloured in every layer, and
    each row is labelled with its receptive field size (receptive_field_sizes). Returns the Figure.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon, Rectangle

    kernels, strides = _check_stack(kernel_sizes, strides)
    top_width = check_positive_int(top_width, "top_width")
    n_layers = len(kernels)
    widths = [top_width]
    for kernel, stride in zip(reversed(kernels), reversed(strides), strict=True):
        widths.append((widths[-1] - 1) * stride + kernel)
    widths.reverse()  # widths[0] = input, widths[l] = after layer l
    centre = top_width // 2
    spans = [(centre, centre)]  # the units the chosen unit depends on, from the top down
    for layer in range(n_layers, 0, -1):
        first, last = spans[-1]
        spans.append((first * strides[layer - 1],
                      last * strides[layer - 1] + kernels[layer - 1] - 1))
    spans.reverse()  # spans[l] in layer l
    fields = [1] + receptive_field_sizes(kernels, strides)

    total = widths[0]
    if figsize is None:
        figsize = (min(2 + 0.35 * total, 14), 1.2 + 0.9 * (n_layers + 1))
    fig, ax = plt.subplots(figsize=figsize)
    for layer, width in enumerate(widths):
        offset = (total - width) / 2  # centre each row
        y = layer * 1.6
        first, last = spans[layer]
        for unit in range(width):
            inside = first <= unit <= last
            ax.add_patch(Rectangle((offset + unit, y), 0.9, 0.9, edgecolor="black",
                                   facecolor=(OUTPUT_COLOUR if layer == n_layers else
                                              "#9ecae1") if inside else "white", linewidth=0.6))
        name = "input" if layer == 0 else (
            f"layer {layer}: {kernels[layer - 1]}-wide, stride {strides[layer - 1]}")
        ax.text(total + 0.8, y + 0.45, f"{name}\nreceptive field {fields[layer]}"
                if layer else f"{name}\n(one pixel)", va="center", fontsize=8)
        if layer:
            below_offset = (total - widths[layer - 1]) / 2
            lo, hi = spans[layer - 1]
            ax.add_patch(Polygon([(offset + first, y), (offset + last + 0.9, y),
                                  (below_offset + hi + 0.9, y - 0.7),
                                  (below_offset + lo, y - 0.7)],
                                 closed=True, facecolor=WINDOW_COLOUR, alpha=0.15))
    ax.set_xlim(-0.5, total + 7)
    ax.set_ylim(-0.5, n_layers * 1.6 + 1.2)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"One unit after {n_layers} layers sees {fields[-1]} input pixels\n"
                 f"(kernels {kernels}, strides {strides})", fontsize=10)
    fig.tight_layout()
    return fig
