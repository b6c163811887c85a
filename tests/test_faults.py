"""Runs that nothing can corrupt: each fault of issue 15 tried on real runs, and what must survive it.

Two processes on one workdir, a tampered checkpoint position, inference on
read-only storage, bad values, links out of the workdir, a full disk and
Ctrl-C. (Bad CSVs, .npy inputs and empty config values: test_input_faults.py.)
"""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from jaxdl import cli

QUICK = ["--quiet", "--config.train.epochs=4", "--config.checkpoint.every_epochs=1", "--config.checkpoint.keep=4"]
HOOKS = os.path.join(os.path.dirname(__file__), "fault_hooks.py")


def _summary(workdir) -> dict:
    with open(os.path.join(workdir, "summary.json")) as f:
        return json.load(f)


def _train_records(workdir) -> list[dict]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["type"] == "train"]


def _tree(path) -> list[tuple[str, int]]:
    return sorted((os.path.relpath(os.path.join(root, name), path), os.path.getsize(os.path.join(root, name)))
                  for root, _, files in os.walk(path) for name in files)


def _jaxdl(*args, env=None, **popen):
    return subprocess.Popen([sys.executable, "-m", "jaxdl", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The QUICK run, uninterrupted."""
    workdir = tmp_path_factory.mktemp("reference") / "run"
    assert cli.main(["train", "--workdir", str(workdir), *QUICK]) == 0
    return _summary(workdir)


def test_a_second_run_on_a_workdir_in_use_is_refused_and_a_dead_runs_lock_blocks_nothing(tmp_path, capsys):
    workdir = tmp_path / "run"
    slow = _jaxdl("train", "--workdir", str(workdir), "--quiet", "--config.train.epochs=40",
                  f"--config.callbacks.hook={HOOKS}:slow_down", "--config.checkpoint.every_epochs=1")
    lock = workdir / ".jaxdl.lock"
    deadline = time.monotonic() + 120
    while not (lock.exists() and f"process {slow.pid} " in lock.read_text()) and time.monotonic() < deadline:
        assert slow.poll() is None, slow.communicate()
        time.sleep(0.1)
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", "--config.train.epochs=40"]) == 2
    assert f"--workdir='{workdir}' is in use by process {slow.pid} on " in capsys.readouterr().err
    while not (workdir / "metrics.jsonl").exists():  # it goes on training, alone: killed mid-run
        time.sleep(0.1)
    slow.send_signal(signal.SIGKILL)
    slow.wait()
    # The killed run's lock died with it: the same command resumes at once, and no record is written twice.
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", "--config.train.epochs=40"]) == 0
    assert [r["epoch"] for r in _train_records(workdir)] == list(range(1, 41))


def test_a_tampered_checkpoint_position_is_damage_and_the_run_ends_as_the_uninterrupted_one(tmp_path, reference):
    workdir = tmp_path / "run"
    assert cli.main(["train", "--workdir", str(workdir), *QUICK]) == 0
    meta = workdir / "checkpoints" / "184" / "meta" / "metadata"
    meta.write_text(meta.read_text().replace('"epoch": 5', '"epoch": 3'))  # one digit of the saved position
    with pytest.warns(UserWarning, match="checkpoint at step 184 .* position, callbacks' state or other metadata were "
                                         "changed"):
        assert cli.main(["train", "--workdir", str(workdir), *QUICK]) == 0
    assert _summary(workdir)["params_sha256"] == reference["params_sha256"]
    assert [r["epoch"] for r in _train_records(workdir)] == [1, 2, 3, 4]  # the last epoch again, once
    assert os.listdir(workdir / "damaged-checkpoints")


def test_eval_on_read_only_storage_falls_back_to_the_intact_checkpoint_and_writes_nothing(tmp_path, capsys):
    workdir, view = tmp_path / "run", tmp_path / "view"
    assert cli.main(["train", "--workdir", str(workdir), *QUICK]) == 0
    state = workdir / "checkpoints" / "184" / "state"
    largest = max((p for p in state.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    with open(largest, "r+b") as f:  # the newest (and best) checkpoint, cut in half
        f.truncate(largest.stat().st_size // 2)
    view.mkdir()
    if subprocess.run(["mount", "--bind", str(workdir), str(view)], capture_output=True).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root in a mount namespace); CI runs as root")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        with pytest.raises(OSError) as refused:  # read-only for root too
            (view / "probe").write_text("x")
        assert refused.value.errno == errno.EROFS
        before = _tree(workdir)
        capsys.readouterr()
        with pytest.warns(UserWarning, match="checkpoint at step 184 .* is damaged"):
            assert cli.main(["eval", "--workdir", str(view), "--latest"]) == 0
        assert "step 138 (the latest intact checkpoint)" in capsys.readouterr().out
        with pytest.warns(UserWarning, match="checkpoint at step 184 .* is damaged"):
            import jaxdl

            assert int(jaxdl.load(str(view)).step) == 138
        assert _tree(workdir) == before
        capsys.readouterr()
        assert cli.main(["train", "--workdir", str(view), *QUICK]) == 1  # training there: one line, not a traceback
        err = capsys.readouterr().err
        assert f"jaxdl: error: cannot write {view}/.jaxdl.lock: Read-only file system; use a writable workdir" in err
    finally:
        subprocess.run(["umount", str(view)], check=True)


@pytest.mark.parametrize("override, message", [
    ("optimizer.learning_rate=nan", "optimizer.learning_rate=nan: expected a finite number > 0"),
    ("optimizer.grad_clip_norm=nan", "optimizer.grad_clip_norm=nan: expected a finite number >= 0"),
    ("seed=99999999999999999999", "seed=99999999999999999999: expected an integer from 0 to 2147483647"),
    ("checkpoint.every_seconds=nan", "checkpoint.every_seconds=nan: expected a finite number >= 0"),
    ("data.split_seed=99999999999999999999", "data.split_seed=99999999999999999999: expected an integer from 0 to"),
    ("train.epochs=99999999999999999999", "train.epochs=99999999999999999999: expected an integer from 1 to"),
    ("train.epochs=50000000", "train.epochs=50000000: 46 steps per epoch make 2,300,000,000 steps; expected at most"),
    ("optimizer.b1=nan", "optimizer.b1=nan: expected a number in [0, 1)"),
    ("callbacks.early_stopping_min_delta=inf", "callbacks.early_stopping_min_delta=inf: expected a finite number"),
])
def test_bad_values_exit_2_before_anything_is_written(tmp_path, capsys, override, message):
    workdir = tmp_path / "run"
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", f"--config.{override}"]) == 2
    assert message in capsys.readouterr().err
    assert not workdir.exists()


def test_a_run_that_fails_before_its_first_checkpoint_does_not_block_the_corrected_command(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", "--config.optimizer.learning_rate=1e30"]) == 1
    err = capsys.readouterr().err
    assert "the training loss became non-finite" in err and len(err.strip().splitlines()) == 2
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", "--config.train.epochs=2"]) == 0


def test_links_out_of_the_checkpoints_are_refused_and_nothing_is_deleted_through_them(tmp_path, capsys):
    workdir, outside = tmp_path / "run", tmp_path / "elsewhere"
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", "--config.train.epochs=2"]) == 0
    step = workdir / "checkpoints" / "92"
    shutil.move(str(step), str(outside))
    os.symlink(outside, step)
    kept = _tree(outside)
    capsys.readouterr()
    for command in (["train", "--workdir", str(workdir), "--quiet", "--config.train.epochs=2"],
                    ["eval", "--workdir", str(workdir)]):
        assert cli.main(command) == 2
        assert f"{step} is a symbolic link (to {outside}); jaxdl does not read, move or delete checkpoints through " \
               "links" in capsys.readouterr().err
    assert _tree(outside) == kept and step.is_symlink()
    os.unlink(step)
    shutil.move(str(outside), str(step))
    os.symlink(tmp_path, workdir / "damaged-checkpoints")
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", "--config.train.epochs=2"]) == 2
    assert "damaged-checkpoints is a symbolic link" in capsys.readouterr().err


def test_a_full_disk_ends_in_one_line_and_the_rerun_resumes_from_the_intact_checkpoint(tmp_path, reference):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], capture_output=True)
    workdir = disk / "run"
    env = {"JAXDL_FILL": str(disk) if mounted.returncode == 0 else "rlimit", "JAXDL_WORKDIR": str(workdir)}
    try:
        run = _jaxdl("train", "--workdir", str(workdir), *QUICK, f"--config.callbacks.hook={HOOKS}:fill_disk", env=env)
        out, err = run.communicate(timeout=300)
        assert run.returncode == 1, err
        lines = err.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("jaxdl: error: cannot ") and str(workdir) in lines[0], err
        assert ("No space left on device" if mounted.returncode == 0 else "File too large") in lines[0]
        assert "run the same command again: it resumes from the last checkpoint that was written whole" in lines[0]
        committed = sorted(int(n) for n in os.listdir(workdir / "checkpoints") if n.isdigit())
        assert committed and committed[0] == 46  # saved before the disk filled
        for ballast in disk.glob("ballast*"):
            ballast.unlink()
        assert cli.main(["train", "--workdir", str(workdir), *QUICK]) == 0
        assert _summary(workdir)["params_sha256"] == reference["params_sha256"]
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", str(disk)], check=True)


def test_ctrl_c_saves_exits_130_and_the_rerun_ends_as_the_uninterrupted_run(tmp_path, capsys):
    workdir = tmp_path / "run"
    args = ["--quiet", "--config.train.epochs=30"]
    run = _jaxdl("train", "--workdir", str(workdir), *args, f"--config.callbacks.hook={HOOKS}:slow_down")
    deadline = time.monotonic() + 120
    while not (workdir / "metrics.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=120)
    assert run.returncode == 130, err
    step = int(err.split("interrupted at step ")[1].split(";")[0])
    assert f"its checkpoint is saved in {workdir}: run the same command" in err and 0 < step < 30 * 46
    assert sorted(int(n) for n in os.listdir(workdir / "checkpoints") if n.isdigit())[-1] == step
    assert cli.main(["train", "--workdir", str(workdir), *args]) == 0  # the hook only slows: result-neutral
    assert cli.main(["train", "--workdir", str(tmp_path / "ref"), *args]) == 0
    assert _summary(workdir)["params_sha256"] == _summary(tmp_path / "ref")["params_sha256"]


def test_a_damaged_dataset_file_ends_in_one_line_naming_it(tmp_path, capsys):
    data_dir = tmp_path / "tfds"
    common = ["--quiet", "--config.train.epochs=1", f"--config.data.data_dir={data_dir}"]
    assert cli.main(["train", "--workdir", str(tmp_path / "a"), *common]) == 0  # prepares breast_cancer there
    records = [p for p in data_dir.rglob("*") if p.is_file() and "array_record" in p.name]
    assert records
    for record in records:
        record.write_bytes(record.read_bytes()[: record.stat().st_size // 3])
    capsys.readouterr()
    assert cli.main(["train", "--workdir", str(tmp_path / "b"), *common]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("jaxdl: error: the prepared files of dataset 'breast_cancer' in ") and str(data_dir) in err[0]
    assert err[0].endswith("prepare the dataset again: jaxdl data prepare breast_cancer") and len(err) == 2


@pytest.mark.parametrize("text, message", [
    ("def get_config(:\n", "line 1: syntax error"),
    ("def get_config():\n    return 1 / 0\n", "get_config() raised ZeroDivisionError: division by zero"),
    ("import no_such_module_here\n", "raised ModuleNotFoundError: No module named 'no_such_module_here'"),
])
def test_a_broken_config_file_is_one_line(tmp_path, capsys, text, message):
    config = tmp_path / "experiment.py"
    config.write_text(text)
    assert cli.main(["train", "--config", str(config), "--workdir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jaxdl: error: --config='{config}': ") and message in err and len(err.splitlines()) == 1
