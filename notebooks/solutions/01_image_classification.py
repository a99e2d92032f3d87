"""Instructor solutions to the exercises of notebook 01 (image classification).

Run: python notebooks/solutions/01_image_classification.py   (about 20 seconds; prints and checks
each answer). Uses the same MNIST split as the notebook.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import course_lib as cl  # noqa: E402
from course_lib.figures.linear import plot_linear_scores  # noqa: E402

# Exercise 1. The largest absolute difference is |220 - 112| = 108 (bottom right); squared it is
# 11,664 of the 26,280 total: 44% of the squared L2 distance (162.1) comes from one pixel of 16.
test_image = np.array([[56, 32, 10, 18], [90, 23, 128, 133], [24, 26, 178, 200],
                       [2, 0, 255, 220]])
training_image = np.array([[10, 20, 24, 17], [8, 10, 89, 100], [12, 16, 178, 170],
                           [4, 32, 233, 112]])
squared = (test_image - training_image) ** 2
l2 = np.sqrt(squared.sum())
largest = np.unravel_index(np.argmax(squared), squared.shape)
share = squared[largest] / squared.sum()
print(f"1. L2 distance {l2:.2f}; pixel {tuple(map(int, largest))} gives {share:.0%} of the "
      f"squared sum")
assert largest == (3, 3) and squared.sum() == 26_280 and 0.44 < share < 0.45

# Exercise 2. No: each training image is still its own nearest neighbour (distance 0), but the
# other four neighbours vote too, and an unusual image is outvoted by its neighbours' label.
data = cl.load_dataset("mnist", num_validation=500, num_test=500)
X_train = data["X_train"].reshape(len(data["X_train"]), -1)
y_train = data["y_train"]
dists_train = cl.compute_distances(X_train, X_train)
train_accuracy = {k: np.mean(cl.predict_labels(dists_train, y_train, k=k) == y_train)
                  for k in (1, 5)}
print(f"2. training accuracy: 1-NN {train_accuracy[1]:.3f}, 5-NN {train_accuracy[5]:.3f}")
assert train_accuracy[1] == 1.0 and train_accuracy[5] < 1.0

# Exercise 3. Ship 60.75 vs dog 437.9: b_3 must grow by more than 437.9 - 60.75 = 377.15.
x = np.array([56.0, 231.0, 24.0, 2.0])
W = np.array([[0.2, -0.5, 0.1, 2.0], [1.5, 1.3, 2.1, 0.0], [0.0, 0.25, 0.2, -0.3]])
b = np.array([1.1, 3.2, -1.2])
gap = (W @ x + b)[1] - (W @ x + b)[2]
b_new = b + np.array([0.0, 0.0, gap + 0.01])
fig = plot_linear_scores(x.reshape(2, 2), W, b_new, ["cat", "dog", "ship"])
plt.close(fig)
print(f"3. the ship's bias must grow by more than {gap:.2f}")
assert np.isclose(gap, 377.15) and np.argmax(W @ x + b_new) == 2
assert "highest: ship" in fig.axes[0].get_title()

# Exercise 4. A 1-pixel shift is a much smaller change: the shifted copy stays nearer than the
# closest other-class image for many more test images, so the fraction goes down (it is close
# to 100% at 3 pixels).
X_test = data["X_test"].reshape(len(data["X_test"]), -1)
y_test = data["y_test"]
dists_test = cl.compute_distances(X_test, X_train)
other_class = y_train[None, :] != y_test[:, None]
closest_other = np.where(other_class, dists_test, np.inf).min(axis=1)
fraction = {}
for shift in (1, 3):
    shifted = np.zeros_like(data["X_test"])
    shifted[..., shift:] = data["X_test"][..., :-shift]
    shift_distance = np.linalg.norm((data["X_test"] - shifted).reshape(len(y_test), -1), axis=1)
    fraction[shift] = np.mean(closest_other < shift_distance)
print(f"4. closest other-class image nearer than the shifted copy: shift 1 {fraction[1]:.1%}, "
      f"shift 3 {fraction[3]:.1%}")
assert fraction[1] < fraction[3]

# Exercise 5. L2 distances do not change under a rotation, so the L2 neighbours, and the L2
# decision regions (rotated along with the points), stay the same. L1 distances depend on the
# axes, so some L1 neighbour rankings and predictions change.
rng = np.random.default_rng(0)
centres = np.array([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.2]])
toy_X = np.concatenate([c + 0.6 * rng.standard_normal((20, 2)) for c in centres])
toy_y = np.repeat(np.arange(3), 20)
grid_1d = np.linspace(-2.8, 2.8, 80)
grid = np.array(np.meshgrid(grid_1d, grid_1d)).reshape(2, -1).T
angle = np.pi / 4
R = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def l1_distances(A, B):
    return np.abs(A[:, None, :] - B[None, :, :]).sum(axis=2)


changed = {}
for name, distance in {"L1": l1_distances, "L2": cl.compute_distances}.items():
    before = cl.predict_labels(distance(grid, toy_X), toy_y, k=1)
    after = cl.predict_labels(distance(grid @ R.T, toy_X @ R.T), toy_y, k=1)
    changed[name] = np.mean(before != after)
print(f"5. fraction of grid points whose 1-NN label changes under a 45-degree rotation: "
      f"L1 {changed['L1']:.1%}, L2 {changed['L2']:.1%}")
assert changed["L2"] < 0.002 < changed["L1"]   # L2: only rounding at exact ties
