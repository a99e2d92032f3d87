"""Instructor solutions to the exercises of notebook 04 (convolution and pooling).

Run: python notebooks/solutions/04_convolution_pooling.py   (a few seconds; prints and checks
each answer).
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import course_lib as cl  # noqa: E402
from course_lib.figures.convolution import (  # noqa: E402
    plot_receptive_field,
    plot_sliding_window,
    receptive_field_sizes,
)
from course_lib.validation import conv_output_size  # noqa: E402

# Exercise 1. 1 + (32 - 5) // 3 = 1 + 9 = 10. The last window starts at row 27 and covers rows
# 27..31, so every row is read: 27 = 9 * 3 fits exactly. (With a 6x6 filter: 1 + 26 // 3 = 9,
# the last window covers rows 24..29, and rows 30 and 31 are never read.)
assert conv_output_size(32, 5, 3) == 10
fig = plot_sliding_window(32, 5, stride=3, pad=0, step=99)
assert "never reached" not in fig.get_suptitle()
assert "never reached" in plot_sliding_window(32, 6, stride=3, pad=0).get_suptitle()
plt.close("all")
print("1. output 10x10, every row read; a 6x6 filter would leave rows 30-31 unread")

# Exercise 2. 1 + (32 - 5) // 1 = 28, six filters: a 28x28x6 volume (six activation maps). Each
# filter has 5*5*3 = 75 weights and a bias: 6 * 76 = 456 parameters. A fully connected layer from
# 32*32*3 = 3072 inputs to 28*28*6 = 4704 outputs: 3072 * 4704 + 4704 = 14,455,392.
out, _ = cl.conv_forward(np.zeros((1, 3, 32, 32)), np.zeros((6, 3, 5, 5)), np.zeros(6),
                         {"stride": 1, "pad": 0})
conv_params = 6 * (5 * 5 * 3 + 1)
fc_params = (32 * 32 * 3) * (28 * 28 * 6) + 28 * 28 * 6
print(f"2. output {out.shape[2]}x{out.shape[3]}x{out.shape[1]}; conv {conv_params:,d} parameters, "
      f"fully connected {fc_params:,d} ({fc_params / conv_params:,.0f} times more)")
assert out.shape == (1, 6, 28, 28) and conv_params == 456 and fc_params == 14_455_392

# Exercise 3. r: 1 -> 3 (first 3x3) -> 5 (second 3x3; now the jump doubles) -> 5 + 2*2 = 9.
sizes = receptive_field_sizes([3, 3, 3], [1, 2, 1])
plot_receptive_field([3, 3, 3], [1, 2, 1])
plt.close("all")
print("3. receptive fields with stride 2 in the second layer:", sizes)
assert sizes == [3, 5, 9]

# Exercise 4. (224 - 11) // 4 + 1 = 54 (floored), then 26 after POOL1 ((54 - 3) // 2 + 1),
# 26 after CONV2 (pad 2 keeps the size), 12 after POOL2, 12 through CONV3-5, 5 after POOL3:
# FC6 then sees 5*5*256 = 6400 inputs: 6400 * 4096 + 4096 = 26,218,496 parameters instead of
# 37,752,832. The whole network shrinks because of one missing row of pixels at the start.
size = 224
sizes = []
for kernel, stride, pad in [(11, 4, 0), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1),
                            (3, 1, 1), (3, 2, 0)]:
    size = conv_output_size(size, kernel, stride, pad)
    sizes.append(size)
fc6 = size * size * 256 * 4096 + 4096
print(f"4. spatial sizes from 224: {sizes}; FC6 parameters {fc6:,d}")
assert sizes == [54, 26, 26, 12, 12, 12, 12, 5] and fc6 == 26_218_496


# Exercise 5. With max pooling the measured size shrinks (13 instead of 14): all inputs are ones,
# so every pooling window is a tie, and the max gate routes the whole gradient to one position per
# window (the first), never to the last row of the pooled region. The gradient at one input shows
# the paths the gradient takes *for this input*; the receptive field is every pixel that *can*
# influence the output, which max pooling's gradient does not reveal. That is why the notebook
# measures with average pooling.
def measured(pool_forward, pool_backward, size=40):
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    x = np.ones((1, 1, size, size))
    caches = []
    for kind in ["conv", "conv", "pool", "conv", "conv"]:
        if kind == "conv":
            x, cache = cl.conv_forward(x, np.ones((1, 1, 3, 3)), np.zeros(1), conv_param)
        else:
            x, cache = pool_forward(x, pool_param)
        caches.append((kind, cache))
    dout = np.zeros_like(x)
    dout[0, 0, x.shape[2] // 2, x.shape[3] // 2] = 1.0
    for kind, cache in reversed(caches):
        dout = cl.conv_backward(dout, cache)[0] if kind == "conv" else pool_backward(dout, cache)
    rows = np.flatnonzero(np.abs(dout[0, 0]).sum(axis=1))
    return rows[-1] - rows[0] + 1


with_avg = measured(cl.avg_pool_forward, cl.avg_pool_backward)
with_max = measured(cl.max_pool_forward, cl.max_pool_backward)
print(f"5. measured receptive field: average pooling {with_avg}, max pooling {with_max}")
assert with_avg == 14 and with_max < with_avg
