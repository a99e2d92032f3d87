"""Worked solutions to the exercises of notebook 09 (babysitting, hyperparameter search).
For instructors.

Run from the repository root: .venv/bin/python notebooks/solutions/09_babysitting_hyperparameters.py
Every answer is computed and checked; the script fails if one is wrong. About 5 seconds.
"""

import numpy as np

from course_lib import FullyConnectedNet, Solver, adam, load_dataset, softmax_loss

data = load_dataset("mnist", num_validation=500, num_test=500)


def make_model(weight_scale=1e-2, reg=0.0, seed=0, hidden_dims=(100, 100)):
    return FullyConnectedNet(list(hidden_dims), input_dim=784, num_classes=10,
                             weight_scale=weight_scale, reg=reg, dtype=np.float64, seed=seed)


# Exercise 1. With near-equal scores every class gets probability 1/100: loss ln(100) = 4.605.
# A loss of exactly 0 means every correct class gets probability 1 before any training: a bug
# (the labels leak into the input, the loss ignores the scores, or the wrong labels are used).
loss, _ = softmax_loss(np.random.default_rng(0).normal(scale=1e-3, size=(500, 100)),
                       np.arange(500) % 100)
print(f"1. initial loss with 100 classes {loss:.3f}, ln(100) = {np.log(100):.3f}")
assert abs(loss - np.log(100)) < 0.01

# Exercise 2. The penalty is 0.5 * reg * sum(W^2); with N(0, 0.01^2) weights the expected sum
# over 784*100 + 100*100 + 100*10 = 89,400 weights is 89,400 * 1e-4 = 8.94, so reg = 1 adds
# about 4.47: 2.303 + 4.47 = 6.77 (the notebook prints 6.78).
model = make_model(weight_scale=1e-2, reg=1.0)
base, _ = make_model(weight_scale=1e-2, reg=0.0).loss(data["X_train"], data["y_train"])
with_reg, _ = model.loss(data["X_train"], data["y_train"])
num_weights = sum(w.size for name, w in model.params.items() if name.startswith("W"))
predicted = base + 0.5 * 1.0 * num_weights * 1e-4
print(f"2. {num_weights:,d} weights: predicted {predicted:.3f}, measured {with_reg:.3f}")
assert num_weights == 89_400 and abs(predicted - with_reg) < 0.05

# Exercise 3. A 5x5 grid tries 5 learning rates, random search 25. A band covering 10% of the
# range contains at least one of 25 random values with probability 1 - 0.9^25 = 0.928. The
# grid's 5 values (at 10%, 30%, ..., 90%) are 20% apart, so a band of width 10% at a random
# position inside the range contains one of them only 5/9 = 56% of the time (the band's start
# must fall in one of five intervals of length 0.1 out of 0.9), and never more than one.
p_random = 1 - 0.9 ** 25
sim_rng = np.random.default_rng(0)
starts = sim_rng.uniform(0, 0.9, size=20000)                   # band [s, s + 0.1]
grid = (np.arange(5) + 0.5) / 5
hit_grid = np.mean([np.any((grid >= s) & (grid <= s + 0.1)) for s in starts])
random_values = sim_rng.uniform(0, 1, size=(20000, 25))
hit_random = np.mean(np.any((random_values >= starts[:, None])
                            & (random_values <= starts[:, None] + 0.1), axis=1))
print(f"3. P(at least one run in the band): random {p_random:.3f} (simulated {hit_random:.3f}),"
      f" grid {hit_grid:.3f} (simulated)")
assert abs(hit_random - p_random) < 0.01 and abs(hit_grid - 5 / 9) < 0.02

# Exercise 4. In float64 the overflow threshold is 1.8e308 instead of 3.4e38: the loss climbs
# to around 1e200 (and jumps around, since the huge weights make the scores chaotic) but,
# with a numerically stable softmax (max subtracted), stays finite for the whole epoch.
with np.errstate(all="ignore"):
    solver = Solver(make_model(weight_scale=5e-2), data, update_rule="sgd",
                    optim_config={"learning_rate": 1e6}, num_epochs=1, batch_size=50,
                    explode_factor=None, verbose=False, progress=False, seed=0)
    solver.train()
losses = np.array(solver.loss_history)
print(f"4. float64: {len(losses)} iterations, largest loss {losses.max():.2g}, any NaN:"
      f" {bool(np.isnan(losses).any())}, stop reason: {solver.stop_reason}")
assert np.all(np.isfinite(losses)) and losses.max() > 1e100 and len(losses) == 80

# Exercise 5. L2 keeps the weights small, so the network cannot become as over-confident on
# its 100 examples: the validation loss rises much less after its minimum (the training loss
# no longer goes towards 0).


def three_losses(reg):
    model = make_model(weight_scale=5e-2, reg=reg)
    configs = {name: {"learning_rate": 1e-3} for name in model.params}
    loop_rng = np.random.default_rng(0)
    X, y = data["X_train"][:100], data["y_train"][:100]
    val = []
    for _ in range(100):
        for batch in np.array_split(loop_rng.permutation(100), 2):
            _, grads = model.loss(X[batch], y[batch])
            for name in model.params:
                model.params[name], configs[name] = adam(model.params[name], grads[name],
                                                         configs[name])
        # The data loss only: the validation loss must not include the penalty.
        model.reg, reg_saved = 0.0, model.reg
        val.append(model.loss(data["X_val"], data["y_val"])[0])
        model.reg = reg_saved
    return np.array(val)


rise = {reg: (lambda v: v[-1] - v.min())(three_losses(reg)) for reg in [0.0, 1e-1]}
print(f"5. rise of the validation loss after its minimum: no reg {rise[0.0]:.3f},"
      f" reg 0.1 {rise[1e-1]:.3f}")
assert rise[1e-1] < 0.5 * rise[0.0]
