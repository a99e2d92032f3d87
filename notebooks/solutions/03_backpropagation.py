"""Instructor solutions to the exercises of notebook 03 (backpropagation).

Run: python notebooks/solutions/03_backpropagation.py   (a few seconds; prints and checks each
answer).
"""
import math

import numpy as np

import course_lib as cl
from course_lib.figures.graphs import ComputationalGraph, gate_patterns_graph, sigmoid_example_graph

# Exercise 1. q = x + y = 3, f = q z = 9; df/dz = q = 3, df/dq = z = 3, and the add gate passes
# df/dq to both: df/dx = df/dy = 3.
g = ComputationalGraph()
g.mul(g.add(g.input("x", 1.0), g.input("y", 2.0), "q"), g.input("z", 3.0), "f")
g.backward()
print("1. f =", g.value("f"), " grads:", g.grad("x"), g.grad("y"), g.grad("z"))
assert (g.value("f"), g.grad("x"), g.grad("y"), g.grad("z")) == (9.0, 3.0, 3.0, 3.0)

# Exercise 2. On a tie the whole upstream gradient (2) goes to one input: z (the first) here, 0 to
# w. Either way the two gradients sum to 2: the max gate routes, it never duplicates. (The
# function has a kink there; its one-sided derivatives differ, so any choice is a subgradient.)
tie = gate_patterns_graph(x=3.0, y=-4.0, z=2.0, w=2.0)
print("2. tie: df/dz =", tie.grad("z"), " df/dw =", tie.grad("w"))
assert (tie.grad("z"), tie.grad("w")) == (2.0, 0.0)

# Exercise 3. w2 = +7 makes the dot product 11 instead of 1: sigma(11) is almost 1, so the local
# gradient sigma (1 - sigma) falls from 0.197 to 1.7e-5, and df/dw0 = x0 * that shrinks about
# 12,000 times: a saturated sigmoid stops learning.
base, saturated = sigmoid_example_graph(), sigmoid_example_graph(w2=7.0)
ratio = base.grad("w0") / saturated.grad("w0")
expected = (0.7310585786 * (1 - 0.7310585786)) / (
    (1 / (1 + math.exp(-11))) * (1 - 1 / (1 + math.exp(-11))))
print(f"3. df/dw0: {base.grad('w0'):.4g} -> {saturated.grad('w0'):.4g} ({ratio:.0f} times smaller)")
assert abs(ratio - expected) / expected < 1e-6 and ratio > 1e4

# Exercise 4. x is used three times (twice in x*x, once in + x): the gradients add,
# x + x + 1 = 2x + 1 = 7.
g = ComputationalGraph()
x = g.input("x", 3.0)
g.add(g.mul(x, x, "xx"), x, "f")
g.backward()
print("4. f =", g.value("f"), " df/dx =", g.grad("x"))
assert g.grad("x") == 7.0

# Exercise 5. float32 has a 24-bit mantissa (relative rounding ~6e-8). The centred difference
# divides a loss difference that is rounded at ~1e-7 * |loss| by 2h = 2e-5, so its error is about
# 1e-7 / 1e-5 = 1e-2 of a gradient of order 1, and far more for the tiny entries (the worst one
# reaches ~1 here, against <1e-5 in float64): the check becomes
# useless. Gradient checks are done in float64.
rng = np.random.default_rng(0)
data = cl.load_digits(num_validation=200, num_test=200, seed=0, flatten=True)
N, D, H, C = 8, 64, 20, 10
X64, y = data["X_train"][:N], data["y_train"][:N]
reg = 0.05
params64 = {"W1": 0.1 * rng.standard_normal((D, H)), "b1": 0.1 * rng.standard_normal(H),
            "W2": 0.1 * rng.standard_normal((H, C)), "b2": 0.1 * rng.standard_normal(C)}


def forward(params, X, y, reg):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    h = X @ W1 + b1
    a = np.maximum(0, h)
    s = a @ W2 + b2
    shifted = s - s.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = -np.mean(np.log(p[np.arange(len(y)), y])) + 0.5 * reg * (np.sum(W1**2) + np.sum(W2**2))
    return loss, (X, h, a, p)


def backward(params, y, reg, cache):
    X, h, a, p = cache
    ds = p.copy()
    ds[np.arange(len(y)), y] -= 1
    ds /= len(y)
    grads = {"W2": a.T @ ds + reg * params["W2"], "b2": ds.sum(axis=0)}
    dh = ds @ params["W2"].T * (h > 0)
    grads["W1"] = X.T @ dh + reg * params["W1"]
    grads["b1"] = dh.sum(axis=0)
    return grads


def worst_relative_error(params, X):
    grads = backward(params, y, reg, forward(params, X, y, reg)[1])
    errors = []
    for name in ["W1", "b1", "W2", "b2"]:
        numerical = cl.eval_numerical_gradient(lambda _: forward(params, X, y, reg)[0],
                                               params[name], verbose=False)
        errors.append(cl.rel_error(numerical, grads[name]))
    return max(errors)


error64 = worst_relative_error(params64, X64)
params32 = {name: value.astype(np.float32) for name, value in params64.items()}
error32 = worst_relative_error(params32, X64.astype(np.float32))
print(f"5. worst relative error: float64 {error64:.1e}, float32 {error32:.1e}")
assert error64 < 1e-5 and error32 > 1e-3
