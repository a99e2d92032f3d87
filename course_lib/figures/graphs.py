"""A scalar computational graph that computes its forward values and backward gradients, and draws
them as CS231n's lecture does: forward values above each edge (green), gradients below (red).

    graph = ComputationalGraph()
    x, y, z = graph.input("x", -2.0), graph.input("y", 5.0), graph.input("z", -4.0)
    q = graph.add(x, y, "q")
    f = graph.mul(q, z, "f")
    graph.backward(f)            # graph.grad("x") == -4.0
    graph.plot()

Each gate knows its local derivative, and backward multiplies it by the upstream gradient and
adds the products over the paths (the chain rule, as in notebook 03). Values are Python floats.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ComputationalGraph", "sigmoid_example_graph", "gate_patterns_graph"]


@dataclass
class Node:
    """One value of the graph: an input, or the output of a gate applied to other nodes."""

    name: str
    op: str                      # "input", "+", "*", "max", "exp", "*-1", "+1", "1/x", ...
    inputs: tuple[str, ...]
    value: float
    grad: float = 0.0


# op -> (forward, local derivatives d out / d input_i as a function of the input values)
GATES: dict[str, tuple[Callable[..., float], Callable[..., tuple[float, ...]]]] = {
    "+": (lambda a, b: a + b, lambda a, b: (1.0, 1.0)),
    "*": (lambda a, b: a * b, lambda a, b: (b, a)),
    # The max gate routes the gradient to the larger input (the first one on a tie).
    "max": (lambda a, b: max(a, b), lambda a, b: (1.0, 0.0) if a >= b else (0.0, 1.0)),
    "exp": (lambda a: math.exp(a), lambda a: (math.exp(a),)),
    "*-1": (lambda a: -a, lambda a: (-1.0,)),
    "+1": (lambda a: a + 1.0, lambda a: (1.0,)),
    "1/x": (lambda a: 1.0 / a, lambda a: (-1.0 / (a * a),)),
    "sigmoid": (lambda a: 1.0 / (1.0 + math.exp(-a)),
                lambda a: ((1.0 / (1.0 + math.exp(-a))) * (1.0 - 1.0 / (1.0 + math.exp(-a))),)),
}


@dataclass
class ComputationalGraph:
    """Nodes in the order they were created (a topological order, since gates use earlier nodes)."""

    nodes: dict[str, Node] = field(default_factory=dict)

    def input(self, name: str, value: float) -> str:
        """A leaf holding `value`; returns its name."""
        return self._new(name, "input", (), float(value))

    def gate(self, op: str, *inputs: str, name: str | None = None) -> str:
        """Apply one of GATES to existing nodes; returns the new node's name."""
        if op not in GATES:
            raise ValueError(f"op must be one of {sorted(GATES)}; got {op!r}")
        missing = [n for n in inputs if n not in self.nodes]
        if missing:
            raise ValueError(f"inputs must be names of existing nodes ({list(self.nodes)}); "
                             f"got unknown {missing}")
        forward, _ = GATES[op]
        arity = forward.__code__.co_argcount
        if len(inputs) != arity:
            raise ValueError(f"gate {op!r} takes {arity} input(s); got {len(inputs)}")
        value = forward(*(self.nodes[n].value for n in inputs))
        return self._new(name or f"n{len(self.nodes)}", op, tuple(inputs), value)

    def add(self, a: str, b: str, name: str | None = None) -> str:
        return self.gate("+", a, b, name=name)

    def mul(self, a: str, b: str, name: str | None = None) -> str:
        return self.gate("*", a, b, name=name)

    def _new(self, name: str, op: str, inputs: tuple[str, ...], value: float) -> str:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string; got {name!r}")
        if name in self.nodes:
            raise ValueError(f"name must be new; {name!r} is already a node")
        self.nodes[name] = Node(name, op, inputs, value)
        return name

    def value(self, name: str) -> float:
        return self.nodes[name].value

    def grad(self, name: str) -> float:
        return self.nodes[name].grad

    def forward(self, **inputs: float) -> float:
        """Set some inputs to new values, recompute every node; returns the last node's value."""
        for name, value in inputs.items():
            if name not in self.nodes or self.nodes[name].op != "input":
                raise ValueError(f"{name!r} is not an input of this graph; inputs are "
                                 f"{[n.name for n in self.nodes.values() if n.op == 'input']}")
            self.nodes[name].value = float(value)
        for node in self.nodes.values():
            if node.op != "input":
                node.value = GATES[node.op][0](*(self.nodes[n].value for n in node.inputs))
        return list(self.nodes.values())[-1].value

    def backward(self, output: str | None = None) -> None:
        """d output / d node for every node: gradient 1 at `output` (default: the last node),
        then, in reverse order, each gate sends upstream * local derivative to its inputs."""
        output = output or list(self.nodes)[-1]
        if output not in self.nodes:
            raise ValueError(f"output must be a node name; got {output!r}")
        for node in self.nodes.values():
            node.grad = 0.0
        self.nodes[output].grad = 1.0
        for node in reversed(self.nodes.values()):
            if node.op == "input":
                continue
            local = GATES[node.op][1](*(self.nodes[n].value for n in node.inputs))
            for name, derivative in zip(node.inputs, local, strict=True):
                self.nodes[name].grad += node.grad * derivative  # sum over paths

    def depths(self) -> dict[str, int]:
        """Column of each node in the drawing: a gate one right of its deepest input; an input one
        left of the first gate that uses it."""
        depth: dict[str, int] = {}
        for node in self.nodes.values():
            depth[node.name] = 1 + max((depth[n] for n in node.inputs), default=-1)
        # An input sits just left of its first consumer: a late input (a bias) needs no long edge.
        first_use: dict[str, int] = {}
        for node in self.nodes.values():
            for name in node.inputs:
                if self.nodes[name].op == "input" and name not in first_use:
                    first_use[name] = depth[node.name] - 1
        depth.update(first_use)
        return depth

    def plot(self, title: str = "Computational graph", figsize: tuple[float, float] | None = None,
             show_gradients: bool = True) -> Figure:
        """Nodes left to right by depth; forward values in green above the edges, gradients in
        red below (after backward()). Returns the Figure."""
        import matplotlib.pyplot as plt

        depth = self.depths()
        columns: dict[int, list[str]] = {}
        for name in self.nodes:
            columns.setdefault(depth[name], []).append(name)
        position: dict[str, tuple[float, float]] = {}
        n_rows = max(len(c) for c in columns.values())
        for col, names in columns.items():
            spacing = n_rows / len(names)  # short columns spread over the same height
            for row, name in enumerate(names):
                position[name] = (col * 2.2, ((len(names) - 1) / 2 - row) * spacing)
        n_cols = max(columns) + 1
        if figsize is None:
            figsize = (max(6.0, 2.0 * n_cols + 1.5), max(3.0, 1.2 * n_rows + 1.2))
        fig, ax = plt.subplots(figsize=figsize)
        for node in self.nodes.values():
            x1, y1 = position[node.name]
            for source in node.inputs:
                x0, y0 = position[source]
                ax.annotate("", xy=(x1 - 0.35, y1), xytext=(x0 + 0.35, y0),
                            arrowprops={"arrowstyle": "->", "color": "0.4"})
                self._label_edge(ax, (x0, y0), (x1, y1), self.nodes[source], show_gradients)
            if node.op == "input":
                ax.text(x1, y1, node.name, ha="center", va="center", fontsize=11,
                        fontweight="bold")
            else:
                ax.add_patch(plt.Circle((x1, y1), 0.33, facecolor="#f0f0f0", edgecolor="black"))
                ax.text(x1, y1, node.op, ha="center", va="center", fontsize=10)
        last = list(self.nodes.values())[-1]
        x_end, y_end = position[last.name]
        ax.annotate("", xy=(x_end + 1.4, y_end), xytext=(x_end + 0.35, y_end),
                    arrowprops={"arrowstyle": "->", "color": "0.4"})
        self._label_edge(ax, (x_end, y_end), (x_end + 1.4, y_end), last, show_gradients)
        ax.set_xlim(-0.8, x_end + 1.8)
        ys = [p[1] for p in position.values()]
        ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
        ax.set_aspect("equal")
        ax.axis("off")
        legend = "green: forward value" + ("   red: gradient d(output)/d(value)"
                                           if show_gradients else "")
        ax.set_title(f"{title}\n{legend}", fontsize=10)
        fig.tight_layout()
        return fig

    @staticmethod
    def _label_edge(ax, start: tuple[float, float], end: tuple[float, float], node: Node,
                    show_gradients: bool) -> None:
        mid_x, mid_y = (start[0] + end[0]) / 2, (start[1] + end[1]) / 2
        ax.text(mid_x, mid_y + 0.08, f"{node.value:.3g}", color="tab:green", ha="center",
                va="bottom", fontsize=9)
        if show_gradients:
            ax.text(mid_x, mid_y - 0.08, f"{node.grad:.3g}", color="tab:red", ha="center",
                    va="top", fontsize=9)


def sigmoid_example_graph(w0: float = 2.0, x0: float = -1.0, w1: float = -3.0, x1: float = -2.0,
                          w2: float = -3.0) -> ComputationalGraph:
    """CS231n's f(w, x) = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))), gate by gate, after backward().

    With the lecture's values f = 0.731 and df/dw0 = -0.197, df/dx0 = 0.393.
    """
    g = ComputationalGraph()
    g.mul(g.input("w0", w0), g.input("x0", x0), "w0x0")
    g.mul(g.input("w1", w1), g.input("x1", x1), "w1x1")
    s = g.add(g.add("w0x0", "w1x1", "dot"), g.input("w2", w2), "s")
    g.gate("1/x", g.gate("+1", g.gate("exp", g.gate("*-1", s, name="-s"), name="exp"),
                         name="1+exp"), name="f")
    g.backward()
    return g


def gate_patterns_graph(x: float = 3.0, y: float = -4.0, z: float = 2.0, w: float = -1.0
                        ) -> ComputationalGraph:
    """CS231n's 2 * (x*y + max(z, w)): the add gate distributes, the max gate routes, the mul
    gate swaps. Returned after backward()."""
    g = ComputationalGraph()
    xy = g.mul(g.input("x", x), g.input("y", y), "xy")
    m = g.gate("max", g.input("z", z), g.input("w", w), name="max")
    g.mul(g.add(xy, m, "sum"), g.input("two", 2.0), "f")
    g.backward()
    return g
