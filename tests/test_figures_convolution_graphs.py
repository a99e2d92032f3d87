"""course_lib.figures.convolution and course_lib.figures.graphs: the diagrams show computed values.

The numbers drawn are checked against independent computations: a naive convolution loop written
here, receptive fields measured by backpropagating through course_lib's conv layers, and
gradients from central finite differences (float64; tolerances stated per test).
"""
import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from course_lib import conv_backward, conv_forward  # noqa: E402
from course_lib.figures.convolution import (  # noqa: E402
    ipywidgets_available,
    plot_receptive_field,
    plot_sliding_window,
    receptive_field_sizes,
    sliding_window_widget,
    window_starts,
)
from course_lib.figures.graphs import (  # noqa: E402
    ComputationalGraph,
    gate_patterns_graph,
    sigmoid_example_graph,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def naive_cross_correlation(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    """Independent second implementation: two loops over output positions."""
    xp = np.pad(x, pad)
    k = w.shape[0]
    n_out = (xp.shape[0] - k) // stride + 1
    out = np.zeros((n_out, n_out))
    for i in range(n_out):
        for j in range(n_out):
            out[i, j] = np.sum(xp[i * stride:i * stride + k, j * stride:j * stride + k] * w)
    return out


def axis_numbers(ax) -> list[float]:
    return [float(t.get_text()) for t in ax.texts]


@pytest.mark.parametrize("size, window, stride, pad, expected", [
    (5, 3, 1, 1, [0, 1, 2, 3, 4]),
    (5, 3, 2, 1, [0, 2, 4]),
    (6, 3, 2, 0, [0, 2]),          # floored: column 5 is never reached
    (7, 7, 3, 0, [0]),
])
def test_window_starts_follow_the_floored_output_size(size, window, stride, pad, expected):
    assert window_starts(size, window, stride, pad).tolist() == expected


@pytest.mark.parametrize("stride, pad", [(1, 0), (1, 1), (2, 1), (2, 0), (3, 2)])
def test_sliding_window_figure_shows_the_convolution_output_of_a_naive_loop(stride, pad):
    rng = np.random.default_rng(stride * 10 + pad)
    x = rng.integers(-3, 4, size=(6, 6)).astype(float)
    w = rng.integers(-1, 2, size=(3, 3)).astype(float)
    fig = plot_sliding_window(6, 3, stride, pad, step=0, x=x, w=w)
    ax_in, ax_out = fig.axes
    expected = naive_cross_correlation(x, w, stride, pad)
    np.testing.assert_allclose(axis_numbers(ax_out), expected.ravel(), atol=0.051)
    np.testing.assert_array_equal(axis_numbers(ax_in), np.pad(x, pad).ravel())
    assert f"output {expected.shape[0]}x{expected.shape[0]}" in ax_out.get_title()


def test_sliding_window_title_names_the_window_rows_and_columns_of_the_step():
    fig = plot_sliding_window(5, 3, stride=2, pad=1, step=4)  # output 3x3: step 4 = (1, 1)
    title = fig.get_suptitle()
    assert "step 5 of 9" in title and "rows 2..4" in title and "columns 2..4" in title
    assert "1 + (5 + 2 - 3) // 2 = 3" in title
    assert "value (1, 1)" in fig.axes[1].get_title()


def test_sliding_window_marks_rows_no_window_reaches_when_the_stride_does_not_tile():
    assert "never reached" in plot_sliding_window(6, 3, stride=2, pad=0).get_suptitle()
    assert "never reached" not in plot_sliding_window(5, 3, stride=2, pad=0).get_suptitle()


@pytest.mark.parametrize("kwargs, message", [
    ({"step": 25}, "step must be in 0 .. 24"),
    ({"kernel_size": 8}, r"kernel_size must be at most input_size \+ 2\*pad = 7"),
    ({"stride": 0}, "stride must be a positive int"),
    ({"pad": -1}, "pad must be a non-negative int"),
    ({"x": np.zeros((4, 4)), "w": np.zeros((3, 3))}, r"x must have shape .* got \(4, 4\)"),
    ({"x": np.zeros((5, 5))}, "give both x"),
])
def test_sliding_window_rejects_bad_arguments_by_name(kwargs, message):
    arguments = {"input_size": 5, "kernel_size": 3, "stride": 1, "pad": 1} | kwargs
    with pytest.raises((ValueError, TypeError), match=message):
        plot_sliding_window(**arguments)


@pytest.mark.skipif(not ipywidgets_available(), reason="ipywidgets is not installed")
def test_sliding_window_widget_redraws_and_bounds_the_step_by_the_output_size():
    widget = sliding_window_widget(5, 3, stride=1, pad=1)
    assert widget.sliders["step"].max == 24  # 5x5 output
    widget.sliders["stride"].value = 2
    assert widget.sliders["step"].max == 8  # 3x3 output
    widget.sliders["step"].value = 8
    assert "value (2, 2)" in widget.figure.axes[1].get_title()
    widget.sliders["pad"].value = 0
    assert widget.sliders["step"].max == 3 and widget.sliders["step"].value <= 3


def measured_receptive_field(kernel_sizes, strides) -> int:
    """Width of the input region that one output unit depends on, by backpropagation."""
    size = 1
    for k, s in zip(reversed(kernel_sizes), reversed(strides), strict=True):
        size = (size - 1) * s + k + 2 * s  # a margin so the field does not touch the border
    x = np.random.default_rng(0).normal(size=(1, 1, size, size))
    caches, out = [], x
    for k, s in zip(kernel_sizes, strides, strict=True):
        out, cache = conv_forward(out, np.ones((1, 1, k, k)), np.zeros(1), {"stride": s, "pad": 0})
        caches.append(cache)
    dout = np.zeros_like(out)
    dout[0, 0, out.shape[2] // 2, out.shape[3] // 2] = 1.0
    for cache in reversed(caches):
        dout, _, _ = conv_backward(dout, cache)
    columns = np.flatnonzero(np.abs(dout[0, 0]).sum(axis=0) > 0)
    return int(columns[-1] - columns[0] + 1)


@pytest.mark.parametrize("kernel_sizes, strides", [
    ([3], [1]), ([3, 3, 3], [1, 1, 1]), ([3, 2, 3], [1, 2, 1]), ([5, 2, 3, 2, 3], [1, 2, 1, 2, 1]),
    ([7, 3], [2, 2]),
])
def test_receptive_field_sizes_match_what_backpropagation_measures(kernel_sizes, strides):
    sizes = receptive_field_sizes(kernel_sizes, strides)
    for depth in range(1, len(kernel_sizes) + 1):
        assert sizes[depth - 1] == measured_receptive_field(kernel_sizes[:depth], strides[:depth])


def test_receptive_field_of_stacked_3x3_convs_grows_by_two_per_layer():
    assert receptive_field_sizes([3] * 5) == [3, 5, 7, 9, 11]


def test_receptive_field_figure_colours_as_many_input_pixels_as_the_field_is_wide():
    fig = plot_receptive_field([3, 2, 3], [1, 2, 1], top_width=3)
    ax = fig.axes[0]
    bottom_cells = [p for p in ax.patches if type(p).__name__ == "Rectangle"
                    and p.get_y() == 0.0]
    coloured = [p for p in bottom_cells if p.get_facecolor()[:3] != (1.0, 1.0, 1.0)]
    assert len(coloured) == receptive_field_sizes([3, 2, 3], [1, 2, 1])[-1] == 8
    assert "sees 8 input pixels" in ax.get_title()


def test_receptive_field_rejects_mismatched_strides_by_name():
    with pytest.raises(ValueError, match="strides must have one entry per layer"):
        receptive_field_sizes([3, 3], [1])
    with pytest.raises(ValueError, match=r"kernel_sizes\[1\] must be a positive int"):
        receptive_field_sizes([3, 0])


def test_sigmoid_graph_reproduces_the_lecture_values():
    g = sigmoid_example_graph()
    assert g.value("f") == pytest.approx(0.7311, abs=1e-4)
    grads = {name: g.grad(name) for name in ("w0", "x0", "w1", "x1", "w2")}
    assert grads == pytest.approx({"w0": -0.1966, "x0": 0.3932, "w1": -0.3932, "x1": -0.5898,
                                   "w2": 0.1966}, abs=1e-4)


def finite_difference_gradients(g: ComputationalGraph, h: float = 1e-6) -> dict[str, float]:
    inputs = {n.name: n.value for n in g.nodes.values() if n.op == "input"}
    grads = {}
    for name, value in inputs.items():
        plus = g.forward(**{name: value + h})
        minus = g.forward(**{name: value - h})
        g.forward(**{name: value})
        grads[name] = (plus - minus) / (2 * h)
    return grads


@pytest.mark.parametrize("build", [sigmoid_example_graph, gate_patterns_graph,
                                   lambda: sigmoid_example_graph(0.5, 1.5, -0.2, 0.7, 0.1)])
def test_graph_gradients_match_central_differences(build):
    g = build()
    analytic = {n.name: n.grad for n in g.nodes.values() if n.op == "input"}
    numeric = finite_difference_gradients(g)
    for name in analytic:  # float64 central differences with h=1e-6: error ~1e-10
        assert analytic[name] == pytest.approx(numeric[name], rel=1e-6, abs=1e-8), name


def test_gate_patterns_add_distributes_max_routes_mul_swaps():
    g = gate_patterns_graph(x=3, y=-4, z=2, w=-1)
    assert g.value("f") == -20.0
    assert (g.grad("x"), g.grad("y"), g.grad("z"), g.grad("w")) == (-8.0, 6.0, 2.0, 0.0)


def test_gradients_add_over_paths_when_a_value_is_used_twice():
    g = ComputationalGraph()
    x = g.input("x", 3.0)
    g.mul(x, x, "square")
    g.backward()
    assert g.grad("x") == 6.0


def test_graph_plot_labels_every_edge_with_its_value_and_gradient():
    g = sigmoid_example_graph()
    texts = [t.get_text() for t in g.plot().axes[0].texts]
    assert "0.731" in texts and "-0.197" in texts and "0.393" in texts and "-0.534" in texts
    assert not any("-0.534" == t for t in
                   [t.get_text() for t in g.plot(show_gradients=False).axes[0].texts])


@pytest.mark.parametrize("action, message", [
    (lambda g: g.gate("tanh", "a"), "op must be one of"),
    (lambda g: g.input("a", 1.0), "'a' is already a node"),
    (lambda g: g.gate("exp", "a", "a"), "gate 'exp' takes 1 input"),
    (lambda g: g.add("a", "missing"), r"got unknown \['missing'\]"),
    (lambda g: g.forward(b=1.0), "'b' is not an input"),
])
def test_graph_rejects_bad_construction_by_name(action, message):
    g = ComputationalGraph()
    g.input("a", 1.0)
    with pytest.raises(ValueError, match=message):
        action(g)


def test_graph_sigmoid_gate_equals_its_four_elementary_gates():
    g = ComputationalGraph()
    s = g.input("s", 0.3)
    g.gate("sigmoid", s, name="f")
    g.backward()
    expected = 1 / (1 + math.exp(-0.3))
    assert g.value("f") == pytest.approx(expected, rel=1e-12)
    assert g.grad("s") == pytest.approx(expected * (1 - expected), rel=1e-12)


# The figures of notebooks 01, 02 and 05 (linear scores, descent on a parabola, ReLU half-planes).
from course_lib.figures.activations import plot_relu_half_planes, relu_active_fraction  # noqa: E402
from course_lib.figures.descent import descent_on_parabola, plot_descent_on_parabola  # noqa: E402
from course_lib.figures.linear import plot_linear_scores  # noqa: E402


def test_linear_scores_figure_writes_the_lecture_scores():
    image = np.array([[56.0, 231.0], [24.0, 2.0]])
    W = np.array([[0.2, -0.5, 0.1, 2.0], [1.5, 1.3, 2.1, 0.0], [0.0, 0.25, 0.2, -0.3]])
    b = np.array([1.1, 3.2, -1.2])
    fig = plot_linear_scores(image, W, b, ["cat", "dog", "ship"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    for score in ("-96.8", "437.9", "60.75"):
        assert score in texts
    assert "highest: dog" in fig.axes[0].get_title()
    with pytest.raises(ValueError, match=r"W must have shape \(C, H\*W\) = \(C, 4\)"):
        plot_linear_scores(image, W[:, :3], b)


@pytest.mark.parametrize("learning_rate", [0.3, 1.5, 2.2])
def test_descent_on_parabola_multiplies_by_one_minus_lr_times_curvature(learning_rate):
    path = descent_on_parabola(curvature=2.0, learning_rate=learning_rate / 2, start=1.5, steps=6)
    np.testing.assert_allclose(path, 1.5 * (1 - learning_rate) ** np.arange(7), rtol=1e-12)


def test_descent_figure_says_which_learning_rates_diverge():
    titles = [ax.get_title() for ax in plot_descent_on_parabola(1.0, (0.3, 1.5, 2.2)).axes]
    assert "converges" in titles[0] and "oscillates" in titles[1]
    assert "diverges" in titles[2] and "diverges" not in titles[1]
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        descent_on_parabola(1.0, 0.0)


def test_relu_half_planes_count_a_unit_that_no_data_point_activates_as_dead():
    X = np.random.default_rng(0).normal(size=(200, 2))
    W = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    b = np.array([0.0, 0.0, -20.0])  # the third unit's line lies far outside the data
    active = relu_active_fraction(X, W, b)
    np.testing.assert_allclose(active, [np.mean(X[:, 0] > 0), np.mean(X[:, 1] > 0), 0.0])
    assert "1 of 3 dead" in plot_relu_half_planes(X, W, b).axes[0].get_title()
    with pytest.raises(ValueError, match=r"X must have shape \(N, 2\)"):
        plot_relu_half_planes(np.zeros((5, 3)), np.zeros((3, 2)), np.zeros(2))
