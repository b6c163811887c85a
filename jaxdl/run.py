"""A run from a config: check everything, train, evaluate, and write the workdir.

`train_and_evaluate(config, workdir)` is what `jaxdl train` calls, and is
importable for tests and notebooks.
"""

import dataclasses
import os
import sys
import time

import flax.serialization
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxdl import __version__, checkpoint, data, ensemble, feed, losses, models, optim, parallel, state as state_lib
from jaxdl import callbacks as callbacks_lib, model_summary, workdir as workdir_lib
from jaxdl.errors import InputError
from jaxdl.loop import Evaluator, train, train_totals
from jaxdl.privacy import Privacy
from jaxdl.writers import JsonLinesWriter, PlotWriter, Progress, TensorBoardWriter, write_bytes, write_json

SELECT_METRICS = ("auto", "loss", "accuracy", "auc", "precision", "recall", "mae")


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything a run needs, built and checked from a config before anything compiles."""

    splits: data.Splits
    loss: losses.Loss
    model: models.MLP
    tx: optax.GradientTransformation
    steps_per_epoch: int
    strategy: parallel.Strategy = parallel.SINGLE
    strategy_note: str = ""
    privacy: Privacy | None = None
    hyperparams: dict = dataclasses.field(default_factory=dict)  # per-member values, see ensemble.set_hyperparams
    step_options: dict = dataclasses.field(default_factory=dict)  # accumulate, compute_dtype: see step.make_train_step
    learning_rate: object = None  # the schedule (or constant), for logging


def initial_state(
    model, tx: optax.GradientTransformation, *, seed: int, input_shape: tuple[int, ...],
    strategy: parallel.Strategy = parallel.SINGLE, hyperparams: dict | None = None, ema_decay: float = 0.0,
) -> state_lib.TrainState:
    """The state a run starts from, placed for its strategy: one model, or an ensemble of `strategy.members`."""
    if strategy.members:
        state = ensemble.create(
            model, tx, seed=seed, size=strategy.members, input_shape=input_shape, init=parallel.compiled_init,
            ema_decay=ema_decay,
        )
        if hyperparams:
            state = ensemble.set_hyperparams(state, **hyperparams)
    else:
        state = parallel.create_state(model, tx, rng=jax.random.PRNGKey(seed), input_shape=input_shape, ema_decay=ema_decay)
    return parallel.place_state(strategy, state)


def member_hyperparams(
    optimizer: dict, size: int, *, learning_rate=(), weight_decay=(), argument: str = "ensemble"
) -> dict:
    """Checks per-member learning rates and weight decays; returns them as `ensemble.set_hyperparams` takes them.

    Raises:
      InputError: for a list whose length is not the ensemble's size, a value
        that is not a positive number, or weight decays without adamw.
    """
    values = {}
    for name, given in (("learning_rate", learning_rate), ("weight_decay", weight_decay)):
        given = tuple(given or ())
        if not given:
            continue
        if size < 2:
            raise InputError(f"{argument}.{name} gives per-member values, but the ensemble has size {size}; set its size")
        if len(given) != size:
            raise InputError(f"{argument}.{name} has {len(given)} values; expected one per member ({size})")
        for value in given:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and name == "learning_rate"):
                raise InputError(f"{argument}.{name}={given!r}: expected numbers {'> 0' if name == 'learning_rate' else '>= 0'}")
        if name == "weight_decay" and optimizer.get("name") != "adamw":
            raise InputError(f"{argument}.weight_decay needs optimizer.name='adamw', not {optimizer.get('name')!r}")
        base = float(optimizer.get("learning_rate", optim.DEFAULTS["learning_rate"]))
        values[ensemble.MEMBER_HYPERPARAMS[name]] = np.asarray(given, np.float32) / (base if name == "learning_rate" else 1.0)
    return values


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name}={value!r}: expected an integer >= {minimum}")
    return value


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name}={value!r}: expected true or false")
    return value


def setup(cfg: ml_collections.ConfigDict) -> Setup:
    """Checks a config against itself and the data, and builds the run's pieces.

    Everything that can be wrong with a config is found here, before any
    model is initialised or step compiled.

    Raises:
      InputError: naming the first bad setting, its value and what was expected.
    """
    _check_int(cfg.seed, "seed", 0)
    _check_int(cfg.data.split_seed, "data.split_seed", 0)
    epochs = _check_int(cfg.train.epochs, "train.epochs", 1)
    _check_int(cfg.train.eval_every_epochs, "train.eval_every_epochs", 1)
    _check_int(cfg.train.eval_batch_size, "train.eval_batch_size", 1)
    _check_bool(cfg.train.shuffle, "train.shuffle")
    drop_remainder = _check_bool(cfg.train.drop_remainder, "train.drop_remainder")

    _check_int(cfg.data.device_max_mb, "data.device_max_mb", 0)
    _check_int(cfg.data.workers, "data.workers", 0)
    _check_int(cfg.data.in_memory_max_mb, "data.in_memory_max_mb", 0)
    _check_bool(cfg.data.one_hot, "data.one_hot")
    feed.resolve_steps_per_call(cfg.train.steps_per_call, steps_per_epoch=1, on_device=True)  # checks it
    if cfg.data.pipeline not in feed.PIPELINES:
        raise InputError(f"data.pipeline={cfg.data.pipeline!r} is not known; expected one of: {', '.join(feed.PIPELINES)}")
    if cfg.parallel not in parallel.KINDS:
        raise InputError(f"parallel={cfg.parallel!r} is not known; expected one of: {', '.join(parallel.KINDS)}")
    size = _check_int(cfg.ensemble.size, "ensemble.size", 1)
    if cfg.ensemble.select not in SELECT_METRICS:
        raise InputError(f"ensemble.select={cfg.ensemble.select!r} is not known; expected one of: {', '.join(SELECT_METRICS)}")
    privacy = None
    if cfg.privacy.clip_norm or cfg.privacy.noise_multiplier:
        privacy = Privacy(clip_norm=cfg.privacy.clip_norm, noise_multiplier=cfg.privacy.noise_multiplier)
        if cfg.model.name in ("cnn", "resnet") and cfg.model.batch_norm:
            raise InputError("privacy (DP-SGD) with model.batch_norm=true: batch statistics mix examples, "
                             "which per-example gradients cannot; turn one of them off")
    splits = data.load(
        cfg.data.name,
        data_dir=cfg.data.data_dir,
        csv_path=cfg.data.csv_path,
        label_column=cfg.data.label_column,
        csv_header=cfg.data.csv_header,
        csv_delimiter=cfg.data.csv_delimiter,
        test_fraction=cfg.data.test_fraction,
        validation_fraction=cfg.data.validation_fraction,
        split_seed=cfg.data.split_seed,
        scaling=cfg.data.scaling,
        one_hot=cfg.data.one_hot,
        in_memory_max_bytes=cfg.data.in_memory_max_mb << 20,
    )
    data.check_batch_size(cfg.train.batch_size, len(splits.train), argument="train.batch_size")

    if cfg.train.loss == "auto":
        loss = losses.for_task(splits.info.num_classes)
    else:
        loss = losses.get(cfg.train.loss, argument="train.loss")
    num_outputs, head = losses.output_layer(loss, splits.info.num_classes)
    if cfg.model.output != "auto":
        head = cfg.model.output
    model = models.build(cfg.model, num_outputs=num_outputs, output_activation=head)
    losses.check_head(loss, num_outputs, head)
    name = splits.info.name
    models.check_features(model, (len(splits.train), *splits.info.feature_shape), argument=f"{name} features")
    for split_name in ("train", "validation", "test"):
        split = getattr(splits, split_name)
        if isinstance(split, data.ArrayDataset):  # splits read from files carry TFDS's checked class labels
            losses.check_labels(loss, split.y, num_outputs, argument=f"{name} {split_name} labels")

    shard_count = parallel.process_shard()[1]
    local_batch = feed.local_batch_size(cfg.train.batch_size, shard_count)
    steps = data.steps_per_epoch(len(splits.train), local_batch, shard_count=shard_count, drop_remainder=drop_remainder)
    hyperparams = member_hyperparams(
        cfg.optimizer.to_dict(), size, learning_rate=cfg.ensemble.learning_rate, weight_decay=cfg.ensemble.weight_decay
    )
    step_options = _step_options(cfg, privacy)
    scalable = bool(cfg.callbacks.reduce_lr_patience)
    tx = optim.build(cfg.optimizer.to_dict(), total_steps=steps * epochs, per_member=bool(hyperparams), scalable=scalable)
    callbacks_lib.from_config(cfg.callbacks)  # checks the callback settings now, before anything compiles
    strategy, note = parallel.choose(cfg.parallel, batch_size=cfg.train.batch_size, members=size, fsdp=cfg.mesh.fsdp)
    return Setup(
        splits=splits, loss=loss, model=model, tx=tx, steps_per_epoch=steps, strategy=strategy, strategy_note=note,
        privacy=privacy, hyperparams=hyperparams, step_options=step_options,
        learning_rate=optim.learning_rate_schedule({**optim.DEFAULTS, **cfg.optimizer.to_dict()}, total_steps=steps * epochs),
    )


def _step_options(cfg: ml_collections.ConfigDict, privacy) -> dict:
    """The train step's options from the config: gradient accumulation and compute precision."""
    accumulate = _check_int(cfg.train.grad_accum_steps, "train.grad_accum_steps", 1)
    if cfg.train.batch_size % accumulate:
        raise InputError(
            f"train.grad_accum_steps={accumulate} does not divide train.batch_size={cfg.train.batch_size}; "
            "each micro-batch has batch_size / grad_accum_steps examples"
        )
    if accumulate > 1 and privacy is not None:
        raise InputError("train.grad_accum_steps > 1 with DP-SGD (privacy.clip_norm) is not supported; use one of them")
    precisions = {"float32": None, "bfloat16": jnp.bfloat16}
    if cfg.train.precision not in precisions:
        raise InputError(f"train.precision={cfg.train.precision!r}: expected one of: {', '.join(precisions)}")
    decay = cfg.train.ema_decay
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
        raise InputError(f"train.ema_decay={decay!r}: expected a number in [0, 1)")
    _check_bool(cfg.train.stop_on_nan, "train.stop_on_nan")
    return {"accumulate": accumulate, "compute_dtype": precisions[cfg.train.precision]}


def _writes_files() -> bool:
    """In a multi-host run only process 0 writes the workdir; the others compute the same figures."""
    return jax.process_index() == 0


def _select_metric(select: str, loss: losses.Loss) -> str:
    if select == "auto":
        return "eval_loss" if loss.kind == "regression" else "eval_accuracy"
    return f"eval_{select}"


def _check_checkpoint_settings(cfg: ml_collections.ConfigDict) -> None:
    _check_bool(cfg.checkpoint.enabled, "checkpoint.enabled")
    _check_bool(cfg.checkpoint.async_save, "checkpoint.async_save")
    for key in ("every_steps", "every_epochs", "keep_best"):
        _check_int(cfg.checkpoint[key], f"checkpoint.{key}", 0)
    _check_int(cfg.checkpoint.keep, "checkpoint.keep", 1)
    seconds = cfg.checkpoint.every_seconds
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise InputError(f"checkpoint.every_seconds={seconds!r}: expected a number >= 0")
    if cfg.checkpoint.best_metric not in SELECT_METRICS:
        raise InputError(
            f"checkpoint.best_metric={cfg.checkpoint.best_metric!r} is not known; expected one of: {', '.join(SELECT_METRICS)}"
        )


def make_checkpointer(cfg: ml_collections.ConfigDict, workdir: str, loss: losses.Loss) -> checkpoint.Checkpointer:
    """The run's checkpoint manager, with the keep policy of its config."""
    return checkpoint.Checkpointer(
        workdir, keep=cfg.checkpoint.keep, keep_best=cfg.checkpoint.keep_best,
        best_metric=_select_metric(cfg.checkpoint.best_metric, loss), async_save=cfg.checkpoint.async_save,
    )


def train_and_evaluate(
    cfg: ml_collections.ConfigDict, workdir: str, *, quiet: bool = False, overwrite: bool = False, force: bool = False,
    experiment: str | None = None, command: list[str] | None = None,
) -> dict:
    """Trains the model a config describes, evaluates it on the test split, and writes the workdir.

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
    git commit); `command`: the command line, for the manifest (default: sys.argv). With `logging.tensorboard`, TensorBoard event files go to
    `tensorboard/`; with `logging.plots`, learning curves to `plots/`.

    Returns:
      The summary.

    Raises:
      InputError: for a bad config or workdir, before anything is written.
    """
    start, compiled_before = time.perf_counter(), parallel.compile_seconds()
    if cfg.distributed.enabled:
        parallel.initialize_distributed(
            cfg.distributed.coordinator, num_processes=cfg.distributed.num_processes, process_id=cfg.distributed.process_id
        )
    writes = _writes_files()
    resume = workdir_lib.inspect(workdir, cfg.to_dict(), overwrite=overwrite)
    accepted_changes = workdir_lib.check_resumable(workdir, cfg.to_dict(), force=force) if resume else []
    _check_checkpoint_settings(cfg)
    run = setup(cfg)
    if cfg.compile_cache != "off":
        auto = cfg.compile_cache == "auto"
        parallel.enable_compilation_cache(parallel.default_compilation_cache_dir() if auto else cfg.compile_cache)
    run_manifest = checkpoint.manifest(cfg.seed, experiment=experiment, command=command)
    if writes:
        os.makedirs(workdir, exist_ok=True)
        if not resume:
            workdir_lib.clear(workdir)  # --overwrite: start from an empty record of the run
        write_json(os.path.join(workdir, "config.json"), cfg.to_dict())
        write_json(os.path.join(workdir, "manifest.json"), run_manifest)
        if run.splits.scaler is not None:  # so that predictions on new raw data scale it the same way
            write_json(os.path.join(workdir, "scaler.json"), run.splits.scaler.to_dict())

    progress = Progress(cfg.train.epochs, quiet=quiet or not writes)
    info = run.splits.info
    strategy = run.strategy
    initial = initial_state(
        run.model, run.tx, seed=cfg.seed, input_shape=info.feature_shape, strategy=strategy, hyperparams=run.hyperparams,
        ema_decay=cfg.train.ema_decay,
    )
    progress.message(model_summary.summarize(run.model, info.feature_shape).table())
    checkpointer = make_checkpointer(cfg, workdir, run.loss) if cfg.checkpoint.enabled else None
    position, start_totals = checkpoint.Position(), None
    if resume and checkpointer is not None:
        zeros = train_totals(run.loss, initial)
        restored = checkpointer.restore_latest(initial, zeros)
        if restored is None:
            progress.message("no intact checkpoint to resume from: starting from the first step")
        else:
            initial, start_totals, meta = restored
            start_totals = parallel.fetch(start_totals)
            position = checkpoint.Position(**meta["position"])
            done = int(np.max(parallel.fetch(initial.step)))
            progress.message(
                f"resuming from the checkpoint at step {done} (epoch {position.epoch}, step {position.step} of it)"
                + (f"; with changed keys: {'; '.join(accepted_changes)}" if accepted_changes else "")
            )
            if writes:
                workdir_lib.keep_records_until(workdir, done)
    members = f"an ensemble of {strategy.members} " if strategy.members else ""
    progress.message(
        f"{info.name}: {len(run.splits.train)} train / {len(run.splits.test)} test examples, "
        f"{_features(info.feature_shape)}; {members}{type(run.model).__name__} "
        f"{'-'.join(map(str, (*info.feature_shape, *getattr(run.model, 'conv_features', ()), *run.model.hidden, run.model.num_outputs)))} "
        f"({state_lib.param_count(run_params(initial)):,} parameters{' each' if members else ''}); "
        f"{cfg.optimizer.name}, {run.loss.name}, "
        f"{cfg.train.epochs} epochs of {run.steps_per_epoch} steps at batch size {cfg.train.batch_size}"
    )

    splits = run.splits
    shard_index, shard_count = parallel.process_shard()
    train_feed = feed.make(
        splits.train, run.loss, batch_size=cfg.train.batch_size, seed=cfg.seed, shuffle=cfg.train.shuffle,
        drop_remainder=cfg.train.drop_remainder, pipeline=cfg.data.pipeline,
        device_max_bytes=cfg.data.device_max_mb << 20, transform=splits.transform, workers=cfg.data.workers,
        shard_index=shard_index, shard_count=shard_count, epochs=cfg.train.epochs,
        steps_per_call=cfg.train.steps_per_call, model=run.model, strategy=strategy, privacy=run.privacy,
        step_options=run.step_options,
    )
    evaluator = Evaluator(run.loss, batch_size=cfg.train.eval_batch_size, transform=splits.transform)
    eval_split = "validation" if splits.validation is not None else "test"
    progress.message(
        f"data pipeline: {train_feed.kind}, {train_feed.steps_per_call} steps per compiled call; "
        f"{strategy.describe()}{'; DP-SGD' if run.privacy else ''}; evaluating on the {eval_split} split during training"
    )
    if run.strategy_note:
        progress.message(run.strategy_note)
    writer = JsonLinesWriter(os.path.join(workdir, "metrics.jsonl")) if writes else None

    tensorboard = TensorBoardWriter(os.path.join(workdir, "tensorboard")) if writes and cfg.logging.tensorboard else None
    plotter = PlotWriter(workdir) if writes and cfg.logging.plots else None
    examples_per_step = cfg.train.batch_size * max(strategy.members, 1)

    window_logging = []
    _check_int(cfg.logging.every_steps, "logging.every_steps", 0)
    if tensorboard is not None and cfg.logging.every_steps:
        def log_window(state, step: int, figures: dict) -> None:
            tensorboard.scalars(step, figures, prefix="train_running")  # the epoch's figures so far, at this step

        window_logging.append(callbacks_lib.Hook(log_window, every_steps=cfg.logging.every_steps, at_eval=False))

    def log(record: dict) -> None:
        if tensorboard is not None:
            step = record["step"]
            train_part = {k[len("train_"):]: v for k, v in record.items() if k.startswith("train_") and k != "train_seconds"}
            tensorboard.scalars(step, train_part, prefix="train")
            tensorboard.scalars(step, {k[len("eval_"):]: v for k, v in record.items() if k.startswith("eval_")}, prefix=eval_split)
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
        timing = {k: record[k] for k in ("epoch_seconds", "compile_seconds", "steps_per_second")}
        writer.write({"type": "train", **common, **train_part, **timing})
        eval_part = {k[len("eval_"):]: v for k, v in record.items() if k.startswith("eval_")}
        if eval_part:
            writer.write({"type": "eval", "split": eval_split, **common, **eval_part})
            if plotter is not None:
                plotter.request()  # redrawn in the background, at most every few seconds

    train_start = time.perf_counter()
    eval_data = splits.validation if splits.validation is not None else splits.test
    try:
        with checkpoint.StopSignals() as signals:
            schedule = None
            if checkpointer is not None:
                schedule = checkpoint.Schedule(
                    checkpointer, signals, steps_per_epoch=train_feed.steps_per_epoch,
                    meta={"config": cfg.to_dict(), "manifest": run_manifest},
                    every_steps=cfg.checkpoint.every_steps, every_epochs=cfg.checkpoint.every_epochs,
                    every_seconds=cfg.checkpoint.every_seconds,
                )
            final, history = train(
                initial,
                train_feed,
                loss=run.loss,
                epochs=cfg.train.epochs,
                eval_data=eval_data,
                eval_every_epochs=cfg.train.eval_every_epochs,
                evaluator=evaluator,
                progress=progress,
                on_epoch=log,
                start=position,
                start_totals=start_totals,
                checkpoints=schedule,
                callbacks=callbacks_lib.from_config(cfg.callbacks) + window_logging,
                stop_on_nan=cfg.train.stop_on_nan,
            )
        if history.stopped_at is not None:
            progress.message(f"stopped at step {history.stopped_at} on request; its checkpoint is saved")
            return {"stopped_at": history.stopped_at, "epochs": cfg.train.epochs, "workdir": workdir}
        last = history.last if history.records else _last_from_records(workdir, evaluator, final, eval_data, eval_split)
        if splits.validation is not None:  # the final figures are always the test split's
            test = {f"eval_{k}": v for k, v in ensemble.summarise(evaluator(final, splits.test)).items()}
            if writer is not None:
                writer.write({"type": "eval", "split": "test", "epoch": last["epoch"], "step": last["step"],
                              **{k[len("eval_"):]: v for k, v in test.items()}})
            selected_on = last
            last = {**{k: v for k, v in last.items() if not k.startswith("eval_")}, **test}
        else:
            selected_on = last
    finally:
        if writer is not None:
            writer.close()
        if tensorboard is not None:
            tensorboard.close()
        if plotter is not None:
            plotter.close()  # the final curves, drawn now
        if checkpointer is not None:
            checkpointer.close()  # waits for a save under way, even on an error

    final = parallel.local(final)
    summary = {
        **{k: v for k, v in last.items() if k.startswith(("eval_", "train_")) and k != "train_seconds"},
        "steps": int(np.max(final.step)),
        "epochs": cfg.train.epochs,
        "epochs_run": last["epoch"],
        "stop_reason": history.stop_reason,
        "wall_seconds": time.perf_counter() - start,
        "compile_seconds": parallel.compile_seconds() - compiled_before,
        # From the start of the run (data, checks, initialisation) to the end of the first
        # epoch's training, which is the first compiled call when an epoch is fused.
        "first_epoch_seconds": train_start - start + history.records[0]["epoch_seconds"] if history.records else None,
        "train_seconds": sum(r["train_seconds"] for r in history.records),
        "params_sha256": state_lib.params_sha256(final.params),
        "num_params": state_lib.param_count(run_params(final)),
        "seed": cfg.seed,
        "dataset": info.name,
        "test_examples": len(splits.test),
        "pipeline": train_feed.kind,
        "steps_per_call": train_feed.steps_per_call,
        "parallel": strategy.kind,
        "loss": run.loss.name,
        "versions": {"jaxdl": __version__, "jax": jax.__version__, "python": sys.version.split()[0]},
        "devices": parallel.device_summary(),
    }
    if strategy.members:
        metric = _select_metric(cfg.ensemble.select, run.loss)
        best = ensemble.best(selected_on, metric)
        chosen = ensemble.member(final, best)
        summary.update({
            "ensemble_size": strategy.members,
            "best_member": best,
            "best_member_seed": cfg.seed + best,
            "selected_by": f"{metric} on the {eval_split} split",
            **{f"best_{k}": last[f"{k}_members"][best] for k in last if f"{k}_members" in last and k.startswith("eval_")},
            "best_member_params_sha256": state_lib.params_sha256(chosen.params),
        })
        if writes:
            weights = {"params": chosen.params, "model_state": chosen.model_state}
            write_bytes(os.path.join(workdir, "best_member.msgpack"), flax.serialization.to_bytes(weights))
    if writes:
        write_json(os.path.join(workdir, "summary.json"), summary)
    return summary


def _last_from_records(workdir: str, evaluator: Evaluator, final, eval_data, eval_split: str) -> dict:
    """The last epoch's record of a run resumed after it had finished: train figures from its log, eval anew."""
    train_records = [r for r in workdir_lib.records(workdir) if r.get("type") == "train"]
    last = {"epoch": 0, "step": int(np.max(parallel.fetch(final.step)))}
    if train_records:
        record = train_records[-1]
        last.update({"epoch": record["epoch"], **{f"train_{k}": v for k, v in record.items() if k in ("loss", "accuracy", "precision", "recall", "mae") or k.endswith("_members")}})
    last.update({f"eval_{k}": v for k, v in ensemble.summarise(evaluator(final, eval_data)).items()})
    last["train_seconds"] = 0.0
    return last


def _features(shape: tuple[int, ...]) -> str:
    """'30 features' for feature vectors, '32x32x3 images' for images."""
    return f"{shape[0]} features" if len(shape) == 1 else f"{'x'.join(map(str, shape))} images"


def run_params(state: state_lib.TrainState):
    """One model's parameters: an ensemble's first member's, or the state's own."""
    return ensemble.member(state, 0).params if ensemble.size(state) else state.params
