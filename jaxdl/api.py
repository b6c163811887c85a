"""The Keras-like entry points for Python users: `fit`, `evaluate`, `predict`.

    import jaxdl
    model = jaxdl.MLP(hidden=(12, 8), num_outputs=1, output_activation="sigmoid")  # or any Linen / NNX module
    state, history = jaxdl.fit(model, x_train, y_train, epochs=150, batch_size=10,
                               validation_data=(x_test, y_test), workdir="runs/tutorial")
    jaxdl.evaluate(state, (x_test, y_test))   # {"loss": ..., "accuracy": ..., ...}
    jaxdl.predict(state, x_new)               # sigmoid outputs in (0, 1)
    jaxdl.save(state, "models/tutorial"); state = jaxdl.load("models/tutorial")  # or jaxdl.load("runs/tutorial")

A `fit` with a `workdir` is the same run as `jaxdl train`: it writes the
same files, checkpoints as it goes, and resumes when called again.
"""

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence

import jax
import ml_collections
import numpy as np
import optax

from jaxdl import config as config_lib, data, definition, ensemble as ensemble_lib, losses, models, modules, optim, \
    parallel as parallel_lib, run, saving, tasks, workdir as workdir_lib
from jaxdl.callbacks import Callback, Hook, ReduceLROnPlateau
from jaxdl.errors import InputError
from jaxdl.loop import Evaluator, History, predict as predict_batches
from jaxdl.privacy import Privacy
from jaxdl.state import TrainState, params_sha256
from jaxdl.task import Task
from jaxdl.tasks.supervised import PRECISIONS, Supervised

# The config keys that fit's arguments set, by the names fit's messages use.
ARGUMENTS = {
    "seed": "seed", "train.epochs": "epochs", "train.batch_size": "batch_size", "train.shuffle": "shuffle",
    "train.drop_remainder": "drop_remainder", "train.stop_on_nan": "stop_on_nan", "train.steps_per_call": "steps_per_call",
    "data.pipeline": "pipeline", "parallel": "parallel", "mesh.fsdp": "fsdp", "ensemble.size": "ensemble",
    "checkpoint.every_seconds": "checkpoint_every_seconds", "compile_cache": "compile_cache",
    "ensemble.learning_rate": "ensemble_learning_rates", "ensemble.weight_decay": "ensemble_weight_decays",
    "optimizer.name": "optimizer",
}


def _dataset(value, *, argument: str, split: str) -> data.ArrayDataset:
    """A dataset from (X, y) arrays or an embedded dataset's name (its `split`)."""
    if isinstance(value, str):
        splits = data.load(value)
        return splits.train if split == "train" else splits.test
    if isinstance(value, data.ArrayDataset):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return data.from_arrays(value[0], value[1], argument=argument)
    raise InputError(
        f"{argument}={type(value).__name__}: expected a pair of arrays (X, y) or a dataset name "
        f"({', '.join(data.EMBEDDED)})"
    )


def _examples(value, *, argument: str):
    """A user task's split: `data.Examples`, a dict of arrays, or an (x, y) pair."""
    if value is None or isinstance(value, data.Examples):
        return value
    if isinstance(value, Mapping):
        return data.Examples(dict(value))
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return data.Examples(x=np.asarray(value[0]), y=np.asarray(value[1]))
    raise InputError(f"{argument}={type(value).__name__}: for a Task, expected a dict of arrays (examples along the "
                     "first axis), an (x, y) pair, or jaxdl.data.Examples")


def _training_data(x, y):
    """fit's `x`, `y` as one value: `(x, y)` when both are given, else `x` itself (a pair, a name, a dict)."""
    if x is None:
        raise InputError("x=None: expected the training data: fit(model, x, y), fit(model, (x, y)) or a dataset name")
    if y is None:
        return x
    if isinstance(y, (int, float)) and not isinstance(y, bool):
        raise InputError(f"y={y!r}: expected the labels, one per row of x; epochs and batch_size are keyword "
                         f"arguments: fit(model, x, y, epochs={y!r})")
    if isinstance(x, (str, tuple, Mapping, data.ArrayDataset, data.Examples)):
        raise InputError(f"x={type(x).__name__} with y: pass either fit(model, x, y) with x the features, "
                         "or fit(model, (x, y)) without y")
    return (x, y)


def _cut(dataset, fraction: float):
    """(train, validation): the last `fraction` of the rows held out, before any shuffling, as Keras does."""
    count = len(dataset)
    held = int(round(count * fraction))
    if held < 1 or held >= count:
        raise InputError(f"validation_split={fraction!r} of {count} examples holds out {held}; expected at least one "
                         "example on each side")
    rows = np.arange(count)
    first, last = dataset.read(rows[: count - held]), dataset.read(rows[count - held :])
    if isinstance(dataset, data.ArrayDataset):
        return data.ArrayDataset(first["x"], first["y"]), data.ArrayDataset(last["x"], last["y"])
    return data.Examples(first), data.Examples(last)


def _optimizer(optimizer, *, total_steps: int, per_member: bool, scalable: bool) -> optax.GradientTransformation:
    """The optax optimizer that `fit`'s `optimizer=` names."""
    if callable(optimizer) and not isinstance(optimizer, optax.GradientTransformation):
        # An optax factory such as optax.adam, not yet called: called with jaxdl's default learning rate.
        try:
            optimizer = optimizer(optim.DEFAULTS["learning_rate"])
        except TypeError as err:
            raise InputError(f"optimizer={getattr(optimizer, '__name__', optimizer)!r} is a function, but calling it "
                             f"with a learning rate failed ({err}); pass an optax optimizer such as optax.adam(1e-3)") from None
        if not isinstance(optimizer, optax.GradientTransformation):
            raise InputError(f"optimizer: the function given returned a {type(optimizer).__name__}; expected an optax "
                             "GradientTransformation, such as optax.adam returns")
    if isinstance(optimizer, optax.GradientTransformation):
        if per_member:
            raise InputError("ensemble_learning_rates / ensemble_weight_decays need optimizer= as a name or settings "
                             "(each member's rate is a multiple of the named one), not an optax object")
        # Reduce-on-plateau scales the optimizer's final update, which is scaling its learning rate.
        return optax.chain(optimizer, optax.inject_hyperparams(optax.scale)(step_size=1.0)) if scalable else optimizer
    if isinstance(optimizer, str):
        settings = {"name": optimizer.lower()}
    elif isinstance(optimizer, Mapping):
        settings = {k: (v.lower() if k == "name" and isinstance(v, str) else v) for k, v in optimizer.items()}
    else:
        raise InputError(f"optimizer={optimizer!r}: expected a name ({', '.join(optim.OPTIMIZERS)}; any case), a dict "
                         "of settings, an optax optimizer such as optax.adam(1e-3), or an optax factory such as optax.adam")
    return optim.build(settings, total_steps=total_steps, per_member=per_member, scalable=scalable, argument="optimizer")


def _digest(*datasets) -> str:
    """SHA-256 of the training (and validation) arrays: a resumed run must see the same data."""
    digest = hashlib.sha256()
    for dataset in datasets:
        if dataset is None:
            continue
        for key, array in sorted(dataset.read(np.arange(len(dataset))).items()):
            array = np.ascontiguousarray(array)
            digest.update(f"{key}{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
    return digest.hexdigest()


def _describe_model(model) -> str:
    """The model's definition as text, for the run's config (a resume with another model is refused).

    A module without a definition (NNX, or a Linen module holding a lambda) is named by its kind and class; a
    resume then still checks every parameter's shape against the checkpoint.
    """
    if not isinstance(model, modules.Model):
        return type(model).__name__  # a Task of one's own
    try:
        return json.dumps(definition.describe(model.module), sort_keys=True)
    except definition.Undescribable:
        return f"{model.kind}:{model.name}"


def fit(
    model,
    x=None,
    y=None,
    *,
    epochs: int = 150,
    batch_size: int = 10,
    optimizer: "str | Mapping | optax.GradientTransformation | Callable" = "adam",
    loss: "str | Callable | None" = None,
    validation_data=None,
    validation_split: float = 0.0,
    scaling: str = "none",
    metrics: Mapping[str, Callable] | None = None,
    callbacks: Sequence = (),
    seed: int = 0,
    shuffle: bool = True,
    drop_remainder: bool = False,
    workdir: str | None = None,
    overwrite: bool = False,
    force: bool = False,
    checkpoint_every_seconds: float = 60.0,
    compile_cache: str = "auto",
    pipeline: str = "auto",
    steps_per_call: int | str = "auto",
    parallel: str = "auto",
    fsdp: int = 1,
    ensemble: int = 1,
    ensemble_learning_rates: Sequence[float] = (),
    ensemble_weight_decays: Sequence[float] = (),
    privacy: Privacy | None = None,
    grad_accum_steps: int = 1,
    ema_decay: float = 0.0,
    precision: str = "float32",
    stop_on_nan: bool = True,
    verbose: bool = True,
) -> tuple[TrainState, History]:
    """Trains a model (or your own Task) on your data, the way Keras's `model.fit` does, with every jaxdl feature.

    Args:
      model: a Flax Linen module whose `__call__(x)` returns logits (or raw
        outputs for regression), such as `jaxdl.MLP(...)` or your own; a Flax
        NNX module (or a function `rngs -> nnx.Module`, so that each seed and
        ensemble member initialises its own weights); a `jaxdl.Task`; or a
        trained state (from `fit` or `jaxdl.load`) to fine-tune: training
        starts from its weights with a fresh optimizer.
      x: the training features, with `y` the labels (`fit(model, x, y)`);
        or, without `y`, a pair `(x, y)`, or an embedded dataset's name
        ("breast_cancer", "digits"), whose scaled train split is used. For a
        Task: a dict of arrays (examples along the first axis) or
        `jaxdl.data.Examples`. When fine-tuning a state that scales its
        inputs, raw features as `predict` takes them.
      y: the labels, one per row of `x`.
      epochs: passes over the training data.
      batch_size: examples per step. When it does not divide the data, the
        last batch of each epoch is padded and the padding masked out (see
        `drop_remainder`).
      optimizer: a name ("adam", "adamw", "rmsprop", "sgd"; any case), a
        mapping of settings such as `{"name": "sgd", "learning_rate": 0.1}`
        (see `jaxdl.optim.DEFAULTS`), an optax optimizer such as
        `optax.adam(1e-3)`, or an optax factory such as `optax.adam` (called
        with the learning rate 1e-3).
      loss: "binary_crossentropy" (1 logit), "categorical_crossentropy"
        (integer labels, one logit per class), "mean_squared_error", or any
        function `(outputs, labels) -> one loss per example`, such as
        `optax.softmax_cross_entropy_with_integer_labels`. The loss states
        the head: the model returns logits. None: "binary_crossentropy".
        A Task has its own loss: passing one is an error.
      validation_data: evaluated after every epoch: `(x, y)` (a Task: as
        `x`); with a dataset name as `x`, also "test" for that dataset's
        test split.
      validation_split: hold out this fraction of the training examples (the
        last ones, before shuffling, as Keras does) as validation data.
      scaling: "standard" (each feature to mean 0, variance 1) or "minmax"
        (to [0, 1]), fitted on the training rows and kept in the state, so
        that `predict` and `evaluate` take raw rows too; "none" (the
        default): the arrays are the model's inputs as given.
      metrics: more figures: name -> `(outputs, labels) -> one value per
        example`, reported as means over the real rows.
      callbacks: `jaxdl.callbacks` objects (EarlyStopping,
        ReduceLROnPlateau, Hook, or your own `Callback`), or functions
        `fn(state, step, figures)`, called after every evaluation (after
        every epoch without validation data). A callback that watches an
        `eval_` figure without validation data is an error.
      seed: fixes the initial weights, dropout and the order of examples.
      shuffle: shuffle the examples every epoch.
      drop_remainder: drop the last partial batch of each epoch instead.
      workdir: a directory for the run, the same as `jaxdl train`'s: its
        config, manifest, metrics, TensorBoard events, plots, checkpoints
        and summary. Calling `fit` again with the same workdir resumes from
        its newest checkpoint (after an interruption: SIGTERM saves one) and
        ends with the same weights as an uninterrupted run; a finished run
        is not trained again. None: nothing is written.
      overwrite: start over in a workdir that holds another run.
      force: resume although a setting that changes the result differs.
      checkpoint_every_seconds: with a workdir, save a checkpoint when this
        long has passed since the last (and at the end of every epoch where
        it is due, and at the end).
      compile_cache: where compiled programs are kept so that a rerun of
        the same shapes, in this process or another, skips compiling: "auto"
        (~/.cache/jaxdl/jax), a directory, or "off".
      pipeline: "device" keeps the data on the device and gathers batches
        there, "host" feeds batches through the grain pipeline, "auto" picks
        "device" for data under 256 MiB. Both train on the same batches.
      steps_per_call: train steps fused into one compiled call with
        `lax.scan`: an integer, "epoch", or "auto" (a whole epoch on the
        device path, one step on the host path).
      parallel: "auto" (a mesh over all devices when there are several and
        the batch, or the ensemble, divides over them; else one device),
        "single", "pmap" or "mesh". See `jaxdl.parallel.strategy`.
      fsdp: under "mesh", devices along the axis that shards the parameters.
      ensemble: train this many models at once (vmap); member k is the
        model `seed + k` would give.
      ensemble_learning_rates: one learning rate per member.
      ensemble_weight_decays: one weight decay per member (needs "adamw").
      privacy: DP-SGD settings, `jaxdl.Privacy(clip_norm, noise_multiplier)`.
      grad_accum_steps: split each batch into this many micro-batches and
        apply their summed gradient once.
      ema_decay: > 0: keep an exponential moving average of the parameters,
        used by evaluation and prediction.
      precision: "float32", or "bfloat16" (compute in bfloat16; parameters
        and updates stay float32).
      stop_on_nan: raise `jaxdl.loop.NonFiniteLoss`, naming the step, when
        the loss becomes nan or inf.
      verbose: show per-epoch progress.

    Returns:
      `(state, history)`: the trained state and the per-epoch figures
      (`jaxdl.History`; `history.history` as in Keras). For an ensemble,
      every leaf of the state has a leading member axis
      (`jaxdl.ensemble.member(state, k)` takes one out) and each history
      figure is the members' mean, with `<name>_members` holding every value.

    Raises:
      InputError: for bad arguments or data, before anything compiles or is
        written; the message names the argument as you passed it.
    """
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("ensemble", ensemble, 1),
                             ("seed", seed, 0), ("grad_accum_steps", grad_accum_steps, 1), ("fsdp", fsdp, 1)):
        config_lib.check_int(value, name, low)
    for name, value in (("shuffle", shuffle), ("drop_remainder", drop_remainder), ("overwrite", overwrite),
                        ("force", force), ("stop_on_nan", stop_on_nan), ("verbose", verbose)):
        if not isinstance(value, bool):
            raise InputError(f"{name}={value!r}: expected True or False")
    if privacy is not None and not isinstance(privacy, Privacy):
        raise InputError(f"privacy={privacy!r}: expected jaxdl.Privacy(clip_norm=..., noise_multiplier=...)")
    if precision not in PRECISIONS:
        raise InputError(f"precision={precision!r}: expected one of: {', '.join(PRECISIONS)}")
    if isinstance(ema_decay, bool) or not isinstance(ema_decay, (int, float)) or not 0 <= ema_decay < 1:
        raise InputError(f"ema_decay={ema_decay!r}: expected a number in [0, 1)")
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
        raise InputError(f"validation_split={validation_split!r}: expected a fraction in [0, 1)")
    if scaling not in data.SCALINGS:
        raise InputError(f"scaling={scaling!r}: expected one of: {', '.join(data.SCALINGS)}")
    if validation_split and validation_data is not None:
        raise InputError(f"validation_split={validation_split!r} and validation_data are both given; pass one of them")
    if batch_size % grad_accum_steps:
        raise InputError(f"grad_accum_steps={grad_accum_steps!r}: expected a positive integer that divides "
                         f"batch_size={batch_size}")
    if isinstance(steps_per_call, bool) or not (steps_per_call in ("auto", "epoch") or (
            isinstance(steps_per_call, int) and steps_per_call >= 1)):
        raise InputError(f"steps_per_call={steps_per_call!r}: expected a positive integer, 'epoch' or 'auto'")
    if workdir is not None and not isinstance(workdir, str) and not hasattr(workdir, "__fspath__"):
        raise InputError(f"workdir={workdir!r}: expected a directory path or None")
    if not isinstance(compile_cache, str) or not compile_cache:
        raise InputError(f"compile_cache={compile_cache!r}: expected 'auto', 'off' or a directory")
    workdir = None if workdir is None else str(workdir)
    callbacks = [c if isinstance(c, Callback) else _hook(c) for c in callbacks]

    start_from = None
    if isinstance(model, TrainState):  # fine-tuning a trained (or loaded) state
        saving._check_state(model, "model")
        start_from, model = model, model.model.module
        members = ensemble_lib.size(start_from)
        if members and ensemble not in (1, members):
            raise InputError(f"ensemble={ensemble} to fine-tune an ensemble of {members}; expected {members} (or leave it)")
        ensemble = members or ensemble

    cfg = config_lib.base_config("supervised")
    cfg.seed, cfg.parallel, cfg.mesh.fsdp, cfg.compile_cache = seed, parallel, fsdp, compile_cache
    cfg.train.epochs, cfg.train.batch_size, cfg.train.shuffle = epochs, batch_size, shuffle
    cfg.train.drop_remainder, cfg.train.stop_on_nan = drop_remainder, stop_on_nan
    cfg.train.steps_per_call = str(steps_per_call)  # the config's key holds text, as on the command line
    cfg.data.pipeline, cfg.data.name, cfg.ensemble.size = pipeline, "arrays", ensemble
    cfg.ensemble.learning_rate, cfg.ensemble.weight_decay = tuple(ensemble_learning_rates), tuple(ensemble_weight_decays)
    cfg.checkpoint.enabled = workdir is not None
    cfg.checkpoint.every_seconds = checkpoint_every_seconds
    if isinstance(optimizer, str):
        cfg.optimizer.name = optimizer.lower()
    elif isinstance(optimizer, Mapping):
        for key, value in optimizer.items():
            if key not in cfg.optimizer:
                raise InputError(f"optimizer={{{key!r}: ...}}: {key!r} is not a setting; expected some of: "
                                 f"{', '.join(optim.DEFAULTS)}")
            cfg.optimizer[key] = value.lower() if key == "name" and isinstance(value, str) else value
    else:
        cfg.optimizer.name = "custom"  # an optax object: nothing of it goes in the config

    train_data = _training_data(x, y)
    if isinstance(model, Task):
        # These shape the supervised Task that fit builds; a Task of one's own has its own: refused, never ignored.
        given = {"loss": loss is not None, "metrics": bool(metrics), "privacy": privacy is not None,
                 "grad_accum_steps": grad_accum_steps != 1, "ema_decay": ema_decay != 0, "precision": precision != "float32",
                 "scaling": scaling != "none"}
        if any(given.values()):
            raise InputError(f"{', '.join(k for k, v in given.items() if v)}: set for a Task of your own "
                             f"({type(model).__name__}), which has its own step; they apply to models, not Tasks")
        cfg.task = getattr(model, "name", "task")
        train_set = _examples(train_data, argument="x")
        val_set = _examples(validation_data, argument="validation_data")
        if validation_split:
            train_set, val_set = _cut(train_set, validation_split)
        info = data.DatasetInfo(name="arrays", num_examples=len(train_set), feature_shape=(), num_classes=None,
                                class_names=(), description="")
        built = tasks.Built(task=model, splits=data.Splits(train=train_set, test=None, validation=val_set, info=info),
                            description=model.describe(), select="loss")
    else:
        built = _supervised(model, train_data, validation_data, validation_split=validation_split, scaling=scaling, loss=loss,
                            metrics=metrics, optimizer=optimizer, cfg=cfg, privacy=privacy,
                            grad_accum_steps=grad_accum_steps, ema_decay=ema_decay, precision=precision,
                            callbacks=callbacks, start_from=start_from)
    config_lib.check(cfg, names=ARGUMENTS)
    setup = run.finish_setup(cfg, built, names=ARGUMENTS)
    initial = None
    if start_from is not None:
        initial = _fine_tuned(setup, start_from, seed=seed)
    if workdir is None:
        state, history, _ = run.execute(cfg, setup, None, quiet=not verbose, callbacks=callbacks, initial=initial)
        return state, history
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise InputError(f"workdir={workdir!r} is a file; expected a directory")
    _record(cfg, built, model, loss=loss, metrics=metrics, privacy=privacy, grad_accum_steps=grad_accum_steps,
            ema_decay=ema_decay, precision=precision, validation_split=validation_split, scaling=scaling,
            start_from=start_from)
    with run.holding(workdir, python=True):
        resume = workdir_lib.inspect(workdir, cfg.to_dict(), overwrite=overwrite, python=True)
        accepted = workdir_lib.check_resumable(workdir, cfg.to_dict(), force=force, python=True) if resume else []
        state, history, _ = run.execute(cfg, setup, workdir, resume=resume, accepted_changes=accepted,
                                        quiet=not verbose, callbacks=callbacks, initial=initial, command=["jaxdl.fit"])
    return state, history


def _record(cfg, built, model, *, loss, metrics, privacy, grad_accum_steps, ema_decay, precision, validation_split,
            scaling, start_from) -> None:
    """Writes what fit was given into the run's config, so that a resume with other data or another model is refused."""
    task = built.task
    cfg.fit = ml_collections.ConfigDict()
    cfg.fit.model = _describe_model(getattr(task, "model", model))
    cfg.fit.loss = getattr(getattr(task, "loss", None), "name", "")
    cfg.fit.metrics = ",".join(sorted(metrics or {}))
    cfg.fit.privacy = "" if privacy is None else f"clip_norm={privacy.clip_norm}, noise_multiplier={privacy.noise_multiplier}"
    cfg.fit.grad_accum_steps, cfg.fit.ema_decay, cfg.fit.precision = grad_accum_steps, float(ema_decay), precision
    cfg.fit.validation_split, cfg.fit.scaling = float(validation_split), scaling
    cfg.fit.data_sha256 = _digest(built.splits.train, built.splits.validation, built.splits.test)
    cfg.fit.initial_params_sha256 = "" if start_from is None else params_sha256(start_from.params)


def _fine_tuned(setup: run.Setup, start: TrainState, *, seed: int) -> TrainState:
    """The task's initial state with the weights of `start` (a fresh optimizer state for them)."""
    fresh = run.initial_state(setup.task, seed=seed, strategy=parallel_lib.Strategy("single", None, setup.strategy.members),
                              hyperparams=setup.hyperparams)
    fresh = jax.device_get(fresh)
    params = jax.tree.map(np.asarray, jax.device_get(start.params))
    init = jax.jit(jax.vmap(fresh.tx.init) if setup.strategy.members else fresh.tx.init)  # one program, not op by op
    ema = None
    if fresh.ema_params is not None:
        ema = jax.device_get(start.ema_params) if start.ema_params is not None else params
    tuned = fresh.replace(params=params, opt_state=init(params), model_state=jax.device_get(start.model_state), ema_params=ema)
    if setup.hyperparams and setup.strategy.members:
        tuned = ensemble_lib.set_hyperparams(tuned, **setup.hyperparams)
    return tuned


def _hook(fn) -> Callback:
    if not callable(fn):
        raise InputError(f"callbacks: {fn!r} is neither a jaxdl Callback nor a function fn(state, step, figures)")
    return Hook(fn)


def _supervised(model, train_data, validation_data, *, validation_split, scaling, loss, metrics, optimizer, cfg, privacy,
                grad_accum_steps, ema_decay, precision, callbacks, start_from) -> tasks.Built:
    """The supervised Task of `fit`'s arguments, checked against the data with `jax.eval_shape`."""
    if isinstance(model, models.MLP):
        models.check_mlp(model, prefix="MLP")
    wrapped = modules.wrap(model)
    if wrapped.kind == "nnx" and cfg.ensemble.size > 1 and not wrapped.factory:
        raise InputError(
            f"ensemble={cfg.ensemble.size} with an NNX module instance: every member would start from the same weights; "
            "pass a factory instead, e.g. fit(lambda rngs: MyModel(..., rngs=rngs), ...), so that member k "
            "initialises its own weights from seed + k")
    loss_obj = losses.resolve("binary_crossentropy" if loss is None else loss)
    inputs, class_names = None, ()
    if isinstance(validation_data, str) and validation_data == "test":
        if not isinstance(train_data, str):
            raise InputError("validation_data='test' needs a dataset name as x")
        splits = data.load(train_data)  # once, for both splits
        train_set, val_set = splits.train, splits.test
    else:
        splits = data.load(train_data) if isinstance(train_data, str) else None
        train_set = splits.train if splits is not None else _dataset(train_data, argument="x, y", split="train")
        val_set = None if validation_data is None else _dataset(validation_data, argument="validation_data", split="test")
    if splits is not None:  # the dataset's own scaling: predict and evaluate take raw rows
        inputs, class_names = data.Inputs.of(splits.scaler, splits.transform), splits.info.class_names
    if start_from is not None:  # fine-tuning: raw rows, prepared as the state prepares them (as predict does)
        inputs, class_names = start_from.inputs, start_from.class_names
        if inputs is not None and splits is None:
            train_set = data.ArrayDataset(inputs(train_set.x), train_set.y)
            if val_set is not None and not isinstance(validation_data, str):
                val_set = data.ArrayDataset(inputs(val_set.x), val_set.y)
    if validation_split:
        train_set, val_set = _cut(train_set, validation_split)
    if scaling != "none":
        if splits is not None or start_from is not None:
            raise InputError(f"scaling={scaling!r}: {'a dataset name comes scaled' if splits is not None else 'a state to fine-tune keeps the scaling it was trained with'}; "
                             "scaling= is for arrays")
        scaler = data.Scaler.fit(train_set.x, scaling)  # the training rows only, after any validation_split
        train_set = data.ArrayDataset(scaler.transform(train_set.x), train_set.y)
        if val_set is not None:
            val_set = data.ArrayDataset(scaler.transform(val_set.x), val_set.y)
        inputs = data.Inputs.of(scaler, None)
    for argument, dataset in (("x", train_set), ("validation_data", val_set)):
        if dataset is not None:
            models.check_features(model, dataset.x.shape, argument=f"{argument} features")
    if val_set is not None and val_set.x.shape[1:] != train_set.x.shape[1:]:
        raise InputError(
            f"validation_data features have shape {val_set.x.shape[1:]} per example, "
            f"but x has {train_set.x.shape[1:]}"
        )
    if start_from is not None and tuple(train_set.x.shape[1:]) != tuple(start_from.input_shape):
        raise InputError(f"x has shape {train_set.x.shape[1:]} per example, but the state to fine-tune was trained on "
                         f"{tuple(start_from.input_shape)}")
    shard_count = jax.process_count()
    data.check_batch_size(cfg.train.batch_size, len(train_set), argument="batch_size")
    steps = data.steps_per_epoch(len(train_set), cfg.train.batch_size // shard_count, shard_count=shard_count,
                                 drop_remainder=cfg.train.drop_remainder)
    per_member = bool(cfg.ensemble.learning_rate or cfg.ensemble.weight_decay)
    scalable = any(isinstance(c, ReduceLROnPlateau) for c in callbacks)
    tx = _optimizer(optimizer, total_steps=steps * cfg.train.epochs, per_member=per_member, scalable=scalable)
    task = Supervised(
        wrapped, loss_obj, tx, input_shape=train_set.x.shape[1:], extra_metrics=metrics, privacy=privacy,
        accumulate=grad_accum_steps, compute_dtype=PRECISIONS[precision], ema_decay=ema_decay, inputs=inputs,
        class_names=class_names,
    )
    task.check(train_set.x.shape, train_set.y, argument="y" if not isinstance(train_data, str) else train_data)
    if val_set is not None:
        task.check(val_set.x.shape, val_set.y, argument="validation_data")
    kind = loss_obj.kind
    info = data.DatasetInfo(name=train_data if isinstance(train_data, str) else "arrays", num_examples=len(train_set),
                            feature_shape=tuple(train_set.x.shape[1:]), num_classes=None, class_names=class_names,
                            description="")
    return tasks.Built(task=task, splits=data.Splits(train=train_set, test=None, validation=val_set, info=info),
                       description=task.describe(), select="accuracy" if kind in ("binary", "multiclass") else "loss")


def _check_inputs(state: TrainState, x: np.ndarray, *, argument: str) -> None:
    if tuple(x.shape[1:]) != tuple(state.input_shape):
        raise InputError(
            f"{argument} have shape {tuple(x.shape[1:])} per example, but the model was trained on "
            f"{tuple(state.input_shape)}"
        )


def _task_of(state: TrainState, loss) -> Supervised:
    """The supervised task a trained state evaluates and predicts with (its model and head, a loss)."""
    saving._check_state(state)
    loss_obj = losses.for_head(state.head) if loss is None else losses.resolve(loss)
    return Supervised(state.model, loss_obj, state.tx, input_shape=state.input_shape)


def _prepared(state: TrainState, x: np.ndarray, scaled: bool) -> np.ndarray:
    """Raw features as the model takes them: scaled with the state's saved scaling, unless `scaled` says they are."""
    if not isinstance(scaled, bool):
        raise InputError(f"scaled={scaled!r}: expected True (x is already scaled as the model takes it) or False (raw)")
    return x if scaled or state.inputs is None else state.inputs(x)


def evaluate(state: TrainState, x, y=None, *, loss=None, batch_size: int = 1024, scaled: bool = False) -> dict[str, float]:
    """Loss and metrics of a trained state on raw `x, y` (or an `(x, y)` pair, or a dataset name's test split).

    Args:
      state: a trained state, as `fit` or `jaxdl.load` returns.
      x: the features, as raw as the training data was before scaling (the
        state's saved scaling is applied); with `y`. Or, without `y`, a pair
        `(x, y)`, or an embedded dataset's name (its test split, scaled by
        its own training split).
      y: the labels.
      loss: the loss to report; by default the one the training loss's head
        implies (sigmoid: binary cross-entropy, softmax: categorical).
      batch_size: examples per evaluation call.
      scaled: True when `x` is already scaled as the model takes it.

    Returns:
      loss and accuracy; for binary tasks also precision, recall and auc.
    """
    task = _task_of(state, loss)
    value = _training_data(x, y)
    dataset = _dataset(value, argument="x, y" if y is not None else "x", split="test")
    if isinstance(value, str):
        scaled = True  # a dataset name's split comes scaled
    _check_inputs(state, dataset.x, argument="x features")
    dataset = data.ArrayDataset(_prepared(state, dataset.x, scaled), dataset.y)
    task.check(dataset.x.shape, dataset.y, argument="y")
    return Evaluator(task, batch_size=batch_size)(state, dataset)


def predict(state: TrainState, x, *, batch_size: int = 1024, scaled: bool = False) -> np.ndarray:
    """The model's outputs through its loss's head: sigmoid or softmax probabilities for classifiers.

    Args:
      state: a trained state, as `fit` or `jaxdl.load` returns.
      x: raw features, (N, ...), as the training data was before scaling:
        the state applies the scaling it was trained with (a dataset's
        fitted scaler, or images' pixel scaling).
      batch_size: examples per call.
      scaled: True when `x` is already scaled as the model takes it.

    Returns:
      (N, outputs); for an ensemble, (members, N, outputs).
    """
    task = _task_of(state, None)
    x = np.asarray(x)
    x = data.from_arrays(x, np.zeros(len(x)), argument="x").x
    _check_inputs(state, x, argument="x")
    return predict_batches(state, _prepared(state, x, scaled), predict_step=task.predict_step, batch_size=batch_size)
