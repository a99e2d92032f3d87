"""Worked solutions to the exercises of notebook 08 (regularisation). For instructors.

Run from the repository root: .venv/bin/python notebooks/solutions/08_regularization.py
Every answer is computed and checked; the script fails if one is wrong. About 15 seconds.
"""

import numpy as np

from course_lib import (
    FullyConnectedNet,
    Solver,
    dropout_forward,
    load_dataset,
    random_flip,
    sgd,
    softmax,
)
from course_lib.figures.training import five_crop_corners

# Exercise 1. course_lib's p is the probability of dropping: 20% of the outputs are zero and
# the kept 80% are scaled by 1 / (1 - 0.2) = 1.25, so the expected output equals the input.
# In the slides' convention p = 0.2 would be the probability of KEEPING: 80% zeros, and with
# inverted dropout a scale of 1 / 0.2 = 5.
out, _ = dropout_forward(np.ones((500, 200)), {"p": 0.2, "mode": "train", "seed": 0})
print(f"1. zeros {np.mean(out == 0):.3f}, kept values {np.unique(out[out > 0])}")
assert abs(np.mean(out == 0) - 0.2) < 0.01 and np.allclose(out[out > 0], 1.25)

# Exercise 2. The L2 gradient is lam * w, so a step with zero data gradient is
# w <- w - lr * lam * w = (1 - lr * lam) w: a factor 0.9999 per step for lr 0.1, lam 1e-3,
# and 0.9999^1000 = 0.905 after 1,000 steps (about 1 - lr * lam * 1000 = 0.9).
w, config = np.array([2.0]), {"learning_rate": 0.1}
for _ in range(1000):
    w, config = sgd(w, 1e-3 * w, config)
print(f"2. after 1,000 steps the weight is {w[0] / 2.0:.4f} of its start (0.9999^1000 ="
      f" {0.9999 ** 1000:.4f})")
assert np.isclose(w[0] / 2.0, 0.9999 ** 1000)

# Exercise 3. sum_{l=1}^{L} (1 - l / (2L)) = L - (L + 1) / 4 = 54 - 13.75 = 40.25 blocks on
# average, so about 25% of the blocks' compute is saved in training.
L = 54
survival = 1 - np.arange(1, L + 1) / (2 * L)
print(f"3. expected blocks per pass {survival.sum():.2f} of {L}:"
      f" {1 - survival.sum() / L:.1%} saved")
assert np.isclose(survival.sum(), 40.25)

# Exercise 4. Networks trained with flips have learned mirrored digits as the same classes, so
# the mirrored crops are no longer foreign to them: they cost far less than for the networks
# trained with crops (section 7), here nothing at all.
data = load_dataset("mnist", num_validation=500, num_test=500)
subset_300 = {**data, "X_train": data["X_train"][:300], "y_train": data["y_train"][:300]}
X_val, y_val = data["X_val"], data["y_val"]


def tta_probabilities(model, X, mirrored):
    padded = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    H, W = X.shape[2:]
    crops = [padded[:, :, top:top + H, left:left + W]
             for top, left in five_crop_corners(H + 2, W + 2, H)]
    if mirrored:
        crops += [crop[:, :, :, ::-1] for crop in crops]
    return np.mean([softmax(model.loss(crop)) for crop in crops], axis=0)


cost = []
for seed in [0, 1, 2]:
    model = FullyConnectedNet([100], input_dim=784, num_classes=10, weight_scale=5e-2,
                              dtype=np.float64, seed=seed)
    Solver(model, subset_300, update_rule="adam", optim_config={"learning_rate": 2e-3},
           num_epochs=60, batch_size=50, augment=random_flip, verbose=False, progress=False,
           seed=seed).train()
    five, ten = (np.mean(np.argmax(tta_probabilities(model, X_val, m), axis=1) == y_val)
                 for m in [False, True])
    cost.append(five - ten)
print(f"4. trained with flips: accuracy lost by adding the mirrored crops {np.round(cost, 3)}"
      f" (about 0.06 for the networks trained with crops)")
assert np.mean(cost) < 0.02

# Exercise 5. p = 0.9 keeps one unit in ten and scales it by 10: the network sees a very
# different, very noisy thinned network at every step, cannot even fit its 300 training
# images in 60 epochs (training accuracy, measured in test mode, well below the ~1.0 of
# p <= 0.5), and the validation accuracy drops too: too much regularisation underfits.
result = {}
for p_drop in [0.0, 0.9]:
    np.random.seed(0)
    model = FullyConnectedNet([256, 256], input_dim=784, num_classes=10, dropout=p_drop,
                              weight_scale=5e-2, dtype=np.float64)
    solver = Solver(model, subset_300, update_rule="adam", optim_config={"learning_rate": 2e-3},
                    num_epochs=60, batch_size=50, verbose=False, progress=False, seed=0)
    solver.train()
    result[p_drop] = (solver.check_accuracy(subset_300["X_train"], subset_300["y_train"]),
                      solver.check_accuracy(X_val, y_val))
print(f"5. train / val accuracy: p = 0: {result[0.0][0]:.3f} / {result[0.0][1]:.3f};"
      f" p = 0.9: {result[0.9][0]:.3f} / {result[0.9][1]:.3f}")
assert result[0.9][0] < result[0.0][0] - 0.05 and result[0.9][1] < result[0.0][1]
