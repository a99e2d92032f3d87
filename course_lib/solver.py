"""Solver: trains a model with minibatch gradient descent (CS231n's `Solver`, extended).

    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, batch_size=50, num_epochs=10, seed=0)
    solver.train()
    solver.best_val_acc, solver.loss_history, solver.train_acc_history, solver.val_acc_history

A model is any object with a `params` dict of arrays and a method `loss(X, y=None)` that returns
scores (N, C) when y is None and `(loss, grads)` with grads keyed like params otherwise.
After `train()` the model holds the parameters (and batchnorm running statistics) of the epoch
with the best validation accuracy.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from course_lib import optim, schedules
from course_lib.validation import (
    check_float_array,
    check_int_array,
    check_param_dict,
    check_positive_int,
)

__all__ = ["Solver", "UPDATE_RULES"]

UPDATE_RULES = ("sgd", "sgd_momentum", "sgd_nesterov", "adagrad", "rmsprop", "adam")
DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")


def _check_data(data: Any) -> dict:
    check_param_dict(data, "data", required=DATA_KEYS)
    for split in ("train", "val"):
        X = check_float_array(data[f"X_{split}"], f"data['X_{split}']")
        if X.ndim < 2 or X.shape[0] == 0:
            raise ValueError(f"data['X_{split}'] must be a non-empty batch (N, ...); got shape "
                             f"{X.shape}")
        y = data[f"y_{split}"]
        check_int_array(y, f"data['y_{split}']")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"data['y_{split}'] must hold one label per row of "
                             f"data['X_{split}'] ({X.shape[0]}); got {y.shape[0]} labels")
    if data["X_train"].shape[1:] != data["X_val"].shape[1:]:
        raise ValueError(f"data['X_val'] must have samples of the same shape as data['X_train'] "
                         f"{data['X_train'].shape[1:]}; got {data['X_val'].shape[1:]}")
    return data


def _check_model(model: Any) -> None:
    params = getattr(model, "params", None)
    if not isinstance(params, dict) or not params or not callable(getattr(model, "loss", None)):
        raise TypeError(f"model must have a non-empty `params` dict and a `loss(X, y=None)` "
                        f"method; got {type(model).__name__}")


def _resolve_update_rule(update_rule: Any) -> Callable:
    if callable(update_rule):
        return update_rule
    if update_rule not in UPDATE_RULES:
        raise ValueError(f"update_rule must be one of {UPDATE_RULES} or a callable "
                         f"update(w, dw, config) -> (next_w, config); got {update_rule!r}")
    return getattr(optim, update_rule)


def _check_number(value: Any, name: str, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number; got {type(value).__name__} {value!r}")
    if not (low < value <= high):
        raise ValueError(f"{name} must be in ({low}, {high}]; got {value}")
    return float(value)


class Solver:
    """Minibatch training with per-epoch accuracy checks, lr decay and early stopping.

    Required: model (see the module docstring) and data, a dict with X_train, y_train, X_val,
    y_val (X float arrays (N, ...), y int labels (N,)); extra keys such as X_test are ignored.

    Optional keyword arguments:
    - update_rule: 'sgd', 'sgd_momentum', 'sgd_nesterov', 'adagrad', 'rmsprop', 'adam'
      (from course_lib.optim) or a callable update(w, dw, config) -> (next_w, config).
    - optim_config: hyperparameters for the update rule (e.g. learning_rate); every parameter
      gets its own deep copy, which then also holds that parameter's optimizer state.
    - lr_decay: after each epoch every learning rate is multiplied by lr_decay (CS231n).
    - lr_schedule: instead of lr_decay, a schedule name from course_lib.schedules (built with
      get_schedule(name, **lr_schedule_kwargs)) or a callable; see `_scheduled_learning_rate`.
      lr_schedule_every: 'epoch' (the schedule is evaluated at the start of each epoch, step =
      epoch index) or 'iteration' (before each update, step = iteration index).
    - batch_size (100), num_epochs (10): each epoch visits the training set in a new random
      order, in num_train // batch_size minibatches (at least one).
    - num_train_samples (1000) / num_val_samples (None = all): sizes of the random subsets on
      which the train / validation accuracy is estimated at the start and after each epoch.
    - seed: int, np.random.Generator or None; drives minibatch order, the accuracy subsets and
      `augment`, so a seeded run with a seeded model is reproducible. Dropout layers draw from
      NumPy's global generator: call np.random.seed too when the model uses dropout.
    - augment: callable(X_batch, rng) -> X_batch of the same shape, applied to each training
      minibatch (e.g. from course_lib.data.augmentation).
    - explode_factor (3.0): stop early when the loss exceeds explode_factor x the first loss
      (the lecture's rule of thumb), or is NaN/inf; None disables the ratio test.
    - checkpoint_name: if given, after each epoch np.savez writes
      '{checkpoint_name}_epoch_{epoch}.npz' with the parameters under 'params/<name>' plus
      epoch, loss_history, train_acc_history, val_acc_history (arrays only, no pickle).
    - print_every (10), verbose (True): print the loss every print_every iterations (None:
      never) and the accuracies every epoch. progress (True): show a tqdm progress bar.

    After train(): loss_history (per iteration), train_acc_history / val_acc_history (at the
    start and after each epoch), best_val_acc, best_params (restored into the model),
    stopped_early and stop_reason.
    """

    def __init__(self, model: Any, data: Mapping[str, np.ndarray], *,
                 update_rule: str | Callable = "sgd", optim_config: dict | None = None,
                 lr_decay: float = 1.0, lr_schedule: str | Callable | None = None,
                 lr_schedule_kwargs: dict | None = None, lr_schedule_every: str = "epoch",
                 batch_size: int = 100, num_epochs: int = 10, num_train_samples: int = 1000,
                 num_val_samples: int | None = None, seed: Any = None,
                 augment: Callable | None = None, explode_factor: float | None = 3.0,
                 checkpoint_name: str | None = None, print_every: int | None = 10,
                 verbose: bool = True, progress: bool = True) -> None:
        _check_model(model)
        data = _check_data(data)
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]

        self.update_rule = update_rule
        self._update = _resolve_update_rule(update_rule)
        self.optim_config = dict(check_param_dict({} if optim_config is None else optim_config,
                                                  "optim_config"))
        self.lr_decay = _check_number(lr_decay, "lr_decay", 0.0)
        if lr_schedule is not None and lr_decay != 1.0:
            raise ValueError("give either lr_decay or lr_schedule, not both; got lr_decay="
                             f"{lr_decay} and lr_schedule={lr_schedule!r}")
        self._schedule = self._resolve_schedule(lr_schedule, lr_schedule_kwargs)
        self.lr_schedule = lr_schedule
        if lr_schedule_every not in ("epoch", "iteration"):
            raise ValueError(f"lr_schedule_every must be 'epoch' or 'iteration'; got "
                             f"{lr_schedule_every!r}")
        self.lr_schedule_every = lr_schedule_every

        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.num_epochs = check_positive_int(num_epochs, "num_epochs")
        self.num_train_samples = check_positive_int(num_train_samples, "num_train_samples")
        self.num_val_samples = (None if num_val_samples is None
                                else check_positive_int(num_val_samples, "num_val_samples"))
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be None or a callable(X_batch, rng) -> X_batch; got "
                            f"{type(augment).__name__}")
        self.augment = augment
        self.explode_factor = (None if explode_factor is None
                               else _check_number(explode_factor, "explode_factor", 1.0))
        if checkpoint_name is not None and not isinstance(checkpoint_name, str):
            raise TypeError(f"checkpoint_name must be None or a str; got "
                            f"{type(checkpoint_name).__name__}")
        self.checkpoint_name = checkpoint_name
        self.print_every = (None if print_every is None
                            else check_positive_int(print_every, "print_every"))
        self.verbose = bool(verbose)
        self.progress = bool(progress)

        if isinstance(seed, np.random.Generator):
            root = seed
        elif seed is None or (isinstance(seed, (int, np.integer)) and not isinstance(seed, bool)):
            root = np.random.default_rng(seed)
        else:
            raise TypeError(f"seed must be None, an int or a np.random.Generator; got "
                            f"{type(seed).__name__} {seed!r}")
        # Separate streams, so estimating an accuracy never changes the minibatch order.
        self.rng, self._eval_rng = root.spawn(2)
        self._reset()

    @staticmethod
    def _resolve_schedule(lr_schedule: Any, kwargs: dict | None) -> Callable | None:
        if lr_schedule is None:
            if kwargs:
                raise ValueError("lr_schedule_kwargs given without lr_schedule")
            return None
        if callable(lr_schedule):
            if kwargs:
                raise ValueError("lr_schedule_kwargs only apply to a schedule given by name")
            return lr_schedule
        if not isinstance(lr_schedule, str):
            raise TypeError(f"lr_schedule must be None, a schedule name or a callable; got "
                            f"{type(lr_schedule).__name__}")
        return schedules.get_schedule(lr_schedule, **(kwargs or {}))

    def _reset(self) -> None:
        """Book-keeping for a fresh run (called by __init__)."""
        self.epoch = 0
        self.iteration = 0
        self.best_val_acc = 0.0
        self.best_params: dict[str, np.ndarray] = {}
        self._best_bn_params = None
        self.loss_history: list[float] = []
        self.train_acc_history: list[float] = []
        self.val_acc_history: list[float] = []
        self.stopped_early = False
        self.stop_reason: str | None = None
        self.optim_configs = {name: copy.deepcopy(self.optim_config)
                              for name in self.model.params}

    @property
    def history(self) -> dict[str, list[float]]:
        """The three histories in a dict (what plot_training_history also accepts)."""
        return {"loss_history": self.loss_history, "train_acc_history": self.train_acc_history,
                "val_acc_history": self.val_acc_history}

    def _scheduled_learning_rate(self, step: int) -> float:
        """The schedule's learning rate at `step` (epoch or iteration index, from 0)."""
        return float(self._schedule(step))

    def _set_learning_rate(self, lr: float) -> None:
        for config in self.optim_configs.values():
            config["learning_rate"] = lr

    def _step(self, batch_index: np.ndarray) -> float:
        """One update on the minibatch X_train[batch_index]; returns its loss."""
        X_batch, y_batch = self.X_train[batch_index], self.y_train[batch_index]
        if self.augment is not None:
            augmented = self.augment(X_batch, self.rng)
            if not isinstance(augmented, np.ndarray) or augmented.shape != X_batch.shape:
                raise ValueError(f"augment must return an array of the batch's shape "
                                 f"{X_batch.shape}; got {getattr(augmented, 'shape', augmented)}")
            X_batch = augmented
        loss, grads = self.model.loss(X_batch, y_batch)
        loss = float(loss)
        self.loss_history.append(loss)
        if self._loss_exploded(loss):
            return loss                         # leave the parameters as they were
        for name, w in self.model.params.items():
            if name not in grads:
                raise KeyError(f"model.loss returned no gradient for parameter {name!r}; got "
                               f"gradients for {sorted(grads)}")
            next_w, self.optim_configs[name] = self._update(w, grads[name],
                                                            self.optim_configs[name])
            self.model.params[name] = next_w
        return loss

    def _loss_exploded(self, loss: float) -> bool:
        """Sets stopped_early / stop_reason when the loss is NaN/inf or > factor x first loss."""
        if not math.isfinite(loss):
            self.stop_reason = (f"loss became {loss} at iteration {self.iteration + 1}; the "
                                f"learning rate is probably too high")
        elif (self.explode_factor is not None and len(self.loss_history) > 1
              and loss > self.explode_factor * self.loss_history[0]):
            self.stop_reason = (f"loss {loss:.4g} at iteration {self.iteration + 1} exceeds "
                                f"{self.explode_factor:g} x the initial loss "
                                f"{self.loss_history[0]:.4g}; the learning rate is probably "
                                f"too high")
        self.stopped_early = self.stop_reason is not None
        return self.stopped_early

    def check_accuracy(self, X: np.ndarray, y: np.ndarray, num_samples: int | None = None,
                       batch_size: int = 100) -> float:
        """Fraction of X classified as y by the model (test mode), in batches of batch_size.

        num_samples: if given and smaller than N, the accuracy is estimated on a random subset
        of that size (drawn from the solver's own generator).
        """
        check_float_array(X, "X")
        check_int_array(y, "y", length=X.shape[0])
        batch_size = check_positive_int(batch_size, "batch_size")
        N = X.shape[0]
        if num_samples is not None and N > check_positive_int(num_samples, "num_samples"):
            subset = self._eval_rng.choice(N, num_samples, replace=False)
            X, y, N = X[subset], y[subset], num_samples
        predictions = [np.argmax(self.model.loss(X[start:start + batch_size]), axis=1)
                       for start in range(0, N, batch_size)]
        return float(np.mean(np.concatenate(predictions) == y))

    def _record_accuracies(self) -> tuple[float, float]:
        train_acc = self.check_accuracy(self.X_train, self.y_train, self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if not self.best_params or val_acc > self.best_val_acc:
            self.best_val_acc = val_acc
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}
            # Batchnorm running statistics belong to the parameters they were computed with.
            self._best_bn_params = copy.deepcopy(getattr(self.model, "bn_params", None))
        return train_acc, val_acc

    def _save_checkpoint(self) -> None:
        arrays = {f"params/{k}": v for k, v in self.model.params.items()}
        np.savez(f"{self.checkpoint_name}_epoch_{self.epoch}.npz", epoch=np.int64(self.epoch),
                 loss_history=np.asarray(self.loss_history),
                 train_acc_history=np.asarray(self.train_acc_history),
                 val_acc_history=np.asarray(self.val_acc_history), **arrays)

    def _say(self, message: str) -> None:
        if self.verbose:
            tqdm.write(message, file=sys.stdout)

    def train(self) -> Solver:
        """Run num_epochs epochs (or until the loss explodes); returns self."""
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        if not self.train_acc_history:
            self._record_accuracies()
        # stdout, not stderr: nbgrader scores a cell that writes to stderr as failed.
        bar = tqdm(total=num_iterations, desc="Training", unit="it", file=sys.stdout,
                   disable=not self.progress, leave=True)
        try:
            for _ in range(self.num_epochs):
                order = self.rng.permutation(num_train)
                if self._schedule is not None and self.lr_schedule_every == "epoch":
                    self._set_learning_rate(self._scheduled_learning_rate(self.epoch))
                for i in range(iterations_per_epoch):
                    if self._schedule is not None and self.lr_schedule_every == "iteration":
                        self._set_learning_rate(self._scheduled_learning_rate(self.iteration))
                    batch = order[i * self.batch_size:(i + 1) * self.batch_size]
                    loss = self._step(batch)
                    self.iteration += 1
                    bar.update(1)
                    if self.stopped_early:
                        self._say(f"Stopped early: {self.stop_reason}")
                        return self
                    if self.print_every and self.iteration % self.print_every == 0:
                        bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
                        self._say(f"(Iteration {self.iteration} / {num_iterations}) "
                                  f"loss: {loss:.6f}")
                self.epoch += 1
                for config in self.optim_configs.values():
                    if "learning_rate" in config:
                        config["learning_rate"] *= self.lr_decay
                train_acc, val_acc = self._record_accuracies()
                bar.set_postfix(loss=f"{self.loss_history[-1]:.4f}", val_acc=f"{val_acc:.3f}")
                self._say(f"(Epoch {self.epoch} / {self.num_epochs}) train acc: "
                          f"{train_acc:.4f}; val acc: {val_acc:.4f}")
                if self.checkpoint_name is not None:
                    self._save_checkpoint()
        finally:
            bar.close()
            self._restore_best()
        return self

    def _restore_best(self) -> None:
        """Put the best parameters (and their batchnorm statistics) back into the model."""
        for name, value in self.best_params.items():
            self.model.params[name] = value.copy()
        if self._best_bn_params is not None:
            self.model.bn_params = copy.deepcopy(self._best_bn_params)
