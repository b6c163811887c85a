"""Evaluating a finished (or stopped) run of any task: restore a checkpoint from its workdir, with its data.

`jaxdl eval --workdir DIR` calls these. The run's own config (config.json)
rebuilds the task, its data and its optimizer, so the checkpoint restores
into exactly the structure it was saved from. Predicting needs no data:
`jaxdl predict` and `jaxdl.load` read the run's model.json instead
(`jaxdl.saving`).
"""

import dataclasses
import os

import numpy as np

import jax

from jaxdl import checkpoint, config as config_lib, ensemble, parallel, run, task as task_lib
from jaxdl.data import csv_source
from jaxdl.errors import InputError
from jaxdl.loop import Evaluator, zero_totals
from jaxdl.state import TrainState

WHICH = ("best", "latest")


@dataclasses.dataclass(frozen=True)
class Restored:
    """A run's state restored from one of its checkpoints, and what it was built from."""

    state: TrainState
    step: int
    setup: run.Setup
    config: dict
    chose: str  # how the checkpoint was picked, for messages


def restore(workdir: str, *, which: str = "best") -> Restored:
    """Restores a run's best (by its checkpoint.best_metric) or latest intact checkpoint, on one device.

    Raises:
      InputError: when the workdir holds no run or no checkpoint, or for an
        unknown `which`.
    """
    if which not in WHICH:
        raise InputError(f"checkpoint choice {which!r} is not known; expected one of: {', '.join(WHICH)}")
    stored = run.workdir_lib.stored_config(workdir) if os.path.isdir(workdir) else None
    if stored is None:
        raise InputError(f"--workdir={workdir!r} holds no run (no config.json); train one with: jaxdl train --workdir {workdir}")
    if "fit" in stored:
        raise InputError(f"--workdir={workdir!r} holds a run of jaxdl.fit on arrays, which the command line cannot "
                         "read again; evaluate it in Python: jaxdl.evaluate(jaxdl.load(workdir), x, y) "
                         "(jaxdl predict reads it)")
    if not run.workdir_lib.has_checkpoints(workdir):
        raise InputError(f"--workdir={workdir!r} holds no checkpoint (was it run with checkpoint.enabled=false?)")
    cfg = config_lib.from_dict(stored)
    setup = run.setup(cfg)
    strategy = parallel.Strategy("single", None, setup.strategy.members)  # inference runs on one device
    initial = run.initial_state(setup.task, seed=cfg.seed, strategy=strategy, hyperparams=setup.hyperparams)
    checkpointer = checkpoint.Checkpointer(
        workdir, keep=cfg.checkpoint.keep, keep_best=cfg.checkpoint.keep_best,
        best_metric=run.select_metric(cfg.checkpoint.best_metric, setup.built), async_save=False, read_only=True,
    )
    step = task_lib.checked_train_step(setup.task)
    example = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), run.example_batch(setup.splits, cfg.train.batch_size))
    if strategy.members:
        step = jax.vmap(step)
        example = jax.tree.map(lambda a: jax.ShapeDtypeStruct((strategy.members, *a.shape), a.dtype), example)
    zeros = zero_totals(step, initial, example)
    callbacks = run.callbacks_lib.from_config(cfg.callbacks)
    try:
        best = checkpointer.best_step() if which == "best" else None
        restored, chose = None, "the latest intact checkpoint"
        if best is not None:
            try:
                restored = checkpointer.restore(best, initial, zeros, callbacks=callbacks)
                chose = f"the best checkpoint by {checkpointer.best_metric}"
            except checkpoint.DamagedCheckpoint as err:
                chose = f"the latest intact checkpoint (the best, at step {best}, is damaged: {err})"
        if restored is None:
            restored = checkpointer.restore_latest(initial, zeros, callbacks=callbacks)
        if restored is None:
            raise InputError(f"--workdir={workdir!r}: every checkpoint is damaged; nothing to restore")
    finally:
        checkpointer.close()
    state = restored[0]
    return Restored(state=state, step=int(np.max(parallel.fetch(state.step))), setup=setup, config=stored, chose=chose)


def evaluate(restored: Restored) -> dict:
    """The restored state's figures on its run's test split (for an ensemble: means and `<name>_members`)."""
    setup = restored.setup
    evaluator = Evaluator(setup.task, batch_size=restored.config["train"]["eval_batch_size"], transform=setup.splits.transform)
    return ensemble.summarise(evaluator(restored.state, setup.splits.test))


def read_inputs(path: str, feature_shape: tuple[int, ...]) -> np.ndarray:
    """Raw features from a CSV file (every column a feature) or a .npy array (read without pickle).

    Raises:
      InputError: for a missing or unreadable file, an array that is not of
        numbers (strings, objects, complex numbers), a value that is not a
        finite float32 (nan, inf, or too large), or features of another shape
        than the model's.
    """
    if path.endswith(".npy"):
        if not os.path.isfile(path):
            raise InputError(f"--input={path!r}: no such file")
        try:
            raw = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise InputError(f"--input={path!r}: not a numeric .npy array ({err})") from None
        if raw.dtype.kind not in "biuf":
            what = _KINDS.get(raw.dtype.kind, "not numbers")
            raise InputError(f"--input={path!r}: the array has dtype {raw.dtype} ({what}); expected a numeric array "
                             "of floats or integers")
    else:
        raw = csv_source.read_features(path)  # refuses cells that are not finite numbers, naming the line
    with np.errstate(over="ignore"):  # a value too large for float32 becomes inf, refused below with its own value
        x = np.asarray(raw, np.float32)
    if x.ndim == len(feature_shape):  # one example
        x, raw = x[None], np.asarray(raw)[None]
    if tuple(x.shape[1:]) != tuple(feature_shape):
        raise InputError(
            f"--input={path!r} has {x.shape[1:] if x.ndim > 1 else x.shape} features per example; "
            f"the model takes {tuple(feature_shape)}"
        )
    finite = np.isfinite(x)
    if not finite.all():
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        value = raw[index].item()
        problem = "too large for float32" if np.isfinite(value) else "not a finite number"
        raise InputError(f"--input={path!r}: x[{', '.join(map(str, index))}] = {value!r} (row {index[0]}, counting from 0) "
                         f"is {problem}; expected a numeric array of finite floats or integers")
    return x


# What an array of each non-numeric dtype kind holds, for messages.
_KINDS = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers", "M": "dates",
          "m": "time spans", "V": "records"}
