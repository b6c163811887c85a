"""A run from a config: check everything, train, evaluate, and write the workdir.

`train_and_evaluate(config, workdir)` is what `jaxdl train` calls, and is
importable for tests and notebooks.
"""

import dataclasses
import os
import sys
import time

import jax
import ml_collections
import optax

from jaxdl import __version__, data, feed, losses, models, optim, parallel, state as state_lib
from jaxdl.errors import InputError
from jaxdl.loop import Evaluator, train
from jaxdl.writers import JsonLinesWriter, Progress, write_json

RUN_FILES = ("config.json", "metrics.jsonl", "summary.json", "scaler.json")


@dataclasses.dataclass(frozen=True)
class Setup:
    """Everything a run needs, built and checked from a config before anything compiles."""

    splits: data.Splits
    loss: losses.Loss
    model: models.MLP
    tx: optax.GradientTransformation
    steps_per_epoch: int


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

    steps = data.steps_per_epoch(
        len(splits.train), cfg.train.batch_size, shard_count=parallel.process_shard()[1], drop_remainder=drop_remainder
    )
    tx = optim.build(cfg.optimizer.to_dict(), total_steps=steps * epochs)
    return Setup(splits=splits, loss=loss, model=model, tx=tx, steps_per_epoch=steps)


def check_workdir(workdir: str, *, overwrite: bool = False) -> None:
    """Refuses a workdir that already holds a run, unless `overwrite`.

    Raises:
      InputError: when the workdir is a file, or holds run files and
        `overwrite` is False.
    """
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise InputError(f"--workdir={workdir!r} is a file; expected a directory")
    existing = [f for f in RUN_FILES if os.path.exists(os.path.join(workdir, f))]
    if existing and not overwrite:
        raise InputError(
            f"--workdir={workdir!r} already holds a run ({', '.join(existing)}); "
            "choose another workdir, or pass --overwrite to replace it"
        )


def train_and_evaluate(
    cfg: ml_collections.ConfigDict, workdir: str, *, quiet: bool = False, overwrite: bool = False
) -> dict:
    """Trains the model a config describes, evaluates it on the test split, and writes the workdir.

    Writes `config.json` (the resolved config), `metrics.jsonl` (one "train"
    record per epoch and one "eval" record per evaluation) and `summary.json`
    (the final metrics, `steps`, `epochs`, `wall_seconds`, `params_sha256`).

    Returns:
      The summary.

    Raises:
      InputError: for a bad config or workdir, before anything is written.
    """
    start, compiled_before = time.perf_counter(), parallel.compile_seconds()
    check_workdir(workdir, overwrite=overwrite)
    run = setup(cfg)
    if cfg.compile_cache != "off":
        auto = cfg.compile_cache == "auto"
        parallel.enable_compilation_cache(parallel.default_compilation_cache_dir() if auto else cfg.compile_cache)
    os.makedirs(workdir, exist_ok=True)
    for name in RUN_FILES:  # --overwrite: start from an empty record of the run
        if os.path.exists(os.path.join(workdir, name)):
            os.unlink(os.path.join(workdir, name))
    write_json(os.path.join(workdir, "config.json"), cfg.to_dict())
    if run.splits.scaler is not None:  # so that predictions on new raw data scale it the same way
        write_json(os.path.join(workdir, "scaler.json"), run.splits.scaler.to_dict())

    progress = Progress(cfg.train.epochs, quiet=quiet)
    info = run.splits.info
    initial = parallel.create_state(run.model, run.tx, rng=jax.random.PRNGKey(cfg.seed), input_shape=info.feature_shape)
    progress.message(
        f"{info.name}: {len(run.splits.train)} train / {len(run.splits.test)} test examples, "
        f"{info.feature_shape[0]} features; MLP "
        f"{'-'.join(map(str, (*info.feature_shape, *run.model.hidden, run.model.num_outputs)))} "
        f"({state_lib.param_count(initial.params):,} parameters); {cfg.optimizer.name}, {run.loss.name}, "
        f"{cfg.train.epochs} epochs of {run.steps_per_epoch} steps at batch size {cfg.train.batch_size}"
    )

    splits = run.splits
    shard_index, shard_count = parallel.process_shard()
    train_feed = feed.make(
        splits.train, run.loss, batch_size=cfg.train.batch_size, seed=cfg.seed, shuffle=cfg.train.shuffle,
        drop_remainder=cfg.train.drop_remainder, pipeline=cfg.data.pipeline,
        device_max_bytes=cfg.data.device_max_mb << 20, transform=splits.transform, workers=cfg.data.workers,
        shard_index=shard_index, shard_count=shard_count, epochs=cfg.train.epochs,
        steps_per_call=cfg.train.steps_per_call, model=run.model,
    )
    evaluator = Evaluator(run.loss, batch_size=cfg.train.eval_batch_size, transform=splits.transform)
    eval_split = "validation" if splits.validation is not None else "test"
    progress.message(
        f"data pipeline: {train_feed.kind}, {train_feed.steps_per_call} steps per compiled call; "
        f"evaluating on the {eval_split} split during training"
    )
    writer = JsonLinesWriter(os.path.join(workdir, "metrics.jsonl"))

    def log(record: dict) -> None:
        common = {"epoch": record["epoch"], "step": record["step"]}
        train_part = {k[len("train_"):]: v for k, v in record.items() if k.startswith("train_") and k != "train_seconds"}
        timing = {k: record[k] for k in ("epoch_seconds", "compile_seconds", "steps_per_second")}
        writer.write({"type": "train", **common, **train_part, **timing})
        eval_part = {k[len("eval_"):]: v for k, v in record.items() if k.startswith("eval_")}
        if eval_part:
            writer.write({"type": "eval", "split": eval_split, **common, **eval_part})

    train_start = time.perf_counter()
    try:
        final, history = train(
            initial,
            train_feed,
            loss=run.loss,
            epochs=cfg.train.epochs,
            eval_data=splits.validation if splits.validation is not None else splits.test,
            eval_every_epochs=cfg.train.eval_every_epochs,
            evaluator=evaluator,
            progress=progress,
            on_epoch=log,
        )
        last = history.last
        if splits.validation is not None:  # the final figures are always the test split's
            test = {f"eval_{k}": v for k, v in evaluator(final, splits.test).items()}
            writer.write({"type": "eval", "split": "test", "epoch": last["epoch"], "step": last["step"],
                          **{k[len("eval_"):]: v for k, v in test.items()}})
            last = {**{k: v for k, v in last.items() if not k.startswith("eval_")}, **test}
    finally:
        writer.close()

    summary = {
        **{k: v for k, v in last.items() if k.startswith(("eval_", "train_")) and k != "train_seconds"},
        "steps": int(final.step),
        "epochs": cfg.train.epochs,
        "wall_seconds": time.perf_counter() - start,
        "compile_seconds": parallel.compile_seconds() - compiled_before,
        # From the start of the run (data, checks, initialisation) to the end of the first
        # epoch's training, which is the first compiled call when an epoch is fused.
        "first_epoch_seconds": train_start - start + history.records[0]["epoch_seconds"],
        "train_seconds": sum(r["train_seconds"] for r in history.records),
        "params_sha256": state_lib.params_sha256(final.params),
        "num_params": state_lib.param_count(final.params),
        "seed": cfg.seed,
        "dataset": info.name,
        "test_examples": len(splits.test),
        "pipeline": train_feed.kind,
        "steps_per_call": train_feed.steps_per_call,
        "loss": run.loss.name,
        "versions": {"jaxdl": __version__, "jax": jax.__version__, "python": sys.version.split()[0]},
        "devices": parallel.device_summary(),
    }
    write_json(os.path.join(workdir, "summary.json"), summary)
    return summary
