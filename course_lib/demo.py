"""`make demo`: train a small ConvNet on the embedded digits and report its test accuracy.

    python -m course_lib.demo [--epochs 12] [--seed 0] [--quiet]

Steps: load the 8x8 digits (offline, from scikit-learn), build a two-block ConvNet
([conv 3x3 - spatial batchnorm - relu - 2x2 max pool] x 2 - affine - relu - affine - softmax),
train it with Adam through the Solver (progress bar), then print train/validation/test accuracy
and the wall time (which includes Numba compiling the kernels on the very first run).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from course_lib.data import load_digits
from course_lib.models import ConvNet
from course_lib.solver import Solver

__all__: list[str] = []  # run as a script; not re-exported by course_lib


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.demo",
        description="Train a small ConvNet on scikit-learn's 8x8 digits and report accuracy.")
    parser.add_argument("--epochs", type=int, default=12, help="training epochs (default 12)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed for the data split, the weights and the minibatches")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar or per-epoch lines; print only the results")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1; got {args.epochs}")
    return args


def build_model(seed: int) -> ConvNet:
    """Two conv blocks halve 8x8 to 4x4 and then 2x2; about 13k parameters."""
    conv_layers = [
        {"num_filters": 16, "filter_size": 3, "batchnorm": True, "pool": True},
        {"num_filters": 32, "filter_size": 3, "batchnorm": True, "pool": True},
    ]
    return ConvNet(input_dim=(1, 8, 8), conv_layers=conv_layers, hidden_dims=[64],
                   num_classes=10, weight_init="he", reg=1e-4, dtype=np.float32, seed=seed)


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    start = time.perf_counter()

    data = load_digits(num_validation=200, num_test=200, dtype=np.float32, seed=args.seed)
    print(f"Digits: {len(data['X_train'])} train, {len(data['X_val'])} validation, "
          f"{len(data['X_test'])} test images of shape {data['X_train'].shape[1:]}")

    model = build_model(args.seed)
    num_params = sum(p.size for p in model.params.values())
    print(f"Model: [conv 3x3 - batchnorm - relu - pool] x 2 (16, 32 filters) - affine 64 - relu "
          f"- affine 10; {num_params} parameters")
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 3e-3},
                    lr_decay=0.85, batch_size=50, num_epochs=args.epochs, seed=args.seed,
                    verbose=not args.quiet, print_every=None, progress=not args.quiet)
    solver.train()

    results = {
        "train_acc": solver.check_accuracy(data["X_train"], data["y_train"]),
        "val_acc": solver.check_accuracy(data["X_val"], data["y_val"]),
        "test_acc": solver.check_accuracy(data["X_test"], data["y_test"]),
        "seconds": time.perf_counter() - start,
    }
    if solver.stopped_early:
        print(f"Training stopped early: {solver.stop_reason}")
    print(f"Train accuracy: {results['train_acc']:.2%}   "
          f"validation accuracy: {results['val_acc']:.2%}")
    print(f"Test accuracy: {results['test_acc']:.2%}")
    print(f"Wall time: {results['seconds']:.1f} s (more on the first run: Numba compiles the "
          f"kernels once and caches them)")
    return results


if __name__ == "__main__":
    main()
