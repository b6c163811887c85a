"""A run's directory: what is in it, whether a run there can resume, and tidying it for a resume or a restart."""

import contextlib
import datetime
import fcntl
import json
import os
import shutil
import socket
import sys

from jaxdl import config as config_lib
from jaxdl.checkpoint import DIRECTORY as CHECKPOINTS
from jaxdl.errors import InputError

RUN_FILES = (
    "config.json", "model.json", "metrics.jsonl", "summary.json", "scaler.json", "best_member.msgpack", "manifest.json", "samples.txt",
)


LOCK = ".jaxdl.lock"


@contextlib.contextmanager
def locked(workdir: str, *, python: bool = False):
    """Holds the workdir for one run: a second run on it is refused at once, naming the process that holds it.

    An exclusive `fcntl.flock` on `WORKDIR/.jaxdl.lock`, released when the
    block ends or the process dies (so a lock left by a killed run never
    blocks the next one). The file records the holder (process, host, start,
    command) for the message. It works where the filesystem honours flock:
    local disks, and NFS v4; on a multi-host run only process 0, the one that
    writes, takes it. Creates the workdir.

    Raises:
      InputError: when another process holds the workdir.
    """
    name = _WORDS[python][0]
    os.makedirs(workdir, exist_ok=True)
    fd = os.open(os.path.join(workdir, LOCK), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "another process"
            raise InputError(f"{name}={workdir!r} is in use by {holder}; wait for that run to end (or stop it), "
                             "or use another workdir") from None
        holder = (f"process {os.getpid()} on {socket.gethostname()} since "
                  f"{datetime.datetime.now().isoformat(timespec='seconds')} ({' '.join(sys.argv)[:200]})")
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def has_checkpoints(workdir: str) -> bool:
    """Whether the workdir holds at least one committed checkpoint."""
    directory = os.path.join(workdir, CHECKPOINTS)
    if not os.path.isdir(directory):
        return False
    return any(name.isdigit() and os.path.isdir(os.path.join(directory, name)) for name in os.listdir(directory))


# How messages name the workdir and the two ways out, for the command line and for `jaxdl.fit`.
_WORDS = {False: ("--workdir", "pass --overwrite", "pass --force"),
          True: ("workdir", "pass overwrite=True", "pass force=True")}


def inspect(workdir: str, current: dict, *, overwrite: bool = False, python: bool = False) -> bool:
    """Decides what a run does with its workdir: True to resume from its checkpoints, False to start.

    A run that stopped or failed before its first checkpoint starts again
    from the beginning (its records are replaced), whatever its config was.

    Raises:
      InputError: when the workdir is a file, or holds a finished run
        without checkpoints, and `overwrite` is False.
    """
    name, overwrite_it, _ = _WORDS[python]
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise InputError(f"{name}={workdir!r} is a file; expected a directory")
    if overwrite:
        return False
    if has_checkpoints(workdir):
        return True
    existing = [f for f in RUN_FILES if os.path.exists(os.path.join(workdir, f))]
    if not existing:
        return False
    if "summary.json" not in existing:
        # A run that stopped (or failed) before its first checkpoint left only its records: nothing to resume or
        # lose, so the same command, or one with a corrected setting, starts again from the beginning.
        return False
    raise InputError(
        f"{name}={workdir!r} already holds a run ({', '.join(existing)}) with no checkpoint to resume from; "
        f"choose another workdir, or {overwrite_it} to replace it"
    )


def stored_config(workdir: str) -> dict | None:
    """The config a run in `workdir` was started with, or None."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def check_resumable(workdir: str, current: dict, *, force: bool = False, python: bool = False) -> list[str]:
    """Refuses to resume with a config that would change the run's result, unless `force`.

    Returns:
      The differing keys (accepted because of `force`), as "key: saved -> now".

    Raises:
      InputError: listing every result-changing key that differs, with both values.
    """
    saved = stored_config(workdir)
    if saved is None:
        return []
    changes = [f"{key}: {old!r} -> {new!r}" for key, old, new in config_lib.result_changes(saved, current)]
    if changes and not force:
        name, overwrite_it, force_it = _WORDS[python]
        what = "arguments" if python else "config"
        raise InputError(
            f"{name}={workdir!r} holds a run whose {what} {'differ' if python else 'differs'} in settings that change the result:\n  "
            + "\n  ".join(changes)
            + f"\nrerun with the saved {what} to resume, {force_it} to resume with these changes anyway, "
            f"or {overwrite_it} to start over"
        )
    return changes


def clear(workdir: str) -> None:
    """Removes an earlier run's files and checkpoints (for --overwrite)."""
    for name in RUN_FILES:
        path = os.path.join(workdir, name)
        if os.path.exists(path):
            os.unlink(path)
    shutil.rmtree(os.path.join(workdir, CHECKPOINTS), ignore_errors=True)


def records(workdir: str) -> list[dict]:
    """The records of `metrics.jsonl` (a last line cut off by a crash is skipped)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def keep_records_until(workdir: str, step: int) -> None:
    """Drops the metrics records after global `step`: a resumed run writes them again."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return
    kept = [r for r in records(workdir) if r.get("step", 0) <= step]
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for record in kept:
            f.write(json.dumps(record, sort_keys=True) + "\n")
    os.replace(tmp, path)


def epoch_records(workdir: str, *, until_step: int) -> list[dict]:
    """The per-epoch records of `metrics.jsonl` up to global `until_step`, as `History` holds them.

    A "train" record's figures become `train_<name>`, an evaluation's (during
    training) `eval_<name>`; a resumed run's history begins with these.
    """
    timing = ("epoch_seconds", "compile_seconds", "steps_per_second", "lr_scale")
    by_epoch: dict[int, dict] = {}
    kept = [r for r in records(workdir) if r.get("step", 0) <= until_step]
    # With a validation split, the evaluations during training are its; the test split is evaluated at the end.
    during = "validation" if any(r.get("split") == "validation" for r in kept) else "test"
    for record in kept:
        if record.get("type") == "eval" and record.get("split") != during:
            continue
        epoch = by_epoch.setdefault(record["epoch"], {"epoch": record["epoch"], "step": record["step"]})
        prefix = "train_" if record.get("type") == "train" else "eval_"
        for key, value in record.items():
            if key in ("type", "split", "epoch", "step"):
                continue
            epoch[key if key in timing else prefix + key] = value
    return [by_epoch[e] for e in sorted(by_epoch)]
