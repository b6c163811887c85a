"""Strategies on 8 simulated CPU devices: the same pure step, single / pmap / mesh, one host or two."""

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest

import jaxdl
from conftest import supervised_task, zeros_for
from jaxdl import config, data, feed, metrics, models, parallel, run
from jaxdl.errors import InputError

HERE = os.path.dirname(os.path.abspath(__file__))


def _start(splits, strategy, batch_size=16):
    """The default MLP's supervised task, its initial state placed for `strategy`, and its empty train totals."""
    task = supervised_task(models.MLP(), tx=optax.adam(1e-3), input_shape=(30,))
    state = run.initial_state(task, seed=0, strategy=strategy)
    batch = {**splits.train.read(np.arange(batch_size)), "mask": np.ones(batch_size, np.float32)}
    return task, state, zeros_for(task.train_step, state, batch)


def _train(splits, kind, *, pipeline="device", steps_per_call="epoch", batch_size=16, epochs=2, fsdp=1):
    strategy, _ = parallel.choose(kind, batch_size=batch_size, fsdp=fsdp)
    task, state, zeros = _start(splits, strategy, batch_size)
    train_feed = feed.make(
        splits.train, task.train_step, batch_size=batch_size, seed=0, epochs=epochs, pipeline=pipeline,
        steps_per_call=steps_per_call, strategy=strategy,
    )
    for epoch in range(1, epochs + 1):
        state, totals = train_feed.run_epoch(state, dict(zeros), epoch)
    return state, metrics.compute(parallel.fetch_totals(totals))


def _assert_close(a, b):
    # float32 sums over the batch are split differently across devices: equal to rounding.
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6), parallel.fetch(a), parallel.fetch(b))


@pytest.fixture(scope="module")
def splits():
    return data.load("breast_cancer")


@pytest.mark.parametrize("pipeline, steps_per_call", [("device", "epoch"), ("device", 1), ("host", 1), ("host", 5)])
def test_single_pmap_and_mesh_train_the_same_parameters(splits, pipeline, steps_per_call):
    # 455 examples at a global batch of 16: the last batch holds 7 real rows, so
    # some devices see only padding there. Their gradients must still weigh
    # every real row equally.
    single, single_metrics = _train(splits, "single", pipeline=pipeline, steps_per_call=steps_per_call)
    for kind in ("pmap", "mesh"):
        state, state_metrics = _train(splits, kind, pipeline=pipeline, steps_per_call=steps_per_call)
        _assert_close(single.params, state.params)
        assert int(state.step) == int(single.step) == 2 * 29
        assert state_metrics["loss"] == pytest.approx(single_metrics["loss"], rel=1e-5)
        assert state_metrics["accuracy"] == single_metrics["accuracy"]


def test_mesh_with_an_fsdp_axis_shards_parameters_and_trains_the_same(splits):
    single, _ = _train(splits, "single")
    sharded, _ = _train(splits, "mesh", fsdp=2)
    kernel = sharded.params["hidden_0"]["kernel"]  # (30, 12): its largest axis split over the fsdp axis
    assert kernel.sharding.spec == jax.sharding.PartitionSpec("fsdp")
    assert kernel.addressable_shards[0].data.shape == (15, 12)
    mu = sharded.opt_state[0].mu["hidden_0"]["kernel"]  # adam's moments are sharded like the parameters
    assert mu.sharding.spec == kernel.sharding.spec
    _assert_close(single.params, sharded.params)


def test_strategies_do_not_recompile_on_later_calls(splits, compiles):
    for kind in ("pmap", "mesh"):
        strategy, _ = parallel.choose(kind, batch_size=16)
        task, state, zeros = _start(splits, strategy)
        train_feed = feed.make(splits.train, task.train_step, batch_size=16, seed=0, pipeline="host", steps_per_call=1,
                               strategy=strategy)
        state, _ = train_feed.run_epoch(state, dict(zeros), 1)
        before = compiles.count
        state, _ = train_feed.run_epoch(state, dict(zeros), 2)
        assert compiles.count == before, kind


def test_a_batch_that_does_not_divide_over_the_devices_fails_with_the_numbers():
    assert jax.device_count() == 8
    for kind in ("pmap", "mesh"):
        with pytest.raises(InputError) as err:
            parallel.choose(kind, batch_size=10)
        message = str(err.value)
        assert "train.batch_size=10" in message and "8 devices" in message and "8 or 16" in message
    with pytest.raises(InputError, match="ensemble.size=6 does not divide over the 8 devices"):
        parallel.choose("mesh", batch_size=16, members=6)
    with pytest.raises(InputError, match="parallel='spmd' is not known; expected one of: auto, single, pmap, mesh"):
        parallel.choose("spmd", batch_size=16)
    with pytest.raises(InputError, match="mesh.fsdp=3 does not divide the 8 devices"):
        parallel.choose("mesh", batch_size=16, fsdp=3)


def test_auto_uses_a_mesh_when_the_batch_divides_and_one_device_otherwise():
    strategy, note = parallel.choose("auto", batch_size=32)
    assert (strategy.kind, strategy.width, note) == ("mesh", 8, "")
    strategy, note = parallel.choose("auto", batch_size=10)
    assert strategy.kind == "single" and "train.batch_size=10 does not divide over 8 devices" in note
    strategy, _ = parallel.choose("auto", batch_size=10, members=16)  # an ensemble splits its members instead
    assert (strategy.kind, strategy.members) == ("mesh", 16)


def test_cli_config_with_pmap_and_a_bad_batch_fails_before_compiling(tmp_path, compiles):
    cfg = config.default_config()
    cfg.parallel = "pmap"
    before = compiles.count
    with pytest.raises(InputError, match=r"train.batch_size=10 does not divide over the 8 devices of parallel='pmap'"):
        run.train_and_evaluate(cfg, str(tmp_path / "run"))
    assert compiles.count == before
    assert not os.path.exists(tmp_path / "run")


def test_train_and_evaluate_under_pmap_matches_single(tmp_path):
    summaries = {}
    for kind in ("single", "pmap"):
        cfg = config.default_config()
        cfg.parallel, cfg.train.epochs, cfg.train.batch_size = kind, 3, 16
        summaries[kind] = run.train_and_evaluate(cfg, str(tmp_path / kind), quiet=True)
    assert summaries["pmap"]["parallel"] == "pmap"
    assert summaries["pmap"]["train_loss"] == pytest.approx(summaries["single"]["train_loss"], rel=1e-5)
    assert summaries["pmap"]["eval_accuracy"] == summaries["single"]["eval_accuracy"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_data_parallel_like_one(tmp_path, splits):
    """Two local processes (jax.distributed, gloo), 2 devices each: mesh and pmap over 4 devices.

    Both processes must end with bit-identical parameters, equal (to float
    rounding) to one process training on the same global batches: each
    process reads every other example of each global batch of 20.
    """
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    workers = [
        subprocess.Popen(
            [sys.executable, os.path.join(HERE, "multihost_worker.py"), str(port), str(i), str(tmp_path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        for i in range(2)
    ]
    outputs = []
    for worker in workers:
        try:
            outputs.append(worker.communicate(timeout=240)[0])
        except subprocess.TimeoutExpired:
            for w in workers:
                w.kill()
            pytest.fail("the two-process run did not finish in 240 s")
    for worker, output in zip(workers, outputs):
        assert worker.returncode == 0, output[-3000:]

    reference, history = jaxdl.fit(
        jaxdl.MLP(), (splits.train.x, splits.train.y), epochs=3, batch_size=20, parallel="single", verbose=False
    )
    expected = {jax.tree_util.keystr(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(parallel.fetch(reference.params))[0]}
    for kind in ("mesh", "pmap"):
        first, second = (np.load(tmp_path / f"{kind}-{i}.npz") for i in range(2))
        for name, value in expected.items():
            np.testing.assert_array_equal(first[name], second[name])
            np.testing.assert_allclose(first[name], value, rtol=1e-5, atol=1e-6)
        assert float(first["train_loss"]) == pytest.approx(history.last["train_loss"], rel=1e-5)
