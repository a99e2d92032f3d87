"""Solver: training works with every update rule, lr decay/schedules, best-parameter restore,
early stopping, reproducibility, checkpoints and argument errors."""
import numpy as np
import pytest

from course_lib import FullyConnectedNet, Solver, TwoLayerNet, load_digits
from course_lib.solver import UPDATE_RULES


@pytest.fixture(scope="module")
def digits():
    return load_digits(dtype=np.float64, seed=0, flatten=True)


def small_data(digits, num_train=50, num_val=50):
    return {"X_train": digits["X_train"][:num_train], "y_train": digits["y_train"][:num_train],
            "X_val": digits["X_val"][:num_val], "y_val": digits["y_val"][:num_val]}


def quiet(**kwargs):
    return {"verbose": False, "progress": False, **kwargs}


def make_net(seed=0, **kwargs):
    return TwoLayerNet(input_dim=64, hidden_dim=50, num_classes=10, weight_scale=1e-1,
                       seed=seed, **kwargs)


def test_solver_overfits_50_digits_to_full_train_accuracy(digits):
    # The lecture's sanity check (CS231n: 3-layer net, 50 images, 100% within 20 epochs).
    model = FullyConnectedNet([100, 100], input_dim=64, num_classes=10, weight_scale=5e-2,
                              dtype=np.float64, seed=0)
    solver = Solver(model, small_data(digits), update_rule="adam",
                    optim_config={"learning_rate": 1e-2}, batch_size=25, num_epochs=20, seed=0,
                    **quiet())
    solver.train()
    assert solver.train_acc_history[-1] == 1.0
    assert solver.loss_history[-1] < 0.1 * solver.loss_history[0]


@pytest.mark.parametrize("update_rule, learning_rate", [
    ("sgd", 0.5), ("sgd_momentum", 0.1), ("sgd_nesterov", 0.1), ("adagrad", 0.05),
    ("rmsprop", 1e-2), ("adam", 1e-2)])
def test_every_update_rule_by_name_reduces_the_loss(digits, update_rule, learning_rate):
    solver = Solver(make_net(), small_data(digits, 200), update_rule=update_rule,
                    optim_config={"learning_rate": learning_rate}, batch_size=50, num_epochs=10,
                    seed=0, **quiet())
    solver.train()
    assert not solver.stopped_early
    # 40 updates on 200 digits take the loss from ln(10) = 2.3 to about 0.2-0.5 with each of
    # these learning rates (seeds 0-2 tried); an update rule that does not learn stays near 2.3.
    assert np.mean(solver.loss_history[-4:]) < 1.0
    assert solver.best_val_acc > 0.75
    assert set(UPDATE_RULES) == {"sgd", "sgd_momentum", "sgd_nesterov", "adagrad", "rmsprop",
                                 "adam"}


def test_a_callable_update_rule_is_used_with_a_private_config_per_parameter(digits):
    seen = []

    def halve_step(w, dw, config):
        seen.append(id(config))
        config["calls"] = config.get("calls", 0) + 1
        return w - 0.5 * dw, config

    model = make_net()
    shared = {"note": [1]}
    solver = Solver(model, small_data(digits), update_rule=halve_step, optim_config=shared,
                    batch_size=25, num_epochs=1, **quiet())
    solver.train()
    assert len(set(seen)) == len(model.params)           # one config per parameter
    assert all(c["calls"] == 2 for c in solver.optim_configs.values())
    assert "calls" not in shared and solver.optim_configs["W1"]["note"] is not shared["note"]


def test_lr_decay_multiplies_the_learning_rate_once_per_epoch(digits):
    solver = Solver(make_net(), small_data(digits), update_rule="sgd_momentum",
                    optim_config={"learning_rate": 1e-2}, lr_decay=0.5, batch_size=25,
                    num_epochs=3, **quiet())
    solver.train()
    for config in solver.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(1e-2 * 0.5 ** 3)


@pytest.mark.parametrize("every, expected_steps", [("epoch", [0, 0, 1, 1, 2, 2]),
                                                   ("iteration", [0, 1, 2, 3, 4, 5])])
def test_a_callable_lr_schedule_sets_the_learning_rate(digits, every, expected_steps):
    used, steps = [], []

    def schedule(step):
        steps.append(step)
        return 0.1 / (1 + step)

    def record(w, dw, config):
        used.append(config["learning_rate"])
        return w - config["learning_rate"] * dw, config

    model = make_net()
    solver = Solver(model, small_data(digits), update_rule=record, lr_schedule=schedule,
                    lr_schedule_every=every, batch_size=25, num_epochs=3, **quiet())
    solver.train()
    per_iteration = used[::len(model.params)]              # one entry per update
    assert per_iteration == pytest.approx([0.1 / (1 + s) for s in expected_steps])


def test_an_lr_schedule_by_name_is_built_with_get_schedule(digits):
    # step decay halving every epoch: 0.1, 0.05, 0.025 -> the last rate set is 0.025.
    solver = Solver(make_net(), small_data(digits), update_rule="sgd", lr_schedule="step",
                    lr_schedule_kwargs={"lr0": 0.1, "step_size": 1, "gamma": 0.5},
                    batch_size=25, num_epochs=3, **quiet())
    solver.train()
    assert all(c["learning_rate"] == pytest.approx(0.025) for c in solver.optim_configs.values())
    with pytest.raises(ValueError, match="unknown schedule"):
        Solver(make_net(), small_data(digits), lr_schedule="warp", **quiet())


def test_best_params_are_restored_when_validation_accuracy_later_drops(digits):
    calls = {"n": 0}

    def good_then_bad(w, dw, config):
        # Two epochs of sensible steps, then scramble the weights (accuracy collapses).
        calls["n"] += 1
        if calls["n"] <= 2 * 4 * 4:            # 2 epochs x 4 iterations x 4 parameters
            return w - 0.5 * dw, config
        return np.zeros_like(w), config

    model = make_net()
    data = small_data(digits, 200, 100)
    solver = Solver(model, data, update_rule=good_then_bad, batch_size=50, num_epochs=4,
                    num_train_samples=200, **quiet())
    solver.train()
    assert solver.val_acc_history[-1] < solver.best_val_acc
    assert solver.best_val_acc == max(solver.val_acc_history)
    for k in model.params:
        np.testing.assert_array_equal(model.params[k], solver.best_params[k])
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc


def test_batchnorm_running_statistics_are_restored_with_the_best_params(digits):
    model = FullyConnectedNet([30], input_dim=64, num_classes=10, normalization="batchnorm",
                              dtype=np.float64, seed=0)
    data = small_data(digits, 200, 100)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 1e-2},
                    batch_size=50, num_epochs=3, num_train_samples=200, seed=0, **quiet())
    solver.train()
    # The restored model reproduces exactly the validation accuracy that made it the best.
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc


def test_too_high_learning_rate_stops_training_early(digits, capsys):
    solver = Solver(make_net(), small_data(digits, 200), update_rule="sgd",
                    optim_config={"learning_rate": 1e4}, batch_size=50, num_epochs=10,
                    progress=False, verbose=True, print_every=None)
    solver.train()
    assert solver.stopped_early
    assert "learning rate is probably too high" in solver.stop_reason
    assert "Stopped early" in capsys.readouterr().out
    assert len(solver.loss_history) < 40              # far fewer than the 40 planned updates
    last = solver.loss_history[-1]
    assert not np.isfinite(last) or last > 3 * solver.loss_history[0]
    # The model still holds finite (the best) parameters.
    assert all(np.all(np.isfinite(v)) for v in solver.model.params.values())


def test_a_nan_loss_stops_training_even_without_the_ratio_rule(digits):
    class NaNAfterTwo:
        def __init__(self):
            self.inner, self.calls = make_net(), 0
            self.params = self.inner.params

        def loss(self, X, y=None):
            if y is None:
                return self.inner.loss(X)
            self.calls += 1
            loss, grads = self.inner.loss(X, y)
            return (np.nan if self.calls > 2 else loss), grads

    solver = Solver(NaNAfterTwo(), small_data(digits), explode_factor=None, batch_size=10,
                    num_epochs=2, **quiet())
    solver.train()
    assert solver.stopped_early and "nan" in solver.stop_reason
    assert len(solver.loss_history) == 3


def test_seeded_runs_are_reproducible(digits):
    def run(seed):
        solver = Solver(make_net(seed=1), small_data(digits, 200), update_rule="adam",
                        optim_config={"learning_rate": 1e-3}, batch_size=20, num_epochs=2,
                        num_train_samples=50, seed=seed, **quiet())
        return solver.train()

    a, b, c = run(3), run(3), run(4)
    assert a.loss_history == b.loss_history
    assert a.train_acc_history == b.train_acc_history
    assert a.loss_history != c.loss_history


def test_augment_receives_each_batch_and_the_solver_generator(digits):
    calls = []

    def augment(X, rng):
        assert isinstance(rng, np.random.Generator)
        calls.append(X.shape)
        return X + 0.01 * rng.standard_normal(X.shape)

    Solver(make_net(), small_data(digits), augment=augment, batch_size=25, num_epochs=2,
           **quiet()).train()
    assert calls == [(25, 64)] * 4

    with pytest.raises(ValueError, match="augment must return an array of the batch's shape"):
        Solver(make_net(), small_data(digits), augment=lambda X, rng: X[:1], batch_size=25,
               num_epochs=1, **quiet()).train()


def test_check_accuracy_agrees_across_batch_sizes_and_subsamples(digits):
    model = make_net()
    solver = Solver(model, small_data(digits, 200), update_rule="adam", num_epochs=2,
                    batch_size=50, **quiet()).train()
    X, y = digits["X_val"], digits["y_val"]
    full = solver.check_accuracy(X, y)
    assert solver.check_accuracy(X, y, batch_size=7) == full
    assert full == np.mean(np.argmax(model.loss(X), axis=1) == y)
    sub = solver.check_accuracy(X, y, num_samples=50)
    assert abs(sub * 50 - round(sub * 50)) < 1e-9    # a fraction of 50 samples


def test_checkpoints_are_plain_npz_files(digits, tmp_path):
    model = make_net()
    name = str(tmp_path / "run")
    Solver(model, small_data(digits), batch_size=25, num_epochs=2, checkpoint_name=name,
           **quiet()).train()
    with np.load(f"{name}_epoch_2.npz", allow_pickle=False) as saved:
        assert int(saved["epoch"]) == 2
        assert saved["loss_history"].shape == (4,)
        assert set(saved["params/W1"].shape) == {64, 50}
    assert (tmp_path / "run_epoch_1.npz").exists()


def test_history_has_one_accuracy_per_epoch_plus_the_start(digits):
    solver = Solver(make_net(), small_data(digits), batch_size=10, num_epochs=3,
                    **quiet()).train()
    assert len(solver.loss_history) == 15
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 4
    assert solver.history["loss_history"] is solver.loss_history


def test_quiet_solver_prints_nothing_and_verbose_prints_progress(digits, capsys):
    Solver(make_net(), small_data(digits), batch_size=10, num_epochs=1, **quiet()).train()
    assert capsys.readouterr().out == ""
    Solver(make_net(), small_data(digits), batch_size=10, num_epochs=1, print_every=2,
           verbose=True, progress=True).train()
    out = capsys.readouterr().out
    assert "(Iteration 2 / 5) loss:" in out and "(Epoch 1 / 1) train acc:" in out
    assert "Training" in out                          # the progress bar (on stdout)


@pytest.mark.parametrize("change, error, message", [
    ({"update_rule": "sgd_turbo"}, ValueError, "update_rule must be one of"),
    ({"lr_decay": 0.0}, ValueError, "lr_decay must be in"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive int"),
    ({"num_epochs": 2.5}, TypeError, "num_epochs must be a positive int"),
    ({"lr_schedule": lambda t: 0.1, "lr_decay": 0.9}, ValueError, "either lr_decay or"),
    ({"lr_schedule_every": "batch", "lr_schedule": lambda t: 0.1}, ValueError,
     "lr_schedule_every must be"),
    ({"seed": 1.5}, TypeError, "seed must be None, an int"),
    ({"augment": "flip"}, TypeError, "augment must be None or a callable"),
    ({"learning_rate": 1e-3}, TypeError, "unexpected keyword argument"),
])
def test_solver_rejects_bad_options(digits, change, error, message):
    with pytest.raises(error, match=message):
        Solver(make_net(), small_data(digits), **quiet(**change))


def test_solver_rejects_bad_data(digits):
    data = small_data(digits)
    missing = {k: v for k, v in data.items() if k != "y_val"}
    with pytest.raises(ValueError, match=r"data is missing the key\(s\) \['y_val'\]"):
        Solver(make_net(), missing)
    with pytest.raises(ValueError, match=r"data\['y_train'\] must hold one label per row"):
        Solver(make_net(), {**data, "y_train": data["y_train"][:10]})
    with pytest.raises(ValueError, match="same shape as data\\['X_train'\\]"):
        Solver(make_net(), {**data, "X_val": data["X_val"][:, :32]})
    with pytest.raises(TypeError, match="integer labels"):
        Solver(make_net(), {**data, "y_val": data["y_val"].astype(np.float64)})
    with pytest.raises(TypeError, match="model must have a non-empty `params` dict"):
        Solver(object(), data)
