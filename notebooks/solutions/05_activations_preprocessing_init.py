"""Instructor solutions to the exercises of notebook 05 (activations, preprocessing, init).

Run: python notebooks/solutions/05_activations_preprocessing_init.py   (about 15 seconds on one
core; prints and checks each answer). `train_mlp` and `iterations_to` repeat the notebook's.
"""
import numpy as np

import course_lib as cl
from course_lib.figures.activations import relu_active_fraction

# Exercise 1. Each sigmoid layer multiplies the gradient by sigma'(x) <= 0.25 (at x = 0), so ten
# layers give at most 0.25**10 = 9.5e-7: the gradient at the bottom is a millionth of the top's.
grad = np.ones(1)
for _ in range(10):
    _, cache = cl.sigmoid_forward(np.zeros(1))
    grad = cl.sigmoid_backward(grad, cache)
print(f"1. ten sigmoid layers at x = 0: gradient factor {grad[0]:.3g} (0.25**10 = {0.25**10:.3g})")
assert np.isclose(grad[0], 0.25**10)

# Exercise 2. With std sqrt(D/2) = 15.8 the pre-activations have std 15.8 * sqrt(500) * rms(x) =
# 354 rms(x); ReLU keeps half of the second moment, so each layer multiplies rms by 354/sqrt(2) =
# 250. Layer 1's output std is about 354 * 0.584 = 207 (std of ReLU(z) = 0.584 std(z)), and
# layer 10's about 250**9 times that: ~8e23. The signal explodes instead of staying constant.
rng = np.random.default_rng(0)
x = rng.standard_normal((1000, 500))
stds = []
for _ in range(10):
    W = rng.standard_normal((500, 500)) * np.sqrt(500 / 2)      # the slide's formula
    x = np.maximum(0, x @ W)
    stds.append(x.std())
print(f"2. slide's init: std after layer 1 {stds[0]:.3g}, after layer 10 {stds[-1]:.3g}")
assert 150 < stds[0] < 270 and 1e22 < stds[-1] < 1e26


def train_mlp(X, y, activation, learning_rate, hidden=(100,), num_iters=600, batch_size=64,
              seed=0, gain=None):
    rng = np.random.default_rng(seed)
    dims = [X.shape[1], *hidden, int(y.max()) + 1]
    gain = gain if gain is not None else (2.0 if activation == "ReLU" else 1.0)
    weights = [rng.standard_normal((d_in, d_out)) * np.sqrt(gain / d_in)
               for d_in, d_out in zip(dims[:-1], dims[1:], strict=True)]
    biases = [np.zeros(d_out) for d_out in dims[1:]]
    losses = []
    for _ in range(num_iters):
        batch = rng.choice(len(X), batch_size, replace=False)
        layers = [X[batch]]
        for k, (W, b) in enumerate(zip(weights, biases, strict=True)):
            z = layers[-1] @ W + b
            last = k == len(weights) - 1
            layers.append(z if last else np.maximum(z, 0) if activation == "ReLU" else np.tanh(z))
        loss, d = cl.softmax_loss(layers[-1], y[batch])
        losses.append(loss)
        for k in reversed(range(len(weights))):
            if k < len(weights) - 1:
                d = d * ((layers[k + 1] > 0) if activation == "ReLU" else 1 - layers[k + 1] ** 2)
            dW, db, d = layers[k].T @ d, d.sum(axis=0), d @ weights[k].T
            weights[k] -= learning_rate * dW
            biases[k] -= learning_rate * db
    return weights, biases, np.array(losses)


def iterations_to(losses, target=0.5, smoothing=0.9):
    smoothed = losses[0]
    for iteration, loss in enumerate(losses):
        smoothed = smoothing * smoothed + (1 - smoothing) * loss
        if smoothed < target:
            return iteration
    return np.inf


# Exercise 3. Fewer: a smaller step is less likely to push a unit's line past all the data.
blob_rng = np.random.default_rng(0)
centres = np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.2]])
blobs_X = np.concatenate([c + 0.6 * blob_rng.standard_normal((60, 2)) for c in centres])
blobs_y = np.repeat(np.arange(3), 60)
dead = {}
for learning_rate in (1.0, 5.0):
    dead[learning_rate] = []
    for seed in range(3):
        W, b, _ = train_mlp(blobs_X, blobs_y, "ReLU", learning_rate, hidden=(12,),
                            num_iters=200, batch_size=32, seed=seed)
        dead[learning_rate].append(int(np.sum(relu_active_fraction(blobs_X, W[0], b[0]) == 0)))
print(f"3. dead units out of 12 (seeds 0-2): learning rate 1.0 {dead[1.0]}, 5.0 {dead[5.0]}")
assert sum(dead[1.0]) < sum(dead[5.0])

digits = cl.load_digits(num_validation=200, num_test=200, seed=0, flatten=True)
X = (digits["X_train"] - digits["X_train"].mean(axis=0)) / digits["X_train"].std()
y = digits["y_train"]


def mean_iterations(activation, hidden, gain=None, learning_rate=0.03, num_iters=400):
    return np.mean([iterations_to(train_mlp(X, y, activation, learning_rate, hidden=hidden,
                                            num_iters=num_iters, seed=seed, gain=gain)[2])
                    for seed in range(3)])


# Exercise 4. With Xavier (gain 1) each ReLU layer halves the signal's second moment, so after 3
# layers the output and the gradients are ~1/sqrt(8) as large: ReLU loses its lead and is even
# slower than tanh here (162 against 114 iterations), which is why ReLU networks use He's gain 2.
relu_he, relu_xavier = mean_iterations("ReLU", (100, 100, 100)), mean_iterations(
    "ReLU", (100, 100, 100), gain=1.0)
tanh_xavier = mean_iterations("tanh", (100, 100, 100))
print(f"4. iterations to loss 0.5: ReLU+He {relu_he:.0f}, ReLU+Xavier {relu_xavier:.0f}, "
      f"tanh+Xavier {tanh_xavier:.0f}")
assert relu_he < tanh_xavier < relu_xavier

# Exercise 5. Deeper: tanh's gradient shrinks by its slope (< 1) at each extra layer, ReLU's
# (with He) does not, so the ratio tanh / ReLU grows with depth (1.50 -> 1.61 here: modest, on a
# problem this easy).
ratio_3 = tanh_xavier / relu_he
ratio_6 = mean_iterations("tanh", (100,) * 6) / mean_iterations("ReLU", (100,) * 6)
print(f"5. tanh / ReLU iterations: 3 hidden layers {ratio_3:.2f}, 6 hidden layers {ratio_6:.2f}")
assert 1 < ratio_3 < ratio_6
