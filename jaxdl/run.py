"""A run: check everything, build the task, train it with the one loop, evaluate, and write the workdir.

`train_and_evaluate(config, workdir)` is what `jaxdl train` calls, for every
task; `execute` is the part that `jaxdl.fit` shares with it, so a notebook's
run and the command's are the same run.
"""

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Sequence

import flax.serialization
import jax
import ml_collections
import numpy as np

from jaxdl import checkpoint, data, ensemble, feed, metrics, optim, parallel, saving, state as state_lib, tasks
from jaxdl.version import __version__
from jaxdl import callbacks as callbacks_lib, config as config_lib, task as task_lib, workdir as workdir_lib
from jaxdl.errors import InputError
from jaxdl.loop import Evaluator, History, train
from jaxdl.writers import JsonLinesWriter, PlotWriter, Progress, ReportWriter, TensorBoardWriter, write_bytes, write_json

@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything a run needs, built and checked from a config before anything compiles."""

    built: tasks.Built
    steps_per_epoch: int
    strategy: parallel.Strategy = parallel.SINGLE
    strategy_note: str = ""
    hyperparams: dict = dataclasses.field(default_factory=dict)  # per-member values, see ensemble.set_hyperparams
    learning_rate: object = None  # the schedule (or constant), for logging

    @property
    def task(self) -> task_lib.Task:
        return self.built.task

    @property
    def splits(self) -> data.Splits:
        return self.built.splits


def member_hyperparams(
    optimizer: dict, size: int, *, learning_rate=(), weight_decay=(), names: dict | None = None
) -> dict:
    """Checks per-member learning rates and weight decays; returns them as `ensemble.set_hyperparams` takes them.

    Raises:
      InputError: for a list whose length is not the ensemble's size, a value
        that is not a positive number, or weight decays without adamw.
    """
    names = names or {}

    def n(key: str) -> str:
        return names.get(key, key)

    values = {}
    for name, given in (("learning_rate", learning_rate), ("weight_decay", weight_decay)):
        given = tuple(given or ())
        if not given:
            continue
        key = n(f"ensemble.{name}")
        if size < 2:
            raise InputError(f"{key} gives per-member values, but {n('ensemble.size')}={size}; set the ensemble's size")
        if len(given) != size:
            raise InputError(f"{key} has {len(given)} values; expected one per member ({size})")
        for value in given:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and name == "learning_rate"):
                raise InputError(f"{key}={given!r}: expected numbers {'> 0' if name == 'learning_rate' else '>= 0'}")
        if name == "weight_decay" and optimizer.get("name") != "adamw":
            raise InputError(f"{key} needs {n('optimizer.name')}='adamw', not {optimizer.get('name')!r}")
        base = float(optimizer.get("learning_rate", optim.DEFAULTS["learning_rate"]))
        values[ensemble.MEMBER_HYPERPARAMS[name]] = np.asarray(given, np.float32) / (base if name == "learning_rate" else 1.0)
    return values


def setup(cfg: ml_collections.ConfigDict) -> Setup:
    """Checks a config against itself and the data, and builds the run's task.

    Everything that can be wrong with a config is found here, before any
    model is initialised or step compiled.

    Raises:
      InputError: naming the first bad setting, its value and what was expected.
    """
    config_lib.check(cfg)
    callbacks_lib.from_config(cfg.callbacks)  # loads a hook's file now, before anything is written
    built = tasks.build(cfg)
    return finish_setup(cfg, built)


def finish_setup(cfg: ml_collections.ConfigDict, built: tasks.Built, *, names: dict | None = None) -> Setup:
    """A checked `Setup` of a built task: steps per epoch, per-member hyperparameters and the strategy (`fit` too).

    `names`: what messages call the config's keys (`jaxdl.fit` names its own arguments).
    """
    names = names or {}
    steps = tasks.steps_per_epoch(cfg, len(built.splits.train))
    if steps * cfg.train.epochs > config_lib.INT_MAX:  # the step counter is an int32 on the device
        epochs = names.get("train.epochs", "train.epochs")
        raise InputError(f"{epochs}={cfg.train.epochs}: {steps} steps per epoch make {steps * cfg.train.epochs:,} steps; "
                         f"expected at most {config_lib.INT_MAX:,} (at most {config_lib.INT_MAX // steps:,} epochs)")
    size = cfg.ensemble.size
    hyperparams = member_hyperparams(
        {**optim.DEFAULTS, **cfg.optimizer.to_dict()}, size, learning_rate=cfg.ensemble.learning_rate,
        weight_decay=cfg.ensemble.weight_decay, names=names,
    )
    strategy, note = parallel.choose(cfg.parallel, batch_size=cfg.train.batch_size, members=size, fsdp=cfg.mesh.fsdp,
                                     batch_argument=names.get("train.batch_size", "train.batch_size"))
    schedule = None
    if cfg.optimizer.name in optim.OPTIMIZERS:
        schedule = optim.learning_rate_schedule({**optim.DEFAULTS, **cfg.optimizer.to_dict()},
                                                total_steps=steps * cfg.train.epochs)
    return Setup(built=built, steps_per_epoch=steps, strategy=strategy, strategy_note=note, hyperparams=hyperparams,
                 learning_rate=schedule)


def initial_state(task: task_lib.Task, *, seed: int, strategy: parallel.Strategy = parallel.SINGLE,
                  hyperparams: dict | None = None):
    """The state a run starts from, placed for its strategy: one model, or an ensemble of `strategy.members`."""
    state = parallel.init_state(task.init, seed, strategy.members)
    if strategy.members and hyperparams:
        state = ensemble.set_hyperparams(state, **hyperparams)
    return parallel.place_state(strategy, state)


def select_metric(select: str, built: tasks.Built) -> str:
    """The eval figure that `select` ("auto" or a figure's name) means, e.g. "eval_accuracy"."""
    return f"eval_{built.select if select == 'auto' else select}"


def example_batch(splits: data.Splits, batch_size: int) -> dict:
    """A real training batch (its first rows, transformed as the pipeline would): what the step sees."""
    rows = np.arange(min(batch_size, len(splits.train)))
    batch = {**splits.train.read(rows), "mask": np.ones(len(rows), np.float32)}
    return splits.transform(batch) if splits.transform is not None else batch


def _writes_files() -> bool:
    """In a multi-host run only process 0 writes the workdir; the others compute the same figures."""
    return jax.process_index() == 0


def train_and_evaluate(
    cfg: ml_collections.ConfigDict, workdir: str, *, quiet: bool = False, overwrite: bool = False, force: bool = False,
    experiment: str | None = None, command: list[str] | None = None,
) -> dict:
    """Trains the task a config describes, evaluates it on the test split, and writes the workdir.

    Writes `config.json` (the resolved config), `manifest.json` (versions,
    devices, seed), `metrics.jsonl` (one "train" record per epoch and one
    "eval" record per evaluation), `checkpoints/` (orbax) and `summary.json`
    (the final metrics, `steps`, `epochs`, `wall_seconds`, `params_sha256`).
    An ensemble's records hold each figure's mean over the members and, under
    `<name>_members`, every member's value; its summary names the best member
    (by `ensemble.select` on the evaluation split), whose weights go to
    `best_member.msgpack`. In a multi-host run only process 0 writes.

    A workdir with checkpoints resumes from the newest intact one, and ends
    with the parameters an uninterrupted run would have; a config that
    differs in a result-changing key is refused unless `force`. On SIGTERM
    the run saves a checkpoint at its current step and returns
    `{"stopped_at": step, ...}` without a summary.

    `experiment`: the config file the run came from, for the manifest (its
    git commit); `command`: the command line, for the manifest (default:
    sys.argv). With `logging.tensorboard`, TensorBoard event files go to
    `tensorboard/`; with `logging.plots`, learning curves to `plots/`.

    Returns:
      The summary.

    Raises:
      InputError: for a bad config or workdir, before anything is written.
    """
    start = time.perf_counter()
    if cfg.distributed.enabled:
        parallel.initialize_distributed(
            cfg.distributed.coordinator, num_processes=cfg.distributed.num_processes, process_id=cfg.distributed.process_id
        )
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise InputError(f"--workdir={workdir!r} is a file; expected a directory")
    run = setup(cfg)  # every setting checked before anything is written
    with holding(workdir):
        resume = workdir_lib.inspect(workdir, cfg.to_dict(), overwrite=overwrite)
        accepted = workdir_lib.check_resumable(workdir, cfg.to_dict(), force=force) if resume else []
        return execute(cfg, run, workdir, resume=resume, accepted_changes=accepted, quiet=quiet, experiment=experiment,
                       command=command, start=start)[2]


def holding(workdir: str, *, python: bool = False):
    """The workdir's lock for this run (`workdir.locked`); only process 0 of a multi-host run writes, and locks."""
    return workdir_lib.locked(workdir, python=python) if _writes_files() else contextlib.nullcontext()


def execute(
    cfg: ml_collections.ConfigDict,
    run: Setup,
    workdir: str | None,
    *,
    resume: bool = False,
    accepted_changes: Sequence[str] = (),
    quiet: bool = False,
    experiment: str | None = None,
    command: list[str] | None = None,
    callbacks: Sequence[callbacks_lib.Callback] = (),
    initial=None,
    start: float | None = None,
):
    """Trains a built run with the one loop; writes the workdir when there is one (`None`: nothing is written).

    Args:
      cfg: the run's config (every shared section; see `config.base_config`).
      run: the checked `Setup`.
      workdir: the run's directory, or None (a notebook's `fit`): then no
        file is written and no checkpoint is kept.
      resume: continue from the workdir's newest intact checkpoint.
      callbacks: more callbacks than the config's (Python objects).
      initial: a state to start from instead of `task.init` (fine-tuning).

    Returns:
      (final state, history, summary).
    """
    start = time.perf_counter() if start is None else start
    compiled_before, checked_before = parallel.compile_seconds(), parallel.check_seconds()
    task, splits, strategy = run.task, run.splits, run.strategy
    writes = workdir is not None and _writes_files()
    if cfg.compile_cache != "off":
        auto = cfg.compile_cache == "auto"
        parallel.enable_compilation_cache(parallel.default_compilation_cache_dir() if auto else cfg.compile_cache)

    # Every check that needs only shapes, before anything is written or compiled.
    all_callbacks = callbacks_lib.from_config(cfg.callbacks) + list(callbacks)
    eval_data = splits.validation if splits.validation is not None else splits.test  # None: no evaluation
    callbacks_lib.check_usable(all_callbacks, evaluates=eval_data is not None)
    example = example_batch(splits, cfg.train.batch_size)
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), np.asarray(a).dtype), example)
    _, train_totals = task_lib.check(task, abstract, argument=f"task {type(task).__name__}")
    train_step = task_lib.checked_train_step(task)
    members_step = jax.vmap(train_step) if strategy.members else train_step
    if strategy.kind == "pmap":
        problem = parallel.check_pmap_step(train_step, task_lib.abstract_state(task), abstract,
                                           strategy.width)
        if problem is not None:
            raise InputError(
                f"parallel='pmap': {type(task).__name__}.train_step returns a state that differs between devices "
                f"({problem}); under pmap each device sees a slice of the batch, so whatever the step sums over the "
                "batch (gradients, counts) must go through jaxdl.parallel.psum; or use parallel='mesh', which needs no "
                "such call")

    run_manifest = checkpoint.manifest(cfg.seed, experiment=experiment, command=command) if workdir is not None else {}
    if writes:
        os.makedirs(workdir, exist_ok=True)
        if not resume:
            workdir_lib.clear(workdir)  # --overwrite: start from an empty record of the run
        write_json(os.path.join(workdir, "config.json"), cfg.to_dict())
        write_json(os.path.join(workdir, "manifest.json"), run_manifest)
        if splits.scaler is not None:  # so that predictions on new raw data scale it the same way
            write_json(os.path.join(workdir, "scaler.json"), splits.scaler.to_dict())

    progress = Progress(cfg.train.epochs, quiet=quiet or (workdir is not None and not writes))
    if initial is None:
        initial = initial_state(task, seed=cfg.seed, strategy=strategy, hyperparams=run.hyperparams)
    else:
        initial = parallel.place_state(strategy, initial)
    progress.message(run.built.description)
    one_initial = ensemble.member(initial, 0) if strategy.members else initial
    if writes and saving.describes(one_initial):  # what jaxdl.load needs besides the weights: no training data
        write_json(os.path.join(workdir, saving.SPEC), saving.spec(initial))
    # The checked step's empty totals: the task's, and the first non-finite step (see task.checked_train_step).
    spec = {**train_totals, metrics.NONFINITE: jax.ShapeDtypeStruct((), np.int32)}
    if strategy.members:
        spec = {k: jax.ShapeDtypeStruct((strategy.members, *v.shape), v.dtype) for k, v in spec.items()}
    zeros = metrics.zeros_like(spec)
    select = select_metric(cfg.ensemble.select, run.built)
    checkpointer = None
    if workdir is not None and cfg.checkpoint.enabled:
        checkpointer = checkpoint.Checkpointer(
            workdir, keep=cfg.checkpoint.keep, keep_best=cfg.checkpoint.keep_best,
            best_metric=select_metric(cfg.checkpoint.best_metric, run.built), async_save=cfg.checkpoint.async_save,
        )
    position, start_totals, earlier = checkpoint.Position(), None, []
    if resume and checkpointer is not None:
        restored = checkpointer.restore_latest(initial, zeros, callbacks=all_callbacks)
        if restored is None:
            progress.message("no intact checkpoint to resume from: starting from the first step")
        else:
            initial, start_totals, meta = restored
            start_totals = parallel.fetch(start_totals)
            position = checkpoint.Position(**meta["position"])
            done = int(np.max(parallel.fetch(task_lib.step_of(initial))))
            # (A run ended by early stopping is saved as past its last epoch, with fewer steps.)
            if position.epoch <= cfg.train.epochs and (position.epoch - 1) * run.steps_per_epoch + position.step != done:
                raise InputError(
                    f"the checkpoint at step {done} in {workdir} was saved at epoch {position.epoch}, step "
                    f"{position.step} of it, which is step {(position.epoch - 1) * run.steps_per_epoch + position.step} "
                    f"with this run's {run.steps_per_epoch} steps per epoch: the data or the batch size differ from "
                    "the run's; resume with its own config, or start over (--overwrite)")
            progress.message(
                f"resuming from the checkpoint at step {done} (epoch {position.epoch}, step {position.step} of it)"
                + (f"; with changed keys: {'; '.join(accepted_changes)}" if accepted_changes else "")
            )
            if writes:
                workdir_lib.keep_records_until(workdir, done)
            earlier = workdir_lib.epoch_records(workdir, until_step=done)

    shard_index, shard_count = parallel.process_shard()
    slow = cfg.train.steps_per_call == "auto" and parallel.loops_are_slow(
        train_step, task_lib.abstract_state(task), abstract)
    train_feed = feed.make(
        splits.train, members_step, batch_size=cfg.train.batch_size, seed=cfg.seed, shuffle=cfg.train.shuffle,
        drop_remainder=cfg.train.drop_remainder, pipeline=cfg.data.pipeline,
        device_max_bytes=cfg.data.device_max_mb << 20, transform=splits.transform, workers=cfg.data.workers,
        shard_index=shard_index, shard_count=shard_count, epochs=cfg.train.epochs,
        steps_per_call=cfg.train.steps_per_call, loops_are_slow=slow, strategy=strategy,
    )
    evaluator = Evaluator(task, batch_size=cfg.train.eval_batch_size, transform=splits.transform)
    eval_split = "validation" if splits.validation is not None else "test"
    progress.message(
        f"data pipeline: {train_feed.kind}, {train_feed.steps_per_call} steps per compiled call; "
        f"{strategy.describe()}; evaluating on the {eval_split} split during training"
    )
    if run.strategy_note:
        progress.message(run.strategy_note)
    writer = JsonLinesWriter(os.path.join(workdir, "metrics.jsonl")) if writes else None
    tensorboard = TensorBoardWriter(os.path.join(workdir, "tensorboard")) if writes and cfg.logging.tensorboard else None
    plotter = PlotWriter(workdir) if writes and cfg.logging.plots else None
    report_writer = ReportWriter(workdir if writes else None, progress, tensorboard)
    examples_per_step = cfg.train.batch_size * max(strategy.members, 1)

    def report(state, step: int) -> dict:
        one = ensemble.member(parallel.local(state), 0) if strategy.members else parallel.local(state)
        report_writer.step = step
        return task.report(one, step, report_writer)

    window_logging = []
    if tensorboard is not None and cfg.logging.every_steps:
        def log_window(state, step: int, figures: dict) -> None:
            tensorboard.scalars(step, figures, prefix="train_running")  # the epoch's figures so far, at this step

        window_logging.append(callbacks_lib.Hook(log_window, every_steps=cfg.logging.every_steps, at_eval=False))

    def log(record: dict) -> None:
        if tensorboard is not None:  # numbers, and an ensemble's per-member lists (member_k tags)
            step = record["step"]
            tensorboard.scalars(step, {k[len("train_"):]: v for k, v in record.items()
                                       if k.startswith("train_") and k != "train_seconds"}, prefix="train")
            tensorboard.scalars(step, {k[len("eval_"):]: v for k, v in record.items() if k.startswith("eval_")},
                                prefix=eval_split)
            if run.learning_rate is not None:
                rate = run.learning_rate(step) if callable(run.learning_rate) else run.learning_rate
                tensorboard.scalars(step, {"learning_rate": float(rate) * record.get("lr_scale", 1.0)}, prefix="optimizer")
            tensorboard.scalars(step, {
                "steps_per_second": record["steps_per_second"], "examples_per_second": record["steps_per_second"] * examples_per_step,
                "compile_seconds": record["compile_seconds"], "epoch_seconds": record["epoch_seconds"],
            }, prefix="timing")
        if writer is None:
            return
        common = {"epoch": record["epoch"], "step": record["step"]}
        train_part = {k[len("train_"):]: v for k, v in record.items() if k.startswith("train_") and k != "train_seconds"}
        timing = {k: record[k] for k in ("epoch_seconds", "compile_seconds", "steps_per_second", "lr_scale") if k in record}
        writer.write({"type": "train", **common, **train_part, **timing})
        eval_part = {k[len("eval_"):]: v for k, v in record.items() if k.startswith("eval_")}
        if eval_part:
            writer.write({"type": "eval", "split": eval_split, **common, **eval_part})
            if plotter is not None:
                plotter.request()  # redrawn in the background, at most every few seconds

    train_start = time.perf_counter()
    final, history, failed = initial, History(), False
    try:
        with checkpoint.StopSignals(save_on_interrupt=checkpointer is not None) as signals:
            schedule = None
            if checkpointer is not None:
                schedule = checkpoint.Schedule(
                    checkpointer, signals, steps_per_epoch=train_feed.steps_per_epoch,
                    meta={"config": cfg.to_dict(), "manifest": run_manifest},
                    every_steps=cfg.checkpoint.every_steps, every_epochs=cfg.checkpoint.every_epochs,
                    every_seconds=cfg.checkpoint.every_seconds, callbacks=all_callbacks,
                )
            final, history = train(
                initial, train_feed, zeros=zeros, epochs=cfg.train.epochs, eval_data=eval_data,
                eval_every_epochs=cfg.train.eval_every_epochs, evaluator=evaluator, report=report, progress=progress,
                on_epoch=log, start=position, start_totals=start_totals, checkpoints=schedule,
                callbacks=all_callbacks + window_logging, stop_on_nan=cfg.train.stop_on_nan,
            )
        whole = History(earlier + history.records, stopped_at=history.stopped_at, stop_reason=history.stop_reason)
        if history.stopped_at is not None:
            if signals.interrupted:  # Ctrl-C: saved, and stopped as an interruption (exit status 130)
                raise checkpoint.Interrupted(history.stopped_at, workdir)
            progress.message(f"stopped at step {history.stopped_at} on request; its checkpoint is saved")
            return final, whole, {"stopped_at": history.stopped_at, "epochs": cfg.train.epochs, "workdir": workdir}
        if history.records:
            last = history.last
        else:  # a finished run, rerun: train figures from its log, evaluated anew
            last = _last_from_records(workdir, final)
            if eval_data is not None:
                last.update({f"eval_{k}": v for k, v in ensemble.summarise(evaluator(final, eval_data)).items()})
                last.update({f"eval_{k}": v for k, v in (report(final, last["step"]) or {}).items()})
        selected_on = last
        if splits.validation is not None and splits.test is not None:  # the final figures are the test split's
            test = {f"eval_{k}": v for k, v in ensemble.summarise(evaluator(final, splits.test)).items()}
            if writer is not None:
                writer.write({"type": "eval", "split": "test", "epoch": last["epoch"], "step": last["step"],
                              **{k[len("eval_"):]: v for k, v in test.items()}})
            last = {**{k: v for k, v in last.items() if not k.startswith("eval_")}, **test}
    except BaseException:
        failed = True
        raise
    finally:
        for closing in (writer, tensorboard, plotter, checkpointer):
            if closing is not None:
                try:
                    closing.close()  # the checkpointer waits for a save under way, even on an error
                except Exception:
                    if not failed:
                        raise  # after a failure, the first error is the one to report, not a writer's at closing

    final = parallel.local(final)
    one = ensemble.member(final, 0) if strategy.members else final
    info = getattr(splits, "info", None)
    summary = {
        **{k: v for k, v in last.items() if k.startswith(("eval_", "train_")) and k != "train_seconds"},
        "task": cfg.task,
        "steps": int(np.max(task_lib.step_of(final))),
        "epochs": cfg.train.epochs,
        "epochs_run": last["epoch"],
        # A finished run rerun trains nothing: its early stop's reason comes back with the callbacks' state.
        "stop_reason": history.stop_reason or next((c.reason for c in all_callbacks if c.reason), None),
        "wall_seconds": time.perf_counter() - start,
        "compile_seconds": parallel.compile_seconds() - compiled_before,
        "check_seconds": parallel.check_seconds() - checked_before,  # abstract tracing for the checks before training
        # From the start of the run (data, checks, initialisation) to the end of the first
        # epoch's training, which is the first compiled call when an epoch is fused.
        "first_epoch_seconds": train_start - start + history.records[0]["epoch_seconds"] if history.records else None,
        "train_seconds": sum(r["train_seconds"] for r in history.records),
        "params_sha256": state_lib.params_sha256(task.export(final)),
        "num_params": state_lib.param_count(task.export(one)),
        "seed": cfg.seed,
        "dataset": info.name if info is not None else cfg.data.name,
        "test_examples": 0 if splits.test is None else len(splits.test),
        "pipeline": train_feed.kind,
        "steps_per_call": train_feed.steps_per_call,
        "parallel": strategy.kind,
        "versions": {"jaxdl": __version__, "jax": jax.__version__, "python": sys.version.split()[0]},
        "devices": parallel.device_summary(),
    }
    loss = getattr(task, "loss", None)
    if loss is not None:
        summary["loss"] = loss.name
    if strategy.members and eval_data is not None:
        best = ensemble.best(selected_on, select)
        chosen = ensemble.member(final, best)
        summary.update({
            "ensemble_size": strategy.members,
            "best_member": best,
            "best_member_seed": cfg.seed + best,
            "selected_by": f"{select} on the {eval_split} split",
            **{f"best_{k}": last[f"{k}_members"][best] for k in last if f"{k}_members" in last and k.startswith("eval_")},
            "best_member_params_sha256": state_lib.params_sha256(task.export(chosen)),
        })
        if writes:
            weights = {"params": task.export(chosen), "model_state": getattr(chosen, "model_state", {})}
            write_bytes(os.path.join(workdir, "best_member.msgpack"), flax.serialization.to_bytes(weights))
    if run.built.headline is not None:
        summary["headline"] = run.built.headline(summary)
    if writes:
        write_json(os.path.join(workdir, "summary.json"), summary)
    if whole.stop_reason is None:
        whole.stop_reason = summary["stop_reason"]
    return final, whole, summary


def _last_from_records(workdir: str, final) -> dict:
    """The last epoch's record of a run resumed after it had finished: its train figures, from its log."""
    train_records = [r for r in workdir_lib.records(workdir) if r.get("type") == "train"]
    last = {"epoch": 0, "step": int(np.max(parallel.fetch(task_lib.step_of(final))))}
    timing = ("epoch", "step", "epoch_seconds", "compile_seconds", "steps_per_second", "type")
    if train_records:
        record = train_records[-1]
        last.update({"epoch": record["epoch"], **{f"train_{k}": v for k, v in record.items() if k not in timing}})
    last["train_seconds"] = 0.0
    return last


def run_params(task: task_lib.Task, state):
    """One model's exported parameters: an ensemble's first member's, or the state's own."""
    return task.export(ensemble.member(state, 0) if ensemble.size(state) else state)

