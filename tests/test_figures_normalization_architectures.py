"""course_lib.figures.normalization, .architectures and .training: the numbers the diagrams
draw are checked against course_lib's layers and optimisers and against published values."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib import (  # noqa: E402
    conv_forward,
    layernorm_forward,
    sgd_momentum,
    sgd_nesterov,
    spatial_batchnorm_forward,
    spatial_groupnorm_forward,
)
from course_lib.figures.architectures import (  # noqa: E402
    ALEXNET_LAYERS,
    BOTTLENECK_INCEPTION,
    NAIVE_INCEPTION,
    conv_multiplies,
    inception_costs,
    layer_volumes,
    plot_inception_block,
    plot_residual_block,
    plot_volumes,
)
from course_lib.figures.normalization import (  # noqa: E402
    NORMALIZERS,
    plot_normalization_axes,
    shared_statistics_mask,
)
from course_lib.figures.training import (  # noqa: E402
    five_crop_corners,
    momentum_steps,
    plot_dropout_vs_dropconnect,
    plot_momentum_steps,
    plot_search_layouts,
    plot_ten_crops,
    search_layouts,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- normalisation axes

def _normalised_by_course_lib(x, normalizer, G):
    N, C, H, W = x.shape
    ones, zeros = np.ones(C), np.zeros(C)
    if normalizer == "batch norm":
        return spatial_batchnorm_forward(x, ones, zeros, {"mode": "train"})[0]
    if normalizer == "layer norm":
        flat = x.reshape(N, -1)
        D = flat.shape[1]
        return layernorm_forward(flat, np.ones(D), np.zeros(D), {})[0].reshape(x.shape)
    if normalizer == "instance norm":
        return spatial_groupnorm_forward(x, ones, zeros, C, {})[0]
    return spatial_groupnorm_forward(x, ones, zeros, G, {})[0]


@pytest.mark.parametrize("normalizer", NORMALIZERS)
def test_shared_statistics_mask_matches_what_the_course_lib_layer_computes(normalizer):
    # Recover each (n, c) slice's (mean, std) from the layer's output (gamma 1, beta 0):
    # sigma = std(x) / std(y), mu = mean(x) - sigma * mean(y); slices with equal pairs share.
    N, C, H, W, G = 3, 6, 2, 3, 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, C, H, W)) * rng.uniform(0.5, 3, (N, C, 1, 1)) \
        + rng.normal(scale=3, size=(N, C, 1, 1))
    y = _normalised_by_course_lib(x, normalizer, G)
    sigma = x.std(axis=(2, 3)) / y.std(axis=(2, 3))
    mu = x.mean(axis=(2, 3)) - sigma * y.mean(axis=(2, 3))
    for n in range(N):
        for c in range(C):
            measured = np.isclose(mu, mu[n, c], rtol=1e-7) & np.isclose(sigma, sigma[n, c],
                                                                          rtol=1e-7)
            mask = shared_statistics_mask(normalizer, (N, C, H * W), n, c, num_groups=G)
            assert mask.shape == (N, C, H * W)
            assert np.array_equal(mask[:, :, 0], measured), (normalizer, n, c)
            assert np.all(mask == mask[:, :, :1])          # always every spatial position


def test_shared_statistics_sets_have_the_sizes_of_the_table():
    N, C, HW, G = 4, 6, 5, 2
    sizes = {name: shared_statistics_mask(name, (N, C, HW), 1, 2, G).sum() for name in NORMALIZERS}
    assert sizes == {"batch norm": N * HW, "layer norm": C * HW, "instance norm": HW,
                     "group norm": C // G * HW}


def test_shared_statistics_mask_rejects_bad_arguments_naming_them():
    with pytest.raises(ValueError, match="normalizer must be one of"):
        shared_statistics_mask("weight norm", (2, 4, 3), 0, 0)
    with pytest.raises(ValueError, match="num_groups must divide .* C=4; got 3"):
        shared_statistics_mask("group norm", (2, 4, 3), 0, 0, num_groups=3)
    with pytest.raises(ValueError, match=r"\(sample, channel\) must index"):
        shared_statistics_mask("batch norm", (2, 4, 3), 2, 0)
    with pytest.raises(ValueError, match="shape must be"):
        shared_statistics_mask("batch norm", (2, 4), 0, 0)


def test_plot_normalization_axes_draws_one_panel_per_normalizer_with_its_count():
    fig = plot_normalization_axes(shape=(4, 6, 5), num_groups=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 4
    assert titles[0].startswith("batch norm") and "20 values" in titles[0]
    assert titles[3].startswith("group norm (G=3)") and "10 values" in titles[3]
    assert all(ax.get_xlabel().startswith("C") for ax in fig.axes)


# ---------------------------------------------------------------- architectures

def test_alexnet_volumes_follow_from_the_layer_specifications():
    volumes = dict(layer_volumes((3, 227, 227), ALEXNET_LAYERS))
    assert volumes["conv1"] == (96, 55, 55)
    assert volumes["pool1"] == (96, 27, 27)
    assert volumes["conv2"] == (256, 27, 27)
    assert volumes["conv5"] == (256, 13, 13)
    assert volumes["pool3"] == (256, 6, 6)              # 9216 values into fc6
    assert volumes["fc8"] == (1000,)
    # The paper's 224 x 224 input does not tile: (224 - 11) / 4 is not an integer.
    assert dict(layer_volumes((3, 224, 224)))["conv1"] == (96, 54, 54)


def test_layer_volumes_rejects_conv_after_fc_and_unknown_kinds():
    with pytest.raises(ValueError, match="after a fully connected one"):
        layer_volumes((1, 8, 8), [{"name": "fc", "kind": "fc", "units": 4},
                                  {"name": "c", "kind": "pool", "size": 2, "stride": 2}])
    with pytest.raises(ValueError, match="'kind' 'conv', 'pool' or 'fc'"):
        layer_volumes((1, 8, 8), [{"name": "x", "kind": "lstm"}])


def test_conv_multiplies_counts_one_dot_product_of_c_k_k_per_output_value():
    x, w = np.zeros((1, 5, 7, 6)), np.zeros((4, 5, 3, 3))
    out, _ = conv_forward(x, w, np.zeros(4), {"stride": 1, "pad": 1})
    assert conv_multiplies(7, 6, 5, 4, 3) == out.size * 5 * 3 * 3


def test_inception_costs_reproduce_the_lecture_example():
    # CS231n's example on a 28x28x256 input: the naive module costs 854 M multiplications and
    # outputs 672 channels. The bottleneck module's rows add up to 271 M, 480 channels.
    naive, naive_depth = inception_costs((256, 28, 28), NAIVE_INCEPTION)
    bottleneck, bottleneck_depth = inception_costs((256, 28, 28), BOTTLENECK_INCEPTION)
    assert sum(m for rows in naive for *_, m in rows) == 854_196_224
    assert naive_depth == 128 + 192 + 96 + 256 == 672
    assert sum(m for rows in bottleneck for *_, m in rows) == 271_351_808
    assert bottleneck_depth == 480
    with pytest.raises(ValueError, match=r"\('conv', K, F\)"):
        inception_costs((256, 28, 28), [[("avgpool", 3, None)]])


def test_architecture_diagrams_carry_the_computed_numbers():
    fig = plot_inception_block((256, 28, 28), NAIVE_INCEPTION, title="naive")
    assert fig.axes[0].get_title() == "naive: 854 M multiplications, output depth 672"
    fig = plot_residual_block()
    assert [ax.get_title() for ax in fig.axes] == ["plain block: y = ReLU(F(x))",
                                                  "residual block: y = ReLU(F(x) + x)"]
    fig = plot_volumes(layer_volumes((3, 227, 227)), title="AlexNet")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "55x55x96" in texts and "6x6x256" in texts and "4096" in texts
    with pytest.raises(ValueError, match="at least one"):
        plot_volumes([])


# ---------------------------------------------------------------- training diagrams

def _grad(w):
    return np.array([w[0], 25.0 * w[1]])


def test_momentum_step_is_course_lib_sgd_momentum_step():
    w, v = np.array([-4.5, 0.6]), np.array([1.7, -0.35])
    steps = momentum_steps(_grad, w, v, learning_rate=0.05, momentum=0.9)
    next_w, _ = sgd_momentum(w, _grad(w), {"learning_rate": 0.05, "momentum": 0.9,
                                           "velocity": v.copy()})
    assert np.allclose(w + steps["momentum step"], next_w, rtol=0, atol=1e-12)
    assert np.allclose(steps["velocity"] + steps["gradient step"], steps["momentum step"])


def test_nesterov_steps_follow_course_lib_sgd_nesterov_in_its_look_ahead_variables():
    # course_lib (CS231n) keeps the look-ahead point x~ = x + mu v; iterating the figure's
    # Nesterov step on x must track it exactly.
    lr, mu = 0.02, 0.9
    x, v = np.array([-4.5, 0.6]), np.zeros(2)
    x_ahead, config = x.copy(), {"learning_rate": lr, "momentum": mu}
    for _ in range(25):
        step = momentum_steps(_grad, x, v, lr, mu)["Nesterov step"]
        x, v = x + step, step
        x_ahead, config = sgd_nesterov(x_ahead, _grad(x_ahead), config)
        assert np.allclose(x_ahead, x + mu * v, rtol=0, atol=1e-10)


def test_momentum_steps_rejects_mismatched_velocity():
    with pytest.raises(ValueError, match="velocity must have the shape of w"):
        momentum_steps(_grad, np.zeros(2), np.zeros(3), 0.1, 0.9)


def test_plot_momentum_steps_and_dropout_diagram_draw_two_panels():
    def f(w):
        return 0.5 * (w[0] ** 2 + 25 * w[1] ** 2)

    fig = plot_momentum_steps(_grad, f, [-4.5, 0.6], [1.7, -0.35], learning_rate=0.05)
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["Momentum", "Nesterov"]
    fig = plot_dropout_vs_dropconnect((4, 6, 3), p=0.5, seed=0)
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["Dropout", "DropConnect"]
    with pytest.raises(ValueError, match="p must be"):
        plot_dropout_vs_dropconnect(p=1.5)
    with pytest.raises(ValueError, match="at least one hidden"):
        plot_dropout_vs_dropconnect((4, 3))


def test_five_crop_corners_are_the_corners_and_the_centre():
    corners = five_crop_corners(28, 28, 24)
    assert corners == [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]
    image = np.arange(28 * 30).reshape(28, 30)
    crops = [image[t:t + 24, left:left + 24] for t, left in five_crop_corners(28, 30, 24)]
    assert crops[3][-1, -1] == image[-1, -1] and crops[0][0, 0] == image[0, 0]
    with pytest.raises(ValueError, match="crop must fit"):
        five_crop_corners(28, 28, 29)
    fig = plot_ten_crops(np.random.default_rng(0).random((28, 28)), 24)
    assert len(fig.axes) == 11


def test_grid_search_tries_sqrt_n_values_of_each_parameter_random_search_n():
    layouts = search_layouts(16, seed=0)
    assert layouts["grid"].shape == layouts["random"].shape == (16, 2)
    assert len(np.unique(layouts["grid"][:, 0])) == 4
    assert len(np.unique(layouts["random"][:, 0])) == 16
    with pytest.raises(ValueError, match="square number"):
        search_layouts(10)
    fig = plot_search_layouts(9, seed=0)
    assert "3 distinct" in fig.axes[0].get_title() and "9 distinct" in fig.axes[1].get_title()
