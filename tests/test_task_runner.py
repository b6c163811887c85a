"""The loop shared by the unsupervised and generative tasks: workdir, checkpoints, exact resume, errors."""

import dataclasses
import json
import os
import shutil
import signal

import numpy as np
import pytest

from jaxdl import cli, config, workdir as workdir_lib
from jaxdl.errors import InputError
from jaxdl.tasks import autoencoder, runner

from conftest import EXPERIMENTS

AE = os.path.join(EXPERIMENTS, "digits_autoencoder.py")


def _task(cfg):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(80, 16)).astype(np.float32)
    return autoencoder.build(cfg, pixels=(x, x[:20], np.arange(20) % 3, (4, 4)))


def _cfg(**train):
    cfg = autoencoder.default_config()
    cfg.model.hidden = (16,)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.eval_every_epochs = 6, 16, 3
    cfg.checkpoint.every_epochs = 1
    cfg.plot_images = 0
    cfg.compile_cache = "off"
    for key, value in train.items():
        cfg.train[key] = value
    return cfg


def _train_records(workdir):
    return [r["epoch"] for r in workdir_lib.records(workdir) if r["type"] == "train"]


def test_a_run_resumed_from_an_earlier_checkpoint_ends_as_an_uninterrupted_one(tmp_path):
    cfg = _cfg()
    whole = runner.train_and_evaluate(cfg, str(tmp_path / "whole"), _task(cfg), quiet=True)
    workdir = str(tmp_path / "cut")
    runner.train_and_evaluate(cfg, workdir, _task(cfg), quiet=True)
    # Lose the last epoch's checkpoint and the summary, as a crash during epoch 6 would.
    shutil.rmtree(os.path.join(workdir, "checkpoints", str(6 * 5)))
    os.unlink(os.path.join(workdir, "summary.json"))
    resumed = runner.train_and_evaluate(cfg, workdir, _task(cfg), quiet=True)
    assert resumed["params_sha256"] == whole["params_sha256"]
    assert resumed["eval_mse"] == pytest.approx(whole["eval_mse"], rel=1e-6)
    assert _train_records(workdir) == [1, 2, 3, 4, 5, 6]  # epoch 6 once, not twice


def test_sigterm_stops_after_the_epoch_with_a_checkpoint_and_the_rerun_finishes_the_same(tmp_path):
    cfg = _cfg()
    whole = runner.train_and_evaluate(cfg, None, _task(cfg), quiet=True)
    task = _task(cfg)

    def report_then_terminate(state, epoch, workdir):  # SIGTERM arrives during the first evaluation
        os.kill(os.getpid(), signal.SIGTERM)
        return {}

    workdir = str(tmp_path / "run")
    stopped = runner.train_and_evaluate(cfg, workdir, dataclasses.replace(task, report=report_then_terminate), quiet=True)
    assert stopped["stopped_at"] == 3 * 5
    assert not os.path.exists(os.path.join(workdir, "summary.json"))
    finished = runner.train_and_evaluate(cfg, workdir, _task(cfg), quiet=True)
    assert finished["params_sha256"] == whole["params_sha256"]
    assert _train_records(workdir) == [1, 2, 3, 4, 5, 6]


def test_rerunning_a_finished_run_trains_nothing_and_reports_the_same(tmp_path, capsys):
    workdir = str(tmp_path / "ae")
    args = ["train", "--config", AE + ":quick", "--workdir", workdir, "--config.train.epochs=4",
            "--config.train.eval_every_epochs=2"]
    assert cli.main(args) == 0
    first = json.load(open(os.path.join(workdir, "summary.json")))
    capsys.readouterr()
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "resuming after epoch 4" in out and "epoch 1/4" not in out
    again = json.load(open(os.path.join(workdir, "summary.json")))
    assert again["params_sha256"] == first["params_sha256"] and again["eval_mse"] == first["eval_mse"]


def test_a_changed_result_key_is_refused_on_resume(tmp_path, capsys):
    workdir = str(tmp_path / "ae")
    base = ["train", "--config", AE + ":quick", "--workdir", workdir, "--config.train.epochs=2"]
    assert cli.main(base) == 0
    assert cli.main(base + ["--config.model.latent_dim=3"]) == 2
    assert "model.latent_dim: 2 -> 3" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--config.task=gan"], "--config.task='gan': a task is chosen by its config file"),
    (["--config.train.batch_size=5000"], "train.batch_size=5000: larger than the 1438 training examples"),
    (["--config.train.epochs=0"], "train.epochs=0: expected a positive integer"),
    (["--config.hidden=3"], "no such config key; did you mean 'model.hidden'?"),
])
def test_bad_input_fails_before_anything_is_written(tmp_path, capsys, args, message):
    workdir = str(tmp_path / "ae")
    assert cli.main(["train", "--config", AE, "--workdir", workdir, *args]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(workdir)


def test_eval_and_predict_explain_they_are_for_supervised_runs(tmp_path, capsys):
    workdir = str(tmp_path / "ae")
    assert cli.main(["train", "--config", AE + ":quick", "--workdir", workdir, "--config.train.epochs=1"]) == 0
    capsys.readouterr()
    assert cli.main(["eval", "--workdir", workdir]) == 2
    assert "holds a run of task 'autoencoder'; eval and predict work on supervised runs" in capsys.readouterr().err


def test_a_task_config_round_trips_through_its_json(tmp_path):
    cfg = config.load(AE + ":full")
    assert cfg.task == "autoencoder" and cfg.model.hidden == (256, 128, 64)
    assert config.from_dict(json.loads(cfg.to_json())).to_dict() == cfg.to_dict()
    with pytest.raises(InputError, match="task='sorting' is not a known task; expected one of: supervised, autoencoder"):
        config.from_dict({"task": "sorting"})


def test_summary_prints_the_task_without_training(capsys):
    assert cli.main(["summary", "--config", AE]) == 0
    assert "Autoencoder 64-128-64-2-64-128-64 (33,474 parameters)" in capsys.readouterr().out
