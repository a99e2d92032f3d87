"""Worked solutions to the exercises of notebook 07 (optimisers). For instructors.

Run from the repository root: .venv/bin/python notebooks/solutions/07_optimizers.py
Every answer is computed and checked; the script fails if one is wrong. About 10 seconds.
"""

import numpy as np

from course_lib import (
    FullyConnectedNet,
    Solver,
    adagrad,
    adam,
    load_digits,
    rmsprop,
    sgd,
    sgd_momentum,
)

# Exercise 1. With a constant gradient g, v_t = mu v_(t-1) - lr g gives
# v_t = -lr g (1 - mu^t) / (1 - mu): the step tends to lr g / (1 - mu) = 10 lr g for mu = 0.9.
# Within 5%: mu^t <= 0.05, t >= ln 0.05 / ln 0.9 = 28.4, so after 29 steps.
lr, mu, g = 0.01, 0.9, 2.0
w, config, steps = np.zeros(1), {"learning_rate": lr, "momentum": mu}, []
for _ in range(40):
    w_next, config = sgd_momentum(w, np.array([g]), config)
    steps.append(abs(w_next - w)[0])
    w = w_next
limit = lr * g / (1 - mu)
first_within = 1 + int(np.argmax(np.array(steps) >= 0.95 * limit))
print(f"1. terminal step {limit:.3f} = 10 x lr x g; within 5% after {first_within} steps")
assert np.isclose(steps[-1], limit, rtol=0.02) and first_within == 29

# Exercise 2. AdaGrad's cache after t steps is t g^2, so the step is lr g / sqrt(t g^2)
# = lr / sqrt(t): it shrinks to zero however far the minimum still is, because the cache only
# grows. RMSProp's leaky cache tends to g^2, so its step tends to lr (per coordinate).
w, config_ada, w2, config_rms = np.zeros(1), {"learning_rate": 0.1}, np.zeros(1), \
    {"learning_rate": 0.1, "decay_rate": 0.9}
for t in range(1, 101):
    w_next, config_ada = adagrad(w, np.array([3.0]), config_ada)
    ada_step, w = abs(w_next - w)[0], w_next
    w2_next, config_rms = rmsprop(w2, np.array([3.0]), config_rms)
    rms_step, w2 = abs(w2_next - w2)[0], w2_next
    assert np.isclose(ada_step, 0.1 / np.sqrt(t), rtol=1e-6)
print(f"2. step 100: AdaGrad {ada_step:.4f} = 0.1/sqrt(100); RMSProp {rms_step:.4f} -> 0.1")
assert np.isclose(rms_step, 0.1, rtol=1e-3)

# Exercise 3. Uncorrected first step / lr = (1 - beta1) / sqrt(1 - beta2):
# beta2 = 0.99: 0.1 / 0.1 = 1.0; beta1 = 0.99, beta2 = 0.999: 0.01 / 0.0316 = 0.316.
for beta1, beta2, expected in [(0.9, 0.99, 1.0), (0.99, 0.999, 0.316)]:
    m, v = (1 - beta1) * 0.5, (1 - beta2) * 0.5 ** 2          # after one step, gradient 0.5
    ratio = m / np.sqrt(v)
    corrected, _ = adam(np.zeros(1), np.array([0.5]), {"learning_rate": 1.0, "beta1": beta1,
                                                       "beta2": beta2})
    print(f"3. beta1 {beta1}, beta2 {beta2}: uncorrected first step {ratio:.3f} lr,"
          f" corrected {abs(corrected[0]):.3f} lr")
    assert np.isclose(ratio, expected, atol=1e-3) and np.isclose(abs(corrected[0]), 1.0, 1e-6)


def grad_valley(w):
    return np.array([w[0], 25 * w[1]])


def run(update, config, steps, w0=(-9.0, 1.5)):
    w, config = np.array(w0), dict(config)
    for _ in range(steps):
        w, config = update(w, grad_valley(w), config)
    return w


# Exercise 4. Along w_1 each SGD step multiplies w_1 by (1 - 25 lr) = -1.025 at lr 0.081, so
# after 40 steps w_1 = 1.5 * 1.025^40 = 4.03 (the sign flips every step, 40 is even).
# Heavy-ball momentum on curvature lam is stable for lr lam < 2 (1 + mu): lr < 3.8 / 25 = 0.152.
w = run(sgd, {"learning_rate": 0.081}, 40)
print(f"4. SGD lr 0.081: w_1 after 40 steps {w[1]:.3f}, predicted {1.5 * 1.025 ** 40:.3f}")
assert np.isclose(w[1], 1.5 * 1.025 ** 40)
stable = abs(run(sgd_momentum, {"learning_rate": 0.150, "momentum": 0.9}, 2000)[1])
unstable = abs(run(sgd_momentum, {"learning_rate": 0.154, "momentum": 0.9}, 2000)[1])
print(f"   momentum 0.9: |w_1| after 2000 steps at lr 0.150: {stable:.1e}, at 0.154:"
      f" {unstable:.1e} (limit 0.152)")
assert stable < 1e-3 and unstable > 1e3

# Exercise 5. A cosine schedule spends the last epochs at small learning rates, where the
# noise of the minibatch gradients averages out (notebook 07, section 1): the final training
# loss is lower; validation accuracy about the same or slightly better.
data = load_digits(seed=0)


def train(lr, **schedule):
    model = FullyConnectedNet([100, 100], input_dim=64, num_classes=10, weight_scale=5e-2,
                              dtype=np.float64, seed=0)
    solver = Solver(model, data, update_rule="sgd_momentum", optim_config={"learning_rate": lr},
                    num_epochs=5, batch_size=50, verbose=False, progress=False, seed=0,
                    **schedule)
    solver.train()
    return solver


learning_rates = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0]
constant = {lr: train(lr) for lr in learning_rates}
best_lr = max(learning_rates, key=lambda lr: constant[lr].best_val_acc)
cosine = train(best_lr, lr_schedule="cosine", lr_schedule_kwargs={"lr0": best_lr,
                                                                  "total_steps": 5})
loss = {"constant": np.mean(constant[best_lr].loss_history[-10:]),
        "cosine": np.mean(cosine.loss_history[-10:])}
print(f"5. sgd_momentum at lr {best_lr:g}: final training loss constant {loss['constant']:.3f},"
      f" cosine {loss['cosine']:.3f}; best validation accuracy"
      f" {constant[best_lr].best_val_acc:.3f} vs {cosine.best_val_acc:.3f}")
assert loss["cosine"] < loss["constant"]
