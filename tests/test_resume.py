"""Exact resume for every task and for callbacks' state; every task under every strategy and as an ensemble.

One table of small runs, one per built-in task, parameterises every test here.
"""

import json
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest

from jaxdl import cli, config, ensemble, parallel, run, state as state_lib

from conftest import EXPERIMENTS, REPO

KILL_HOOK = '''
import os, signal

def kill_at(state, step, figures):
    """SIGKILLs (or SIGTERMs) this process at the evaluation of step JAXDL_TEST_STOP_AT."""
    if str(step) == os.environ.get("JAXDL_TEST_STOP_AT"):
        os.kill(os.getpid(), getattr(signal, os.environ.get("JAXDL_TEST_SIGNAL", "SIGKILL")))
'''


def _text_file(tmp_path_factory) -> str:
    """A small text for the language model: the first 12,000 characters of pydoc's topics."""
    from pydoc_data.topics import topics

    path = tmp_path_factory.mktemp("text") / "text.txt"
    path.write_text("".join(topics[k] for k in sorted(topics))[:12000], encoding="utf-8")
    return str(path)


# Each task's run: its config file (None: the default, supervised) and overrides that keep it small.
RUNS = {
    "supervised": (None, {"train.epochs": 2, "train.batch_size": 16}),
    "autoencoder": ("digits_autoencoder.py", {"train.epochs": 2, "train.batch_size": 32, "train.eval_every_epochs": 1,
                                              "plot_images": 0}),
    "language_model": ("pydoc_char_lm.py", {"train.epochs": 2, "train.batch_size": 16, "train.eval_every_epochs": 1,
                                            "optimizer.warmup_steps": 10,
                                            "model.embed_dim": 16, "model.num_heads": 2, "model.num_layers": 1,
                                            "model.context": 16, "sample.length": 0}),
    "gan": ("digits_gan.py", {"train.epochs": 2, "train.batch_size": 32, "train.eval_every_epochs": 1}),
}


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    return _text_file(tmp_path_factory)


def _config(name: str, text_file: str, **more):
    spec, overrides = RUNS[name]
    cfg = config.load(None if spec is None else os.path.join(EXPERIMENTS, spec))
    overrides = {**overrides, "logging.plots": False, "logging.tensorboard": False, **more}
    if name == "language_model":
        overrides["data.text_file"] = text_file
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        section = cfg
        for part in parents:
            section = section[part]
        section[leaf] = value
    return cfg


def _train(cfg):
    """A run without a workdir: (final state, the task)."""
    setup = run.setup(cfg)
    state, _, _ = run.execute(cfg, setup, None, quiet=True)
    return parallel.local(state), setup.task


def _leaves(task, state):
    """The exported parameters, but attention's key bias: its true gradient is exactly zero (softmax ignores a
    shift shared by all keys), so adam turns float rounding noise in it into updates of full size."""
    return [np.asarray(leaf) for path, leaf in jax.tree_util.tree_flatten_with_path(task.export(state))[0]
            if "['key']['bias']" not in jax.tree_util.keystr(path)]


@pytest.mark.parametrize("name", list(RUNS))
def test_every_strategy_trains_every_task_to_the_same_parameters(name, text_file):
    """On 8 simulated devices: single, pmap, mesh and mesh with fsdp=2 agree to float32 rounding (rtol 1e-4)."""
    one_epoch = {"train.epochs": 1}
    reference, task = _train(_config(name, text_file, parallel="single", **one_epoch))
    for kind, fsdp in (("pmap", 1), ("mesh", 1), ("mesh", 2)):
        state, _ = _train(_config(name, text_file, parallel=kind, **{"mesh.fsdp": fsdp}, **one_epoch))
        for a, b in zip(_leaves(task, reference), _leaves(task, state)):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5, err_msg=f"{name} under {kind}, fsdp={fsdp}")


@pytest.mark.parametrize("name", list(RUNS))
def test_an_ensemble_of_4_equals_four_separate_runs(name, text_file):
    """Member k is the run of seed k (vmapped matmuls round differently: atol 1e-4 after ~100 adam steps)."""
    one_epoch = {"train.epochs": 1}
    members, task = _train(_config(name, text_file, **{"ensemble.size": 4}, parallel="single", **one_epoch))
    for k in range(4):
        alone, _ = _train(_config(name, text_file, seed=k, parallel="single", **one_epoch))
        for a, b in zip(_leaves(task, alone), _leaves(task, ensemble.member(members, k))):
            np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-4, err_msg=f"{name}, member {k}")


def _hook(tmp_path) -> str:
    path = tmp_path / "kill_hook.py"
    path.write_text(KILL_HOOK)
    return f"{path}:kill_at"


def _argv(name, workdir, hook, text_file, *extra):
    spec, overrides = RUNS[name]
    argv = ["train", "--quiet", "--workdir", str(workdir)]
    if spec is not None:
        argv += ["--config", os.path.join(EXPERIMENTS, spec)]
    overrides = {**overrides, "logging.plots": False, "checkpoint.every_epochs": 1, "checkpoint.every_seconds": 0,
                 "callbacks.hook": hook}
    if name == "language_model":
        overrides["data.text_file"] = text_file
    return argv + [f"--config.{k}={v}" for k, v in overrides.items()] + list(extra)


def _first_record(workdir) -> dict:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return json.loads(f.readline())


def _summary(workdir) -> dict:
    with open(os.path.join(workdir, "summary.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", list(RUNS))
def test_sigkill_during_training_and_rerun_gives_the_uninterrupted_parameters(name, tmp_path, text_file):
    """Killed at epoch 2's evaluation, before its checkpoint: the rerun resumes from epoch 1's and trains epoch 2 again."""
    hook = _hook(tmp_path)
    assert cli.main(_argv(name, tmp_path / "whole", hook, text_file)) == 0
    whole = _summary(tmp_path / "whole")
    steps_per_epoch = _first_record(tmp_path / "whole")["step"]
    env = {**os.environ, "JAXDL_TEST_STOP_AT": str(2 * steps_per_epoch), "JAXDL_TEST_SIGNAL": "SIGKILL"}
    killed = subprocess.run([sys.executable, "-m", "jaxdl", *_argv(name, tmp_path / "cut", hook, text_file)],
                            env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert not os.path.exists(tmp_path / "cut" / "summary.json")
    assert cli.main(_argv(name, tmp_path / "cut", hook, text_file)) == 0
    assert _summary(tmp_path / "cut")["params_sha256"] == whole["params_sha256"]


@pytest.mark.parametrize("callback", [
    ["--config.callbacks.early_stopping_patience=3", "--config.callbacks.early_stopping_metric=eval_accuracy"],
    ["--config.callbacks.reduce_lr_patience=1", "--config.callbacks.reduce_lr_factor=0.5"],
], ids=["early_stopping", "reduce_on_plateau"])
def test_sigterm_then_resume_with_callbacks_ends_as_the_uninterrupted_run(callback, tmp_path, text_file, monkeypatch):
    """The callbacks' state (best value, patience, best state, the cut rate) travels with the checkpoint."""
    hook = _hook(tmp_path)
    extra = ["--config.train.epochs=40", *callback]
    assert cli.main(_argv("supervised", tmp_path / "whole", hook, text_file, *extra)) == 0
    whole = _summary(tmp_path / "whole")
    steps_per_epoch = _first_record(tmp_path / "whole")["step"]
    if "early" in callback[0]:
        assert whole["stop_reason"] and whole["epochs_run"] < 40  # it did stop early
    else:
        with open(tmp_path / "whole" / "metrics.jsonl") as f:
            scales = [json.loads(line).get("lr_scale", 1.0) for line in f]
        assert min(scales) < 1.0 and scales.index(min(scales)) > 3  # the rate was cut, after the interruption
    monkeypatch.setenv("JAXDL_TEST_STOP_AT", str(3 * steps_per_epoch))
    monkeypatch.setenv("JAXDL_TEST_SIGNAL", "SIGTERM")
    assert cli.main(_argv("supervised", tmp_path / "cut", hook, text_file, *extra)) == 0
    assert not os.path.exists(tmp_path / "cut" / "summary.json")  # stopped at epoch 3, saved
    monkeypatch.delenv("JAXDL_TEST_STOP_AT")
    assert cli.main(_argv("supervised", tmp_path / "cut", hook, text_file, *extra)) == 0
    resumed = _summary(tmp_path / "cut")
    assert resumed["params_sha256"] == whole["params_sha256"]
    assert resumed["stop_reason"] == whole["stop_reason"]
    assert resumed["epochs_run"] == whole["epochs_run"]


def test_reduce_on_plateau_scales_each_members_own_rate():
    from jaxdl import optim
    from jaxdl.callbacks import Control, ReduceLROnPlateau

    import optax

    tx = optim.build({"name": "sgd", "learning_rate": 0.1}, total_steps=10, per_member=True, scalable=True)
    params = {"w": np.zeros((2, 3), np.float32)}
    opt_state = jax.vmap(lambda p: tx.init(p))(params)
    state = ensemble.set_hyperparams(state_lib.TrainState(
        step=np.zeros(2, np.int32), params=params, opt_state=opt_state, rng=np.zeros((2, 2), np.uint32),
        model_state={}, tx=tx), step_size=np.asarray([1.0, 0.25], np.float32))
    callback = ReduceLROnPlateau("eval_loss", patience=1, factor=0.5)
    control = Control(state)
    for epoch, loss in enumerate([1.0, 1.0, 1.0], start=1):
        callback.on_eval(control, {"epoch": epoch, "eval_loss": loss})
    scales = [node.hyperparams["step_size"] for node in jax.tree.leaves(
        control.state.opt_state, is_leaf=lambda n: isinstance(n, optax.InjectStatefulHyperparamsState))
        if isinstance(node, optax.InjectStatefulHyperparamsState)]
    np.testing.assert_allclose(np.asarray(scales[0]), [0.25, 0.0625])  # two cuts of 0.5 each, each member its own
