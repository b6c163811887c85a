"""One loop for the tasks whose step is not the supervised one: autoencoder, language model, GAN.

A task hands the runner a `Task`: its training arrays, how to initialise its
state, its pure train step `(state, batch) -> (state, metrics)`, how to
evaluate on held-out data, and what to draw at each evaluation. The runner
does the rest the way `jaxdl.run` does for supervised runs: it checks the
workdir, writes `config.json`, `manifest.json`, `metrics.jsonl`,
TensorBoard events and `summary.json`, and saves an orbax checkpoint after
every `checkpoint.every_epochs` epochs, so that rerunning the same command resumes where it stopped and
ends with the same parameters.

An epoch is one compiled call: a `lax.scan` over its batches, which are
gathered on the device from arrays held there. The order of examples is
`data.order.permutation(seed, epoch)`, and the last partial batch is
dropped, so every batch has the same size. Tasks run on one device.
"""

import dataclasses
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from ml_collections import config_dict

from jaxdl import __version__, checkpoint, optim, parallel, state as state_lib, workdir as workdir_lib
from jaxdl.data import order
from jaxdl.errors import InputError
from jaxdl.writers import JsonLinesWriter, Progress, TensorBoardWriter, write_json


@dataclasses.dataclass(frozen=True)
class Task:
    """What a task gives the runner.

    Attributes:
      description: lines printed before training (data, model, parameters).
      train: the training arrays, examples along the first axis. Only what
        the step may read: an unsupervised task passes no labels.
      init: rng -> the initial state (any pytree of arrays; flax structs
        such as `TrainState` included).
      train_step: the pure step (state, batch) -> (state, metrics), the
        metrics being means over the batch.
      evaluate: state -> held-out figures (floats), at each evaluation.
      report: (state, epoch, workdir or None) -> what the task draws or
        prints at an evaluation (PNG paths, a text sample), as a dict that
        goes into the evaluation's record; entries whose keys end in
        "_text" are also printed. None: nothing.
      params: state -> the parameters whose digest the summary records.
      headline: summary -> the result line the command prints.
    """

    description: str
    train: dict[str, np.ndarray]
    init: Callable[[jax.Array], Any]
    train_step: Callable[[Any, dict], tuple[Any, dict]]
    evaluate: Callable[[Any], dict[str, float]]
    params: Callable[[Any], Any]
    headline: Callable[[dict], str]
    report: Callable[[Any, int, str | None], dict] | None = None


def base_config(task: str) -> ml_collections.ConfigDict:
    """The settings every task shares; a task adds its `model` (and other) keys."""
    cfg = ml_collections.ConfigDict()
    cfg.task = task
    cfg.seed = 0
    cfg.compile_cache = "auto"  # where compiled programs are kept: auto (~/.cache/jaxdl/jax), a path, or "off"
    cfg.data = ml_collections.ConfigDict()
    cfg.data.name = "digits"
    cfg.data.data_dir = config_dict.placeholder(str)
    cfg.data.test_fraction = 0.2
    cfg.data.split_seed = 0
    cfg.model = ml_collections.ConfigDict()
    cfg.train = ml_collections.ConfigDict()
    cfg.train.epochs = 20
    cfg.train.batch_size = 32
    cfg.train.eval_every_epochs = 5
    cfg.optimizer = ml_collections.ConfigDict(
        {k: config_dict.placeholder(float) if v is None else v for k, v in optim.DEFAULTS.items()}
    )
    cfg.checkpoint = ml_collections.ConfigDict()
    cfg.checkpoint.enabled = True  # orbax checkpoints; rerunning the command resumes
    cfg.checkpoint.every_epochs = 10  # and after the last epoch, and when SIGTERM asks the run to stop
    cfg.checkpoint.keep = 2
    cfg.logging = ml_collections.ConfigDict()
    cfg.logging.tensorboard = True
    return cfg


def check_positive_int(value, name: str) -> int:
    """`value` as an int, or an InputError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name}={value!r}: expected a positive integer")
    return value


def _steps(num_examples: int, batch_size: int) -> int:
    steps = num_examples // batch_size
    if steps == 0:
        raise InputError(
            f"train.batch_size={batch_size}: larger than the {num_examples} training examples; "
            f"expected at most {num_examples}"
        )
    return steps


def make_epoch(train_step: Callable, steps: int, batch_size: int) -> Callable:
    """(state, arrays, order) -> (state, per-step metrics): one epoch as a scan over its batches."""

    def epoch(state, arrays: dict, rows: jax.Array):
        def body(state, batch_rows):
            batch = {k: jnp.take(v, batch_rows, axis=0) for k, v in arrays.items()}
            return train_step(state, batch)

        return jax.lax.scan(body, state, rows[: steps * batch_size].reshape(steps, batch_size))

    return epoch


def _manager(workdir: str, keep: int) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        os.path.abspath(os.path.join(workdir, checkpoint.DIRECTORY)),
        item_handlers={"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()},
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, cleanup_tmp_directories=True),
    )


def _save(manager: ocp.CheckpointManager, state, epoch: int, steps: int) -> None:
    tree = flax.serialization.to_state_dict(state)
    meta = {"epoch": epoch, "fingerprint": parallel.fingerprint(tree)}
    manager.save(epoch * steps, args=ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta)), force=True)


def _restore(manager: ocp.CheckpointManager, initial) -> tuple[Any, int] | None:
    """The newest checkpoint's state and epoch, restored into the structure of `initial`."""
    step = manager.latest_step()
    if step is None:
        return None
    target = flax.serialization.to_state_dict(initial)
    saved = manager.item_metadata(step)["state"]
    checkpoint.check_structure(checkpoint.shapes(saved), checkpoint.shapes(target))
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    tree, meta = restored["state"], restored["meta"]
    if parallel.fingerprint(tree) != meta["fingerprint"]:
        raise checkpoint.DamagedCheckpoint(
            f"the checkpoint at step {step} in {manager.directory} does not match its fingerprint; "
            "move it aside or pass --overwrite to start over"
        )
    return flax.serialization.from_state_dict(initial, tree), int(meta["epoch"])


def train_and_evaluate(
    cfg: ml_collections.ConfigDict, workdir: str | None, task: Task, *, quiet: bool = False, overwrite: bool = False,
    force: bool = False, experiment: str | None = None, command: list[str] | None = None,
) -> dict:
    """Trains a task, evaluates it every `train.eval_every_epochs` epochs and at the end, and writes the workdir.

    Args:
      cfg: the resolved config.
      workdir: the run's directory; None writes nothing (no checkpoints).
      task: what to train (see `Task`).
      quiet: no per-epoch lines.
      overwrite, force: as for `jaxdl.run.train_and_evaluate`.
      experiment, command: for the manifest.

    Returns:
      The summary: the last evaluation's figures (`eval_*`), the last
      epoch's training figures (`train_*`), `steps`, `wall_seconds`,
      `params_sha256`, and what the last report returned. On SIGTERM:
      `{"stopped_at": step}` once the epoch's checkpoint is saved.
    """
    start = time.perf_counter()
    epochs = check_positive_int(cfg.train.epochs, "train.epochs")
    batch_size = check_positive_int(cfg.train.batch_size, "train.batch_size")
    eval_every = check_positive_int(cfg.train.eval_every_epochs, "train.eval_every_epochs")
    keep = check_positive_int(cfg.checkpoint.keep, "checkpoint.keep")
    save_every = check_positive_int(cfg.checkpoint.every_epochs, "checkpoint.every_epochs")
    num_examples = len(next(iter(task.train.values())))
    steps = _steps(num_examples, batch_size)
    resume = False
    if workdir is not None:
        resume = workdir_lib.inspect(workdir, cfg.to_dict(), overwrite=overwrite)
        changes = workdir_lib.check_resumable(workdir, cfg.to_dict(), force=force) if resume else []
    if cfg.compile_cache != "off":
        auto = cfg.compile_cache == "auto"
        parallel.enable_compilation_cache(parallel.default_compilation_cache_dir() if auto else cfg.compile_cache)
    progress = Progress(epochs, quiet=quiet)
    if workdir is not None:
        os.makedirs(workdir, exist_ok=True)
        if not resume:
            workdir_lib.clear(workdir)
        write_json(os.path.join(workdir, "config.json"), cfg.to_dict())
        write_json(os.path.join(workdir, "manifest.json"), checkpoint.manifest(cfg.seed, experiment=experiment, command=command))
    progress.message(task.description)
    progress.message(f"{epochs} epochs of {steps} steps at batch size {batch_size} ({num_examples} training examples)")

    state = task.init(jax.random.PRNGKey(cfg.seed))
    first_epoch = 1
    manager = _manager(workdir, keep) if workdir is not None and cfg.checkpoint.enabled else None
    if resume and manager is not None:
        restored = _restore(manager, state)
        if restored is not None:
            state, done = restored
            first_epoch = done + 1
            workdir_lib.keep_records_until(workdir, done * steps)
            progress.message(f"resuming after epoch {done} (step {done * steps})"
                             + (f"; with changed keys: {'; '.join(changes)}" if changes else ""))
    arrays = {k: jnp.asarray(v) for k, v in task.train.items()}
    run_epoch = jax.jit(make_epoch(task.train_step, steps, batch_size), donate_argnums=0)
    writer = JsonLinesWriter(os.path.join(workdir, "metrics.jsonl")) if workdir is not None else None
    tensorboard = (
        TensorBoardWriter(os.path.join(workdir, "tensorboard")) if workdir is not None and cfg.logging.tensorboard else None
    )
    last_eval, last_train, report, train_seconds = {}, {}, {}, 0.0
    try:
        with checkpoint.StopSignals() as signals:
            for epoch in range(first_epoch, epochs + 1):
                began = time.perf_counter()
                rows = jnp.asarray(order.permutation(num_examples, seed=cfg.seed, epoch=epoch))
                state, per_step = run_epoch(state, arrays, rows)
                last_train = {k: float(np.mean(v)) for k, v in jax.device_get(per_step).items()}
                seconds = time.perf_counter() - began
                train_seconds += seconds
                step = epoch * steps
                record = {"epoch": epoch, "step": step, **{f"train_{k}": v for k, v in last_train.items()},
                          "steps_per_second": steps / seconds}
                if writer is not None:
                    writer.write({"type": "train", "epoch": epoch, "step": step, **last_train, "epoch_seconds": seconds})
                if tensorboard is not None:
                    tensorboard.scalars(step, last_train, prefix="train")
                if epoch % eval_every == 0 or epoch == epochs:
                    last_eval = task.evaluate(state)
                    report = task.report(state, epoch, workdir) if task.report is not None else {}
                    record.update({f"eval_{k}": v for k, v in last_eval.items()})
                    for key, value in report.items():
                        if key.endswith("_text"):
                            progress.message(value)
                    if writer is not None:
                        writer.write({"type": "eval", "split": "test", "epoch": epoch, "step": step, **last_eval, **report})
                    if tensorboard is not None:
                        tensorboard.scalars(step, last_eval, prefix="test")
                progress.epoch(record)
                if manager is not None and (epoch % save_every == 0 or epoch == epochs or signals.requested):
                    with signals.protect():
                        _save(manager, state, epoch, steps)
                if signals.requested and epoch < epochs:
                    progress.message(f"stopped after epoch {epoch} on request; its checkpoint is saved")
                    return {"stopped_at": step, "epochs": epochs, "workdir": workdir}
    finally:
        for closing in (writer, tensorboard, manager):
            if closing is not None:
                closing.close()
    if not last_eval:  # a finished run, rerun: evaluate the restored state again
        last_eval = task.evaluate(state)
        report = task.report(state, epochs, workdir) if task.report is not None else {}
    summary = {
        **{f"eval_{k}": v for k, v in last_eval.items()},
        **{f"train_{k}": v for k, v in last_train.items()},
        **report,
        "task": cfg.task,
        "dataset": cfg.data.name,
        "steps": epochs * steps,
        "epochs": epochs,
        "wall_seconds": time.perf_counter() - start,
        "train_seconds": train_seconds,
        "params_sha256": state_lib.params_sha256(task.params(state)),
        "num_params": state_lib.param_count(task.params(state)),
        "seed": cfg.seed,
        "versions": {"jaxdl": __version__, "jax": jax.__version__, "python": sys.version.split()[0]},
        "devices": parallel.device_summary(),
    }
    summary["headline"] = task.headline(summary)
    if workdir is not None:
        write_json(os.path.join(workdir, "summary.json"), summary)
    return summary


def load_pixels(cfg: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...]]:
    """A dataset of images as pixels in [0, 1]: (train images, test images, test labels, image shape).

    Train labels are not returned: the tasks that use this learn without
    them (test labels only colour plots). See `load_labelled_pixels`.
    """
    x_train, _, x_test, y_test, shape = load_labelled_pixels(cfg)
    return x_train, x_test, y_test, shape


def load_labelled_pixels(cfg: ml_collections.ConfigDict) -> tuple[np.ndarray, ...]:
    """(train images, train labels, test images, test labels, image shape), pixels in [0, 1].

    `digits` stores each 8x8 image as 64 numbers from 0 to 16; TFDS image
    datasets (mnist, ...) store uint8 pixels. Both are divided by their
    largest possible value, so that a pixel means the same in every split.
    """
    from jaxdl import data

    splits = data.load(cfg.data.name, data_dir=cfg.data.data_dir, test_fraction=cfg.data.test_fraction,
                       split_seed=cfg.data.split_seed, scaling="none")
    x_train, x_test = splits.train.x.astype(np.float32), splits.test.x.astype(np.float32)
    if x_train.ndim == 2:  # images stored as rows of pixels, such as digits' 8x8
        side = int(round(np.sqrt(x_train.shape[1])))
        if side * side != x_train.shape[1]:
            raise InputError(f"data.name={cfg.data.name!r}: its {x_train.shape[1]} features are not a square image")
        shape = (side, side)
        top = 16.0 if cfg.data.name == "digits" else float(max(x_train.max(), 1.0))
    else:
        shape = tuple(x_train.shape[1:])
        top = 255.0
    x_train = x_train.reshape(len(x_train), -1) / top
    x_test = x_test.reshape(len(x_test), -1) / top
    return x_train, np.asarray(splits.train.y), x_test, np.asarray(splits.test.y), shape
