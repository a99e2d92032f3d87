"""Worked solutions to the exercises of notebook 06 (normalisation). For instructors.

Run from the repository root: .venv/bin/python notebooks/solutions/06_normalization.py
Every answer is computed and checked; the script fails if one is wrong. About 5 seconds.
"""

import numpy as np

from course_lib import (
    FullyConnectedNet,
    Solver,
    affine_forward,
    batchnorm_forward,
    load_dataset,
)
from course_lib.figures.normalization import shared_statistics_mask

rng = np.random.default_rng(0)

# Exercise 1. Activations (N, C, H, W) = (8, 16, 10, 10).
# Batch norm: one mean per channel, 16 means, each over N*H*W = 800 values.
# Layer norm: one per sample, 8 means, each over C*H*W = 1600 values.
# Group norm, G = 4: one per sample and group, 8*4 = 32 means, each over (C/G)*H*W = 400.
# Instance norm: one per sample and channel, 8*16 = 128 means, each over H*W = 100.
N, C, HW = 8, 16, 100
answers = {"batch norm": (16, 800), "layer norm": (8, 1600), "group norm": (32, 400),
           "instance norm": (128, 100)}
for name, (num_means, per_mean) in answers.items():
    mask = shared_statistics_mask(name, (N, C, HW), sample=3, channel=5, num_groups=4)
    assert mask.sum() == per_mean and num_means * per_mean == N * C * HW
    print(f"1. {name:13s}: {num_means:3d} means over {per_mean:4d} values each")

# Exercise 2. A batch of one sample: the batch mean is the sample itself, so x - mu = 0 and
# the output is beta, whatever x (and the variance is 0, so only eps keeps it finite).
gamma, beta = np.array([2.0, 3.0]), np.array([0.5, -1.0])
out, _ = batchnorm_forward(np.array([[123.0, -4.0]]), gamma, beta, {"mode": "train"})
print("2. batch of one sample ->", out[0], "= beta")
assert np.allclose(out[0], beta)

# Exercise 3. Within 1% of the true mean: 1 - m^t >= 0.99, i.e. m^t <= 0.01,
# t >= ln(0.01) / ln(m): 43.7 -> 44 batches with m = 0.9, 458.2 -> 459 with m = 0.99.
for m, expected in [(0.9, 44), (0.99, 459)]:
    t = int(np.ceil(np.log(0.01) / np.log(m)))
    assert t == expected
    # Check with the layer: a constant input, so the only error is the start-up bias.
    bn_param = {"mode": "train", "momentum": m}
    history = []
    for _ in range(t + 1):
        batchnorm_forward(np.full((4, 1), 5.0), np.ones(1), np.zeros(1), bn_param)
        history.append(bn_param["running_mean"][0])
    reached = 1 + int(np.argmax(np.array(history) >= 0.99 * 5.0))
    assert reached == t, (m, reached, t)
    print(f"3. momentum {m}: within 1% after {t} batches (the layer agrees)")

# Exercise 4. Batch norm before an affine layer: with s = gamma / sqrt(running_var + eps),
# bn(x) = s * (x - running_mean) + beta, and
# bn(x) W + b = x (diag(s) W) + ((beta - s * running_mean) W + b),
# so W' = s[:, None] * W (row i of W scaled by s_i) and b' = b + (beta - s * running_mean) @ W.
D_in, D_out = 12, 5
W, b = rng.normal(size=(D_in, D_out)), rng.normal(size=D_out)
gamma, beta = rng.uniform(0.5, 2, D_in), rng.normal(size=D_in)
bn_param = {"mode": "train"}
for _ in range(30):
    batchnorm_forward(rng.normal(2.0, 3.0, size=(16, D_in)), gamma, beta, bn_param)
bn_param["mode"] = "test"
x = rng.normal(2.0, 3.0, size=(7, D_in))
two_layers, _ = affine_forward(batchnorm_forward(x, gamma, beta, bn_param)[0], W, b)
s = gamma / np.sqrt(bn_param["running_var"] + 1e-5)
W_folded = s[:, None] * W
b_folded = b + (beta - s * bn_param["running_mean"]) @ W
folded, _ = affine_forward(x, W_folded, b_folded)
print("4. batch norm -> affine vs folded affine: max |difference| =",
      np.abs(two_layers - folded).max())
assert np.abs(two_layers - folded).max() < 1e-10

# Exercise 5. Batch size 1: in training every normalised pre-activation is x - mu = 0, so each
# batch-norm layer outputs beta whatever the image: the scores do not depend on the input, the
# network can learn only the class frequencies (loss stays near ln 10 = 2.30), and no gradient
# reaches the weights below a batch-norm layer (d out / d x = 0). At test time the running
# variance is ~0 (a batch of one has variance 0), so test mode divides by sqrt(eps): huge,
# meaningless activations, and validation accuracy near chance.
data = load_dataset("mnist", num_validation=500, num_test=500)
few = {**data, "X_train": data["X_train"][:500], "y_train": data["y_train"][:500]}
model = FullyConnectedNet([100, 100], input_dim=784, num_classes=10, normalization="batchnorm",
                          weight_scale=5e-2, dtype=np.float64, seed=0)
W1_before = model.params["W1"].copy()
solver = Solver(model, few, update_rule="adam", optim_config={"learning_rate": 1e-3},
                num_epochs=1, batch_size=1, num_train_samples=200, explode_factor=None,
                verbose=False, progress=False, seed=0)
solver.train()
late_loss = np.mean(solver.loss_history[-100:])
print(f"5. batch size 1: mean loss over the last 100 updates {late_loss:.3f} (ln 10 = 2.303),"
      f" W1 changed by {np.abs(model.params['W1'] - W1_before).max():.1e},"
      f" validation accuracy {solver.val_acc_history[-1]:.3f}")
assert late_loss > 2.0
assert np.array_equal(model.params["W1"], W1_before)
assert solver.val_acc_history[-1] < 0.3
