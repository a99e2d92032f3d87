"""Worked solutions to the exercises of notebook 10 (architectures, transfer learning).
For instructors.

Run from the repository root: .venv/bin/python notebooks/solutions/10_architectures_transfer.py
Every answer is computed and checked; the script fails if one is wrong. About 15 seconds.
"""

import copy

import numpy as np

from course_lib import (
    ConvNet,
    FullyConnectedNet,
    Solver,
    affine_backward,
    affine_forward,
    conv_forward,
    load_dataset,
    max_pool_forward,
    relu_backward,
    relu_forward,
)
from course_lib.figures.architectures import (
    BOTTLENECK_INCEPTION,
    inception_costs,
    layer_volumes,
)

# Exercise 1. conv1: 96 filters of 3 x 11 x 11 weights plus a bias each:
# 96 * 363 + 96 = 34,944 parameters; output 55 x 55 x 96 = 290,400 values per image.
params = 96 * 3 * 11 * 11 + 96
volume = dict(layer_volumes((3, 227, 227)))["conv1"]
print(f"1. conv1: {params:,d} parameters, output {volume} = {int(np.prod(volume)):,d} values")
assert params == 34_944 and np.prod(volume) == 290_400

# Exercise 2. 224 + 2P - 11 = 213 + 2P is odd for every integer P, so no symmetric padding
# makes it a multiple of 4. Implementations pad asymmetrically (3 in total, e.g. 1 and 2), or
# use 227 x 227 crops, which is the same thing.
fits = [P for P in range(20) if (224 + 2 * P - 11) % 4 == 0]
print(f"2. symmetric paddings that tile 224 with 11x11 stride 4: {fits} (none);"
      f" total padding 3 gives {(224 + 3 - 11) // 4 + 1} positions")
assert fits == [] and (224 + 3 - 11) % 4 == 0

# Exercise 3. With 128-filter reductions: 1x1,128 on 256 (25.7 M) + two 1x1,128 on 256
# (51.4 M) + 3x3,192 on 128 (173.4 M) + 5x5,96 on 128 (240.8 M) + pool, 1x1,64 (12.8 M) = 504 M,
# almost twice the 271 M of the 64-filter reductions: the 3x3 and 5x5 costs scale with the
# depth of their input.
wider = [[("conv", 1, 128)], [("conv", 1, 128), ("conv", 3, 192)],
         [("conv", 1, 128), ("conv", 5, 96)], [("pool", 3, None), ("conv", 1, 64)]]
total = {name: sum(m for rows in inception_costs((256, 28, 28), spec)[0] for *_, m in rows)
         for name, spec in [("64", BOTTLENECK_INCEPTION), ("128", wider)]}
print(f"3. reductions of 64: {total['64'] / 1e6:.0f} M; of 128: {total['128'] / 1e6:.0f} M")
assert round(total["128"] / 1e6) == 504

# Exercise 4. Ten times larger weights (std 1/sqrt(50)): in the plain stack each ReLU layer
# now roughly preserves half the gradient's energy (a factor about 1/sqrt(2) per layer, as in
# He initialisation without its factor 2), so the gradient still shrinks, by orders of
# magnitude less than before. In the residual stack every block adds its Jacobian to the
# identity, (I + J), and the gradient now *grows* towards the first layer: residual networks
# need normalisation or a careful initialisation as well.
rng = np.random.default_rng(0)
depth, width = 30, 50
weights = [rng.normal(size=(width, width)) / np.sqrt(width) for _ in range(depth)]
x0 = rng.normal(size=(16, width))
ratio = {}
for kind in ["plain", "residual"]:
    h, caches = x0, []
    for W in weights:
        a, affine_cache = affine_forward(h, W, np.zeros(width))
        r, relu_cache = relu_forward(a)
        caches.append((affine_cache, relu_cache))
        h = r + h if kind == "residual" else r
    dh, norms = np.ones_like(h), []
    for affine_cache, relu_cache in reversed(caches):
        dprev, _, _ = affine_backward(relu_backward(dh, relu_cache), affine_cache)
        dh = dprev + dh if kind == "residual" else dprev
        norms.append(np.linalg.norm(dh))
    ratio[kind] = norms[-1] / norms[0]                  # layer 1 over layer 30
print(f"4. gradient norm at layer 1 / at layer 30: plain {ratio['plain']:.1e},"
      f" residual {ratio['residual']:.1e}")
assert 1e-8 < ratio["plain"] < 1e-2 and ratio["residual"] > 10

# Exercise 5. Features from the second conv/pool stage (16 x 7 x 7 = 784 values) are more
# generic (strokes and their positions) than the 84 top-layer features, which encode the
# shapes of upright digits 0-7. For the rotated 8-vs-9 task with 10 images per class, measured
# over the two draws of the notebook's table, the earlier features do better.
data = load_dataset("mnist", num_validation=500, num_test=500, dtype=np.float32)
input_dim = data["X_train"].shape[1:]
LENET_CONV_LAYERS = [{"num_filters": 6, "filter_size": 5, "pool": True},
                     {"num_filters": 16, "filter_size": 5, "pool": True}]


def lenet(num_classes, seed):
    return ConvNet(input_dim=input_dim, conv_layers=LENET_CONV_LAYERS, hidden_dims=(120, 84),
                   num_classes=num_classes, seed=seed)


def select(X, y, classes):
    keep = np.isin(y, classes)
    return X[keep], y[keep] - min(classes)


source = {}
source["X_train"], source["y_train"] = select(data["X_train"], data["y_train"], range(8))
source["X_val"], source["y_val"] = select(data["X_val"], data["y_val"], range(8))
pretrained = lenet(8, seed=0)
Solver(pretrained, source, update_rule="adam", optim_config={"learning_rate": 2e-3},
       num_epochs=10, batch_size=50, verbose=False, progress=False, seed=0).train()


def top_features(model, X):
    headless = copy.deepcopy(model)
    last = model.num_layers
    D = model.params[f"W{last}"].shape[0]
    headless.params[f"W{last}"] = np.eye(D, dtype=np.float32)
    headless.params[f"b{last}"] = np.zeros(D, dtype=np.float32)
    return headless.loss(X)


def conv_stage_features(model, X):
    # conv 5x5 (pad 2) -> ReLU -> 2x2 max pool, twice, with the pretrained weights.
    h = X
    for i in (1, 2):
        h, _ = conv_forward(h, model.params[f"W{i}"], model.params[f"b{i}"],
                            {"stride": 1, "pad": 2})
        h, _ = max_pool_forward(relu_forward(h)[0], {"pool_height": 2, "pool_width": 2,
                                                     "stride": 2})
    return h.reshape(len(X), -1)


def rotated(X):
    return np.ascontiguousarray(np.rot90(X, 1, axes=(2, 3)))


def linear_probe(features, X_train, y_train, X_val, y_val, X_test, y_test, seed):
    task = {"X_train": np.concatenate([features(pretrained, X_train)] * 2),
            "y_train": np.concatenate([y_train] * 2),
            "X_val": features(pretrained, X_val), "y_val": y_val}
    model = FullyConnectedNet([], input_dim=task["X_train"].shape[1], num_classes=2, seed=seed)
    solver = Solver(model, task, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    num_epochs=150 * 10 // len(task["y_train"]), batch_size=10, verbose=False,
                    progress=False, seed=seed)
    solver.train()
    return solver.check_accuracy(features(pretrained, X_test), y_test)


X_target, y_target = select(np.concatenate([data["X_train"], data["X_test"]]),
                            np.concatenate([data["y_train"], data["y_test"]]), [8, 9])
X_tval, y_tval = select(data["X_val"], data["y_val"], [8, 9])
probe = {"top layer (84)": [], "conv stage 2 (784)": []}
for seed in range(2):
    pick = np.random.default_rng(seed)
    labelled = np.concatenate([pick.choice(np.flatnonzero(y_target == c), 10, replace=False)
                               for c in (0, 1)])
    rest = np.setdiff1d(np.arange(len(y_target)), labelled)
    for name, features in [("top layer (84)", top_features),
                           ("conv stage 2 (784)", conv_stage_features)]:
        probe[name].append(linear_probe(features, rotated(X_target[labelled]), y_target[labelled],
                                        rotated(X_tval), y_tval, rotated(X_target[rest]),
                                        y_target[rest], seed))
print("5. rotated 8 vs 9, 10 per class, linear classifier on frozen features:",
      {name: np.round(accs, 3).tolist() for name, accs in probe.items()})
assert np.mean(probe["conv stage 2 (784)"]) > np.mean(probe["top layer (84)"])
