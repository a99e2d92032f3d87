"""Plots: the right panels, titles and axis labels, headless rendering to PNG, bad input."""
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")               # headless, whatever the environment says

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from course_lib.plotting import (  # noqa: E402
    plot_activation_histograms,
    plot_filter_grid,
    plot_training_history,
    show_image_grid,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _assert_saves_png(fig, path):
    fig.savefig(path)
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000


def _history(rng):
    return {"loss_history": list(2.3 * np.exp(-np.arange(60) / 30) + 0.1 * rng.random(60)),
            "train_acc_history": [0.1, 0.4, 0.6, 0.7],
            "val_acc_history": [0.1, 0.35, 0.5, 0.55]}


@pytest.mark.parametrize("as_solver", [False, True])
def test_training_history_has_loss_and_accuracy_panels(rng, tmp_path, as_solver):
    history = _history(rng)
    source = SimpleNamespace(**history) if as_solver else history
    fig = plot_training_history(source, title="My run")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    ax_loss, ax_acc = fig.axes
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert fig._suptitle.get_text() == "My run"
    np.testing.assert_allclose(ax_loss.lines[0].get_ydata(), history["loss_history"])
    assert [line.get_label() for line in ax_acc.lines] == ["train", "validation"]
    np.testing.assert_allclose(ax_acc.lines[1].get_ydata(), history["val_acc_history"])
    _assert_saves_png(fig, tmp_path / "history.png")


@pytest.mark.parametrize("C", [1, 3])
def test_filter_grid_shows_each_filter_min_max_normalised(rng, tmp_path, C):
    W = rng.standard_normal((5, C, 3, 4)) * 10
    W[4] = 2.5                                     # a constant filter
    fig = plot_filter_grid(W, title="Layer 1")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_title().startswith("Layer 1") and ax.get_xlabel() and ax.get_ylabel()
    grid = np.asarray(ax.images[0].get_array())
    ncols = 3                                      # ceil(sqrt(5))
    assert grid.shape == (2 * (3 + 1) + 1, ncols * (4 + 1) + 1, 4)
    # Filter k sits at row k // ncols, column k % ncols, after a 1-pixel border.
    for k in range(5):
        top, left = 1 + (k // ncols) * 4, 1 + (k % ncols) * 5
        block = grid[top:top + 3, left:left + 4]
        w = W[k].transpose(1, 2, 0)                # (HH, WW, C)
        expected = (0.5 if k == 4 else (w - w.min()) / (w.max() - w.min())) * np.ones((3, 4, 3))
        np.testing.assert_allclose(block[..., :3], expected, atol=1e-12)
        np.testing.assert_array_equal(block[..., 3], 1.0)
    assert grid[0, 0, 3] == 0                      # padding is transparent
    _assert_saves_png(fig, tmp_path / "filters.png")


def test_filter_grid_respects_ncols(rng):
    fig = plot_filter_grid(rng.standard_normal((6, 3, 2, 2)), ncols=6)
    assert np.asarray(fig.axes[0].images[0].get_array()).shape[:2] == (1 + 3, 1 + 6 * 3)


@pytest.mark.parametrize("as_dict", [False, True])
def test_activation_histograms_one_panel_per_layer_with_mean_and_std(rng, tmp_path, as_dict):
    layers = [np.tanh(rng.standard_normal((100, 20)) * s) for s in (0.5, 1.0, 2.0, 4.0, 8.0, 9.0)]
    names = [f"tanh {i}" for i in range(6)]
    acts = dict(zip(names, layers, strict=True)) if as_dict else layers
    fig = plot_activation_histograms(acts, value_range=(-1, 1))
    assert isinstance(fig, Figure) and len(fig.axes) == 6       # 2 rows of 5, unused removed
    for ax, name, a in zip(fig.axes, names, layers, strict=True):
        title = ax.get_title()
        assert f"mean {a.mean():+.3g}" in title and f"std {a.std():.3g}" in title
        assert (name if as_dict else "layer") in title
        assert ax.get_xlabel() and ax.get_ylabel()
        assert sum(p.get_height() for p in ax.patches) == a.size   # every value is counted
    assert fig._suptitle.get_text()
    _assert_saves_png(fig, tmp_path / "hist.png")


@pytest.mark.parametrize("C", [1, 3])
def test_image_grid_one_titled_panel_per_image(rng, tmp_path, C):
    X = rng.uniform(0, 1, size=(11, C, 6, 6))
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1])
    fig = show_image_grid(X, labels, class_names=["cat", "dog", "frog"], ncols=4, title="Pets",
                          value_range=(0, 1))
    assert isinstance(fig, Figure) and len(fig.axes) == 11
    assert [ax.get_title() for ax in fig.axes] == ["cat", "dog", "frog"] * 3 + ["cat", "dog"]
    assert fig._suptitle.get_text() == "Pets" and fig._supxlabel.get_text()
    shown = np.asarray(fig.axes[2].images[0].get_array())
    np.testing.assert_allclose(shown, X[2, 0] if C == 1 else X[2].transpose(1, 2, 0))
    _assert_saves_png(fig, tmp_path / "grid.png")


def test_image_grid_scales_by_batch_range_and_falls_back_to_indices(rng):
    X = rng.uniform(-3, 5, size=(3, 3, 4, 4))
    fig = show_image_grid(X)
    assert [ax.get_title() for ax in fig.axes] == ["#0", "#1", "#2"]
    shown = np.stack([np.asarray(ax.images[0].get_array()) for ax in fig.axes])
    assert shown.min() == 0 and shown.max() == 1           # one range for the whole batch
    expected = (X - X.min()) / (X.max() - X.min())
    np.testing.assert_allclose(shown, expected.transpose(0, 2, 3, 1))
    fig2 = show_image_grid(X, labels=np.array([7, 8, 9]))
    assert [ax.get_title() for ax in fig2.axes] == ["7", "8", "9"]


@pytest.mark.parametrize("call, error, match", [
    (lambda r: plot_training_history({"loss_history": [1.0]}), TypeError, "train_acc_history"),
    (lambda r: plot_training_history(SimpleNamespace(loss_history=[1.0], train_acc_history=[])),
     TypeError, "val_acc_history"),
    (lambda r: plot_training_history({**_history(r), "val_acc_history": [0.1]}), ValueError,
     "equal length"),
    (lambda r: plot_training_history({**_history(r), "loss_history": []}), ValueError,
     "at least one value"),
    (lambda r: plot_training_history({**_history(r), "loss_history": ["a"]}), TypeError,
     "numbers"),
    (lambda r: plot_filter_grid(r.standard_normal((4, 2, 3, 3))), ValueError, "C = 1"),
    (lambda r: plot_filter_grid(r.standard_normal((4, 3, 3))), ValueError, "4-D"),
    (lambda r: plot_filter_grid(np.ones((4, 3, 3, 3), dtype=int)), TypeError, "float"),
    (lambda r: plot_filter_grid(r.standard_normal((4, 3, 3, 3)), ncols=0), ValueError, "ncols"),
    (lambda r: plot_activation_histograms([]), ValueError, "at least one layer"),
    (lambda r: plot_activation_histograms(np.zeros(3)), TypeError, "dict"),
    (lambda r: plot_activation_histograms([np.array([1.0, np.nan])]), ValueError, "NaN"),
    (lambda r: plot_activation_histograms({"fc": [1.0, 2.0]}), TypeError, "activations\\['fc'\\]"),
    (lambda r: plot_activation_histograms([np.ones(3)], value_range=(1, 0)), ValueError,
     "value_range"),
    (lambda r: plot_activation_histograms([np.ones(3)], bins=0), ValueError, "bins"),
    (lambda r: show_image_grid(r.standard_normal((2, 2, 4, 4))), ValueError, "C = 1"),
    (lambda r: show_image_grid(r.standard_normal((2, 4, 4))), ValueError, "4-D"),
    (lambda r: show_image_grid(r.standard_normal((2, 1, 4, 4)), labels=np.array([0, 5]),
                               class_names=["a", "b"]), ValueError, "\\[0, 2\\)"),
    (lambda r: show_image_grid(r.standard_normal((2, 1, 4, 4)), labels=np.array([0])),
     ValueError, "length 2"),
    (lambda r: show_image_grid(r.standard_normal((2, 1, 4, 4)), class_names="ab"), TypeError,
     "class_names"),
    (lambda r: show_image_grid(r.standard_normal((2, 1, 4, 4)), value_range=(0,)), ValueError,
     "value_range"),
])
def test_plots_reject_bad_input(rng, call, error, match):
    with pytest.raises(error, match=match):
        call(rng)
