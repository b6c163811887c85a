"""Callbacks (early stopping, reduce-on-plateau, hooks), stop-on-NaN, and the training extras."""

import json
import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdl
from conftest import supervised_task, zeros_for
from jaxdl import callbacks, checkpoint, config, models, optim, run, state as state_lib, task as task_lib
from jaxdl.errors import InputError, NonFiniteError
from jaxdl.loop import NonFiniteLoss


def _states(count):
    task = supervised_task(models.MLP(hidden=(4,), num_outputs=1, output_activation="sigmoid"), tx=optax.sgd(0.1),
                           input_shape=(3,))
    return [task.init(jax.random.PRNGKey(k)) for k in range(count)]


def test_early_stopping_stops_at_the_expected_epoch_and_restores_the_best():
    losses_by_epoch = [0.50, 0.40, 0.45, 0.41, 0.42, 0.30]  # best at epoch 2; three evaluations without improving
    states = _states(len(losses_by_epoch))
    stopper = callbacks.EarlyStopping("eval_loss", patience=3)
    stopped = None
    for epoch, (value, state) in enumerate(zip(losses_by_epoch, states), 1):
        control = callbacks.Control(state)
        stopper.on_eval(control, {"epoch": epoch, "step": epoch * 10, "eval_loss": value})
        if control.stop:
            stopped = (epoch, control)
            break
    epoch, control = stopped
    assert epoch == 5 and stopper.best_epoch == 2
    assert "eval_loss has not improved on 0.4 (epoch 2) for 3 evaluations" in control.reason
    np.testing.assert_array_equal(control.state.params["hidden_0"]["kernel"], states[1].params["hidden_0"]["kernel"])


def test_early_stopping_on_accuracy_counts_higher_as_better():
    stopper = callbacks.EarlyStopping("eval_accuracy", patience=2, restore_best=False)
    state = _states(1)[0]
    for epoch, value in enumerate([0.8, 0.9, 0.85, 0.9], 1):
        control = callbacks.Control(state)
        stopper.on_eval(control, {"epoch": epoch, "step": epoch, "eval_accuracy": value})
    assert control.stop and stopper.best_epoch == 2 and stopper.stopped_epoch == 4


def test_fit_with_early_stopping_ends_early_with_the_best_state(blobs):
    x, y = blobs
    val = (x[150:], y[150:])
    stopper = jaxdl.EarlyStopping("eval_loss", patience=2)
    state, history = jaxdl.fit(
        models.MLP(hidden=(32,)), (x[:150], y[:150]), epochs=200, batch_size=10, validation_data=val,
        optimizer={"name": "adam", "learning_rate": 0.05}, callbacks=[stopper], verbose=False, parallel="single",
    )
    assert len(history) < 200 and history.stop_reason.startswith("early stopping")
    best = min(history["eval_loss"])
    assert jaxdl.evaluate(state, val)["loss"] == pytest.approx(best, rel=1e-5)


def test_reduce_on_plateau_cuts_the_learning_rate():
    tx = optim.build({"name": "sgd", "learning_rate": 0.1}, total_steps=100, scalable=True)
    model = models.MLP(hidden=(4,), num_outputs=1, output_activation="sigmoid")
    state = supervised_task(model, tx=tx, input_shape=(3,)).init(jax.random.PRNGKey(0))
    reducer = callbacks.ReduceLROnPlateau("eval_loss", factor=0.5, patience=2)
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.95, 0.96, 0.97], 1):
        control = callbacks.Control(state)
        reducer.on_eval(control, {"epoch": epoch, "step": epoch, "eval_loss": value})
        state = control.state
    assert reducer.reductions == [4, 6] and optim.get_scale(state.opt_state) == pytest.approx(0.25)
    # The scale really scales the update.
    grads = jax.tree.map(jnp.ones_like, state.params)
    updates, _ = state.tx.update(grads, state.opt_state, state.params)
    assert float(updates["output"]["bias"][0]) == pytest.approx(-0.1 * 0.25)


def test_hook_is_called_every_n_steps_and_at_every_evaluation(blobs):
    x, y = blobs
    calls = []
    hook = jaxdl.Hook(lambda state, step, figures: calls.append((step, int(state.step), "loss" in figures or "train_loss" in figures)), every_steps=7)
    jaxdl.fit(models.MLP(hidden=(8,)), (x, y), epochs=2, batch_size=20, validation_data=(x, y), callbacks=[hook],
              verbose=False, parallel="single")
    at_steps = [c for c in calls if c[0] % 7 == 0 and c[0] % 10]
    assert [c[0] for c in at_steps] == [7, 14]  # steps 7 and 14 of 20 (10 per epoch)
    assert all(step == state_step for step, state_step, _ in calls)  # the state is the one at that step
    assert [c[0] for c in calls if c[0] % 10 == 0] == [10, 20]  # after each evaluation
    assert all(has_loss for *_, has_loss in calls)


def test_a_nan_loss_stops_the_run_naming_the_step_and_never_checkpoints_it(tmp_path):
    cfg = config.default_config()
    cfg.train.epochs = 30
    cfg.optimizer.name, cfg.optimizer.learning_rate = "sgd", 1e6  # diverges within a few steps
    cfg.checkpoint.every_steps, cfg.checkpoint.every_seconds, cfg.checkpoint.keep = 1, 0.0, 100
    workdir = str(tmp_path / "run")
    with pytest.raises(NonFiniteError) as err:
        run.train_and_evaluate(cfg, workdir, quiet=True)
    message = str(err.value)
    bad_step = int(re.search(r"(?:non-finite \(nan or inf\)|parameters) at step (\d+)", message).group(1))
    assert "no checkpoint of these parameters was written" in message or "they were not saved" in message
    saver = checkpoint.Checkpointer(workdir)
    kept = saver.steps()
    assert kept and all(s < bad_step for s in kept)
    for kept_step in kept:  # every checkpoint holds finite parameters
        meta = saver.meta(kept_step)
        assert meta["position"]
    setup = run.setup(cfg)
    initial = run.initial_state(setup.task, seed=0)
    zeros = zeros_for(task_lib.checked_train_step(setup.task), initial, run.example_batch(setup.splits, 10))
    restored, _, _ = saver.restore(kept[-1], initial, zeros)
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(restored.params))
    saver.close()


def test_gradient_accumulation_equals_one_step_on_the_whole_batch(blobs):
    x, y = blobs
    model, tx = models.MLP(hidden=(16, 8), num_outputs=1, output_activation="sigmoid"), optax.adam(0.01)
    task = supervised_task(model, tx=tx, input_shape=(4,))
    state = task.init(jax.random.PRNGKey(0))
    batch = {"x": x[:40], "y": y[:40], "mask": np.r_[np.ones(35), np.zeros(5)].astype(np.float32)}  # padding too
    whole, whole_totals = jax.jit(task.train_step)(state, batch)
    for micro in (2, 4, 8):
        accumulating = supervised_task(model, tx=tx, input_shape=(4,), accumulate=micro)
        accumulated, totals = jax.jit(accumulating.train_step)(state, batch)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), accumulated.params, whole.params)
        assert float(totals["count"]) == 35.0
        assert float(totals["loss_sum"]) == pytest.approx(float(whole_totals["loss_sum"]), rel=1e-5)


def test_bfloat16_computes_in_bfloat16_and_keeps_float32_parameters(blobs):
    x, y = blobs
    runs = {
        precision: jaxdl.fit(models.MLP(hidden=(16,)), (x, y), epochs=10, batch_size=20, precision=precision,
                             optimizer={"name": "adam", "learning_rate": 0.01}, verbose=False, parallel="single")
        for precision in ("float32", "bfloat16")
    }
    state, history = runs["bfloat16"]
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(state.params))
    assert history.last["train_accuracy"] > 0.9
    assert history.last["train_loss"] == pytest.approx(runs["float32"][1].last["train_loss"], rel=0.1)
    assert state_lib.params_sha256(state.params) != state_lib.params_sha256(runs["float32"][0].params)
    model = models.MLP(hidden=(16,), num_outputs=1, output_activation="sigmoid")
    task = supervised_task(model, tx=optax.sgd(0.1), input_shape=(4,), compute_dtype=jnp.bfloat16)
    plain = task.init(jax.random.PRNGKey(0))
    batch = {"x": x[:20], "y": y[:20], "mask": np.ones(20, np.float32)}
    jaxpr = str(jax.make_jaxpr(task.train_step)(plain, batch))
    assert "bf16" in jaxpr and "dot_general" in jaxpr


def test_ema_parameters_average_the_trajectory_and_are_evaluated(blobs):
    x, y = blobs
    state, _ = jaxdl.fit(models.MLP(hidden=(8,)), (x, y), epochs=3, batch_size=20, ema_decay=0.9, verbose=False,
                         parallel="single")
    assert state.ema_params is not None
    difference = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), state.ema_params, state.params)
    assert max(jax.tree.leaves(difference)) > 0  # an average lags behind the parameters
    # Prediction uses the averaged parameters.
    averaged = state.replace(params=state.ema_params, ema_params=None)
    np.testing.assert_allclose(jaxdl.predict(state, x[:5]), jaxdl.predict(averaged, x[:5]), rtol=1e-6)


def test_weight_decay_skips_biases_by_default():
    params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}
    zero_grads = jax.tree.map(jnp.zeros_like, params)
    for decay_biases, bias_update in ((False, 0.0), (True, -0.05)):
        tx = optim.build({"name": "adamw", "learning_rate": 0.1, "weight_decay": 0.5, "decay_biases": decay_biases}, total_steps=1)
        updates, _ = tx.update(zero_grads, tx.init(params), params)
        assert float(updates["kernel"][0, 0]) == pytest.approx(-0.05)
        assert float(updates["bias"][0]) == pytest.approx(bias_update)


def test_callback_settings_are_checked_before_training(tmp_path):
    cfg = config.default_config()
    cfg.callbacks.hook = "no_such_file.py:fn"
    with pytest.raises(InputError, match="the file 'no_such_file.py' does not exist"):
        run.train_and_evaluate(cfg, str(tmp_path / "a"))
    cfg = config.default_config()
    cfg.train.grad_accum_steps = 3
    with pytest.raises(InputError, match="train.grad_accum_steps=3 does not divide train.batch_size=10"):
        run.train_and_evaluate(cfg, str(tmp_path / "b"))
    cfg = config.default_config()
    cfg.train.precision = "float16"
    with pytest.raises(InputError, match="train.precision='float16': expected one of: float32, bfloat16"):
        run.train_and_evaluate(cfg, str(tmp_path / "c"))
    assert not os.path.exists(tmp_path / "a") and not os.path.exists(tmp_path / "b")


def test_cli_early_stopping_and_a_hook_file(tmp_path):
    hook_file = tmp_path / "hooks.py"
    log = tmp_path / "hook.log"
    hook_file.write_text(
        "def record(state, step, figures):\n"
        f"    open({str(log)!r}, 'a').write(str(step) + '\\n')\n"
    )
    workdir = str(tmp_path / "run")
    cfg = config.default_config()
    cfg.optimizer.learning_rate = 0.01
    cfg.callbacks.early_stopping_patience = 3
    cfg.callbacks.hook, cfg.callbacks.hook_every_steps = f"{hook_file}:record", 100
    summary = run.train_and_evaluate(cfg, workdir, quiet=True)
    assert summary["epochs_run"] < 150 and summary["stop_reason"].startswith("early stopping")
    steps = [int(line) for line in log.read_text().split()]
    assert 100 in steps and 46 in steps  # every 100 steps, and after each evaluation
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl")) if '"train"' in line]
    assert len(records) == summary["epochs_run"]
