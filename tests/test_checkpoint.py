"""Checkpoints: exact resume after SIGKILL and SIGTERM, damaged checkpoints, structure and config checks."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

import jaxdl
import pytest

from jaxdl import checkpoint, cli, config, run
from jaxdl.errors import InputError

# A network big enough that a checkpoint takes a while to write (3 MB), trained briefly.
FAULT_RUN = [
    "--config.model.mlp.hidden=512,512", "--config.train.epochs=12", "--config.checkpoint.every_steps=50",
    "--config.checkpoint.keep=3", "--config.checkpoint.every_seconds=0",
]


def _launch(workdir, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "jaxdl", "train", "--quiet", "--workdir", str(workdir), *FAULT_RUN, *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def _checkpoint_entries(workdir) -> list[str]:
    directory = os.path.join(workdir, "checkpoints")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def _committed(workdir) -> list[int]:
    return sorted(int(name) for name in _checkpoint_entries(workdir) if name.isdigit())


def _wait_for(condition, process, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.002)
    process.kill()
    pytest.fail("the training process never reached the point to interrupt it at")


def _summary(workdir) -> dict:
    with open(os.path.join(workdir, "summary.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The fault run, start to end with no interruption."""
    workdir = tmp_path_factory.mktemp("uninterrupted")
    process = _launch(workdir)
    out = process.communicate(timeout=300)[0]
    assert process.returncode == 0, out[-2000:]
    return _summary(workdir)


def test_sigkill_at_three_points_then_resume_gives_the_uninterrupted_result(tmp_path, uninterrupted):
    workdir = tmp_path / "run"
    points = {
        "before the first checkpoint": lambda: os.path.exists(workdir / "metrics.jsonl") and not _committed(workdir),
        "during an asynchronous save": lambda: any("tmp" in name for name in _checkpoint_entries(workdir)),
        "after several checkpoints": lambda: len(_committed(workdir)) >= 3,
    }
    during_save_seen = False
    for name, condition in points.items():
        process = _launch(workdir)
        reached = _wait_for(condition, process)
        if name == "during an asynchronous save" and reached:
            during_save_seen = True
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL, f"the run ended before it could be killed {name}"
        assert not os.path.exists(workdir / "summary.json")
    assert during_save_seen
    process = _launch(workdir)  # the same command again: it continues and finishes
    out = process.communicate(timeout=300)[0]
    assert process.returncode == 0, out[-2000:]
    summary = _summary(workdir)
    assert summary["params_sha256"] == uninterrupted["params_sha256"]
    assert summary["steps"] == uninterrupted["steps"] == 12 * 46
    assert not any("tmp" in name for name in _checkpoint_entries(workdir))  # cut-off saves were cleaned up
    # metrics.jsonl holds each epoch once: records past a checkpoint were dropped and written again.
    epochs = [json.loads(line)["epoch"] for line in open(workdir / "metrics.jsonl") if '"train"' in line]
    assert epochs == list(range(1, 13))


def test_sigterm_saves_at_that_step_exits_0_and_resumes_exactly(tmp_path, uninterrupted):
    workdir = tmp_path / "run"
    process = _launch(workdir)
    _wait_for(lambda: len(_committed(workdir)) >= 2, process)
    process.send_signal(signal.SIGTERM)
    out = process.communicate(timeout=60)[0]
    assert process.returncode == 0, out[-2000:]
    stopped = int(out.split("stopped at step ")[1].split()[0])
    assert stopped in _committed(workdir)  # a checkpoint at the step where the signal stopped it
    assert stopped < 12 * 46 and not os.path.exists(workdir / "summary.json")
    process = _launch(workdir)
    out = process.communicate(timeout=300)[0]
    assert process.returncode == 0, out[-2000:]
    assert _summary(workdir)["params_sha256"] == uninterrupted["params_sha256"]


def test_a_truncated_latest_checkpoint_falls_back_with_a_warning(tmp_path, uninterrupted):
    workdir = tmp_path / "run"
    process = _launch(workdir)
    assert process.wait(timeout=300) == 0
    steps = _committed(workdir)
    assert len(steps) == 3 and steps[-1] == 12 * 46
    state_dir = workdir / "checkpoints" / str(steps[-1]) / "state"
    largest = max((p for p in state_dir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    with open(largest, "r+b") as f:  # cut the latest checkpoint's largest file (its arrays) in half
        f.truncate(largest.stat().st_size // 2)
    os.unlink(workdir / "summary.json")
    process = _launch(workdir)
    out = process.communicate(timeout=300)[0]
    assert process.returncode == 0, out[-2000:]
    assert f"checkpoint at step {steps[-1]}" in out and "is damaged" in out and "falling back" in out
    assert _summary(workdir)["params_sha256"] == uninterrupted["params_sha256"]
    assert os.listdir(workdir / "damaged-checkpoints")  # set aside, not deleted


def test_arrays_that_do_not_match_their_fingerprint_are_refused(tmp_path):
    workdir = tmp_path / "run"
    cfg = _quick_config(every_epochs=1)
    run.train_and_evaluate(cfg, str(workdir), quiet=True)
    latest = _committed(workdir)[-1]
    meta_path = workdir / "checkpoints" / str(latest) / "meta" / "metadata"
    meta = json.loads(meta_path.read_text())
    meta["fingerprint"] ^= 1  # the arrays no longer match what was recorded with them
    meta_path.write_text(json.dumps(meta))
    os.unlink(workdir / "summary.json")
    with pytest.warns(UserWarning, match=f"checkpoint at step {latest} .* do not match the fingerprint"):
        summary = run.train_and_evaluate(cfg, str(workdir), quiet=True)
    assert summary["steps"] == latest


def _quick_config(**checkpoint_settings):
    cfg = config.default_config()
    cfg.train.epochs = 4
    cfg.checkpoint.every_seconds = 0.0
    for key, value in checkpoint_settings.items():
        cfg.checkpoint[key] = value
    return cfg


def test_two_runs_with_the_same_seed_end_with_the_same_parameters(tmp_path):
    a = run.train_and_evaluate(_quick_config(), str(tmp_path / "a"), quiet=True)
    b = run.train_and_evaluate(_quick_config(), str(tmp_path / "b"), quiet=True)
    assert a["params_sha256"] == b["params_sha256"]


def test_restoring_into_another_structure_names_the_key_and_both_shapes(tmp_path):
    workdir = str(tmp_path / "run")
    run.train_and_evaluate(_quick_config(), workdir, quiet=True)
    wider = _quick_config()
    wider.model.mlp.hidden = (16, 8)
    with pytest.raises(InputError) as err:
        run.train_and_evaluate(wider, workdir, quiet=True, force=True)
    message = str(err.value)
    assert "'opt_state/0/mu/hidden_0/bias'" in message or "hidden_0" in message
    assert "(12,)" in message and "(16,)" in message


def test_check_structure_reports_missing_and_reshaped_keys():
    with pytest.raises(checkpoint.StructureMismatch, match=r"at 'params/a' the checkpoint has shape \(2, 3\), the model has shape \(3, 3\)"):
        checkpoint.check_structure({"params/a": (2, 3)}, {"params/a": (3, 3)})
    with pytest.raises(checkpoint.StructureMismatch, match=r"at 'params/b' the checkpoint has absent, the model has shape \(4,\)"):
        checkpoint.check_structure({"params/a": (2,)}, {"params/a": (2,), "params/b": (4,)})


def test_resuming_with_a_result_changing_config_is_refused_with_the_keys(tmp_path):
    workdir = str(tmp_path / "run")
    run.train_and_evaluate(_quick_config(), workdir, quiet=True)
    changed = _quick_config()
    changed.optimizer.learning_rate = 0.01
    changed.seed = 3
    with pytest.raises(InputError) as err:
        run.train_and_evaluate(changed, workdir, quiet=True)
    message = str(err.value)
    assert "optimizer.learning_rate: 0.001 -> 0.01" in message and "seed: 0 -> 3" in message and "--force" in message
    neutral = _quick_config()
    neutral.train.eval_every_epochs = 2  # logging only: accepted
    neutral.train.steps_per_call = "5"
    summary = run.train_and_evaluate(neutral, workdir, quiet=True)
    assert summary["steps"] == 4 * 46


def test_overwrite_starts_over(tmp_path):
    workdir = str(tmp_path / "run")
    run.train_and_evaluate(_quick_config(), workdir, quiet=True)
    longer = _quick_config()
    longer.train.epochs = 5
    summary = run.train_and_evaluate(longer, workdir, quiet=True, overwrite=True)
    assert summary["steps"] == 5 * 46
    assert _committed(workdir) == [5 * 46]


def test_keeps_the_latest_k_and_the_best_m(tmp_path):
    workdir = str(tmp_path / "run")
    cfg = _quick_config(every_epochs=1, keep=2, keep_best=1)
    cfg.train.epochs = 8
    cfg.optimizer.learning_rate = 0.3  # unstable: the best epoch is unlikely to be among the last two
    run.train_and_evaluate(cfg, workdir, quiet=True)
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl")) if '"eval"' in line]
    accuracy = {r["step"]: r["accuracy"] for r in records}
    best = max(sorted(accuracy), key=lambda step: accuracy[step])  # the first of the best: orbax keeps the latest of ties
    best_value = accuracy[best]
    kept = _committed(workdir)
    assert kept[-2:] == [7 * 46, 8 * 46]
    assert any(accuracy[step] == best_value for step in kept)
    assert len(kept) <= 3


def test_stop_signals_hold_sigint_back_until_a_save_finishes():
    with checkpoint.StopSignals() as signals:
        finished = []
        with pytest.raises(KeyboardInterrupt):
            with signals.protect():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                finished.append(True)  # the block ran to its end despite the signal
        assert finished == [True]
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert signals.requested


def test_cli_eval_and_predict_restore_the_run(tmp_path, capsys):
    from jaxdl import data

    workdir = str(tmp_path / "run")
    assert cli.main(["train", "--quiet", "--workdir", workdir, "--config.train.epochs=5",
                     "--config.checkpoint.every_epochs=1"]) == 0
    summary = _summary(workdir)
    capsys.readouterr()
    assert cli.main(["eval", "--workdir", workdir, "--latest"]) == 0
    out = capsys.readouterr().out
    assert f"step {5 * 46}" in out and f"accuracy {summary['eval_accuracy']:.4f}" in out
    assert cli.main(["eval", "--workdir", workdir]) == 0
    assert "the best checkpoint by eval_accuracy" in capsys.readouterr().out
    raw = data.load("breast_cancer", scaling="none").test
    # In Python: the run's model, loaded without its data, takes raw rows; evaluating them gives `jaxdl eval`'s loss.
    loaded = jaxdl.load(workdir)
    figures = jaxdl.evaluate(loaded, raw.x, raw.y)
    assert figures["loss"] == pytest.approx(summary["eval_loss"], rel=1e-5)
    assert figures["accuracy"] == summary["eval_accuracy"]
    scaled = data.load("breast_cancer").test.x
    np.testing.assert_allclose(jaxdl.predict(loaded, raw.x), jaxdl.predict(loaded, scaled, scaled=True), rtol=1e-5)
    np.savetxt(tmp_path / "new.csv", raw.x[:20], delimiter=",")
    np.save(tmp_path / "new.npy", raw.x[:20])
    assert cli.main(["predict", "--workdir", workdir, "--input", str(tmp_path / "new.csv"), "--latest"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0] == "label,probability" and len(rows) == 21
    labels = np.array([int(row.split(",")[0]) for row in rows[1:]])
    assert np.mean(labels == raw.y[:20]) >= 0.9  # raw inputs, scaled with the run's saved scaler
    out_path = tmp_path / "predictions.csv"
    assert cli.main(["predict", "--workdir", workdir, "--input", str(tmp_path / "new.npy"), "--latest",
                     "--output", str(out_path)]) == 0
    assert out_path.read_text().strip().splitlines() == rows
    np.savetxt(tmp_path / "narrow.csv", raw.x[:3, :5], delimiter=",")
    assert cli.main(["predict", "--workdir", workdir, "--input", str(tmp_path / "narrow.csv")]) == 2
    assert "has (5,) features per example; the model takes (30,)" in capsys.readouterr().err
    assert cli.main(["eval", "--workdir", str(tmp_path / "nothing")]) == 2
    assert "holds no run" in capsys.readouterr().err
