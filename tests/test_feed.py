import jax
import numpy as np
import optax
import pytest

from conftest import supervised_task, zeros_for
from jaxdl import data, feed, metrics, models, parallel, state as state_lib
from jaxdl.errors import InputError


def _setup(splits):
    """A supervised task of the default MLP, its initial state (compiled), and its empty train totals."""
    task = supervised_task(models.MLP(), tx=optax.adam(1e-3), input_shape=(30,))
    state = parallel.init_state(task.init, 0)
    batch = {**splits.train.read(np.arange(10)), "mask": np.ones(10, np.float32)}
    return task, state, zeros_for(task.train_step, state, batch)


def _train(splits, epochs=2, **kwargs):
    task, state, zeros = _setup(splits)
    f = feed.make(splits.train, task.train_step, batch_size=10, seed=0, epochs=epochs, **kwargs)
    per_epoch = []
    for epoch in range(1, epochs + 1):
        state, totals = f.run_epoch(state, dict(zeros), epoch)
        per_epoch.append(metrics.compute(parallel.fetch(totals)))
    return f, state, per_epoch


@pytest.mark.parametrize("pipeline, steps_per_call", [("device", "epoch"), ("device", 7), ("host", 7), ("host", "epoch")])
def test_fused_steps_equal_steps_one_by_one(pipeline, steps_per_call):
    splits = data.load("breast_cancer")
    _, one_by_one, metrics_one = _train(splits, pipeline=pipeline, steps_per_call=1)
    fused_feed, fused, metrics_fused = _train(splits, pipeline=pipeline, steps_per_call=steps_per_call)
    assert fused_feed.steps_per_call == (46 if steps_per_call == "epoch" else 7)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), one_by_one.params, fused.params)
    if jax.default_backend() == "cpu":  # bitwise on CPU
        assert state_lib.params_sha256(one_by_one.params) == state_lib.params_sha256(fused.params)
    # A fused call's metrics are the sums of its steps' totals: the epoch's mean loss is the same.
    for a, b in zip(metrics_one, metrics_fused):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6) and a["accuracy"] == b["accuracy"]


def test_fused_call_compiles_once_per_shape(compiles):
    splits = data.load("breast_cancer")
    task, state, zeros = _setup(splits)
    f = feed.make(splits.train, task.train_step, batch_size=10, seed=0, pipeline="device", steps_per_call=10)
    state, _ = f.run_epoch(state, dict(zeros), 1)  # calls of 10, 10, 10, 10 and 6 steps: two shapes
    after_first = compiles.count
    for epoch in (2, 3):
        state, _ = f.run_epoch(state, dict(zeros), epoch)
    assert compiles.count == after_first


def test_steps_per_call_choices():
    assert feed.resolve_steps_per_call("auto", steps_per_epoch=46, on_device=True) == 46
    assert feed.resolve_steps_per_call("auto", steps_per_epoch=46, on_device=False) == 1
    assert feed.resolve_steps_per_call("8", steps_per_epoch=46, on_device=True) == 8
    assert feed.resolve_steps_per_call(100, steps_per_epoch=46, on_device=True) == 46
    for bad in ("0", "ten", 0, -2, 1.5, True):
        with pytest.raises(InputError, match="train.steps_per_call=.*expected a positive integer, 'epoch' or 'auto'"):
            feed.resolve_steps_per_call(bad, steps_per_epoch=46, on_device=True)


def test_compile_seconds_counts_compiles_only():
    before = parallel.compile_seconds()
    f = jax.jit(lambda x: x * 3.0 + 1.0)
    f(np.float32(2.0))
    compiled = parallel.compile_seconds() - before
    assert compiled > 0
    f(np.float32(3.0))
    assert parallel.compile_seconds() - before == compiled
