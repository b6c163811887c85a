"""The Keras-like entry points for Python users: `fit`, `evaluate`, `predict`.

    import jaxdl
    model = jaxdl.MLP(hidden=(12, 8), num_outputs=1, output_activation="sigmoid")  # or any Linen / NNX module
    state, history = jaxdl.fit(model, (x_train, y_train), epochs=150, batch_size=10,
                               validation_data=(x_test, y_test))
    jaxdl.evaluate(state, (x_test, y_test))   # {"loss": ..., "accuracy": ..., ...}
    jaxdl.predict(state, x_new)               # sigmoid outputs in (0, 1)
"""

import json
import os
from collections.abc import Callable, Mapping, Sequence

import jax
import numpy as np
import optax

from jaxdl import config as config_lib, data, losses, models, modules, optim, run, tasks
from jaxdl.callbacks import Callback, Hook, ReduceLROnPlateau
from jaxdl.errors import InputError
from jaxdl.loop import Evaluator, History, predict as predict_batches
from jaxdl.privacy import Privacy
from jaxdl.state import TrainState
from jaxdl.task import Task
from jaxdl.tasks.supervised import PRECISIONS, Supervised


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


def _optimizer(optimizer, *, total_steps: int, per_member: bool, scalable: bool) -> optax.GradientTransformation:
    """The optax optimizer that `fit`'s `optimizer=` names."""
    if isinstance(optimizer, optax.GradientTransformation):
        if per_member or scalable:
            raise InputError("per-member learning rates and ReduceLROnPlateau need optimizer= as a name or settings "
                             "(jaxdl keeps the rate's scale in the optimizer's state), not an optax object")
        return optimizer
    if isinstance(optimizer, str):
        settings = {"name": optimizer.lower()}
    elif isinstance(optimizer, Mapping):
        settings = dict(optimizer)
    else:
        raise InputError(f"optimizer={optimizer!r}: expected a name ({', '.join(optim.OPTIMIZERS)}), a dict of settings, "
                         "or an optax GradientTransformation such as optax.adam(1e-3)")
    try:
        return optim.build(settings, total_steps=total_steps, per_member=per_member, scalable=scalable)
    except InputError as err:
        raise InputError(str(err).replace("optimizer.name=", "optimizer=").replace("optimizer.", "optimizer ")) from None


def fit(
    model,
    train_data,
    epochs: int = 150,
    batch_size: int = 10,
    optimizer: "str | Mapping | optax.GradientTransformation" = "adam",
    loss: "str | Callable | None" = None,
    validation_data=None,
    *,
    metrics: Mapping[str, Callable] | None = None,
    seed: int = 0,
    shuffle: bool = True,
    drop_remainder: bool = False,
    pipeline: str = "auto",
    steps_per_call: int | str = "auto",
    parallel: str = "auto",
    fsdp: int = 1,
    ensemble: int = 1,
    ensemble_learning_rates: Sequence[float] = (),
    ensemble_weight_decays: Sequence[float] = (),
    privacy: Privacy | None = None,
    callbacks: Sequence = (),
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
        ensemble member initialises its own weights); or a `jaxdl.Task`.
      train_data: a pair of arrays `(X, y)`, or an embedded dataset's name
        ("breast_cancer", "digits"), whose scaled train split is used. For a
        Task: a dict of arrays (examples along the first axis) or
        `jaxdl.data.Examples`.
      epochs: passes over the training data.
      batch_size: examples per step. When it does not divide the data, the
        last batch of each epoch is padded and the padding masked out (see
        `drop_remainder`).
      optimizer: a name ("adam", "adamw", "rmsprop", "sgd"; any case), a
        mapping of settings such as `{"name": "sgd", "learning_rate": 0.1}`
        (see `jaxdl.optim.DEFAULTS`), or an optax optimizer.
      loss: "binary_crossentropy" (1 logit), "categorical_crossentropy"
        (integer labels, one logit per class), "mean_squared_error", or any
        function `(outputs, labels) -> one loss per example`, such as
        `optax.softmax_cross_entropy_with_integer_labels`. The loss states
        the head: the model returns logits. None: "binary_crossentropy".
        A Task has its own loss: passing one is an error.
      validation_data: evaluated after every epoch: `(X, y)` (a Task: as
        `train_data`); with a dataset name as `train_data`, also "test" for
        that dataset's test split.
      metrics: more figures: name -> `(outputs, labels) -> one value per
        example`, reported as means over the real rows.
      seed: fixes the initial weights, dropout and the order of examples.
      shuffle: shuffle the examples every epoch.
      drop_remainder: drop the last partial batch of each epoch instead.
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
      ensemble_learning_rates, ensemble_weight_decays: one value per member
        (weight decays need "adamw").
      privacy: DP-SGD settings, `jaxdl.Privacy(clip_norm, noise_multiplier)`.
      callbacks: `jaxdl.callbacks` objects (EarlyStopping,
        ReduceLROnPlateau, Hook, or your own `Callback`), or functions
        `fn(state, step, figures)`, called after every evaluation.
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
      `(state, history)`: the trained state and the per-epoch metrics.
      For an ensemble, every leaf of the state has a leading member axis
      (`jaxdl.ensemble.member(state, k)` takes one out) and each history
      figure is the members' mean, with `<name>_members` holding every value.

    Raises:
      InputError: for bad arguments or data, before anything compiles.
    """
    for name, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("ensemble", ensemble, 1),
                             ("seed", seed, 0), ("grad_accum_steps", grad_accum_steps, 1), ("fsdp", fsdp, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InputError(f"{name}={value!r}: expected an integer >= {low}")
    if privacy is not None and not isinstance(privacy, Privacy):
        raise InputError(f"privacy={privacy!r}: expected jaxdl.Privacy(clip_norm=..., noise_multiplier=...)")
    if precision not in PRECISIONS:
        raise InputError(f"precision={precision!r}: expected one of: {', '.join(PRECISIONS)}")
    if isinstance(ema_decay, bool) or not isinstance(ema_decay, (int, float)) or not 0 <= ema_decay < 1:
        raise InputError(f"ema_decay={ema_decay!r}: expected a number in [0, 1)")
    if batch_size % grad_accum_steps:
        raise InputError(f"grad_accum_steps={grad_accum_steps!r}: expected a positive integer that divides "
                         f"batch_size={batch_size}")
    callbacks = [c if isinstance(c, Callback) else _hook(c) for c in callbacks]

    cfg = config_lib.base_config("supervised")
    cfg.seed, cfg.parallel, cfg.mesh.fsdp = seed, parallel, fsdp
    cfg.train.epochs, cfg.train.batch_size, cfg.train.shuffle = epochs, batch_size, shuffle
    if isinstance(steps_per_call, bool) or not (steps_per_call in ("auto", "epoch") or (
            isinstance(steps_per_call, int) and steps_per_call >= 1)):
        raise InputError(f"steps_per_call={steps_per_call!r}: expected a positive integer, 'epoch' or 'auto'")
    cfg.train.drop_remainder, cfg.train.stop_on_nan = drop_remainder, stop_on_nan
    cfg.train.steps_per_call = str(steps_per_call)  # the config's key holds text, as on the command line
    cfg.data.pipeline, cfg.ensemble.size = pipeline, ensemble
    cfg.ensemble.learning_rate, cfg.ensemble.weight_decay = tuple(ensemble_learning_rates), tuple(ensemble_weight_decays)
    cfg.checkpoint.enabled = False
    if isinstance(optimizer, str):
        cfg.optimizer.name = optimizer.lower()
    elif isinstance(optimizer, Mapping):
        for key, value in optimizer.items():
            if key not in cfg.optimizer:
                raise InputError(f"optimizer setting {key!r} is not known; expected some of: {', '.join(optim.DEFAULTS)}")
            cfg.optimizer[key] = value
    else:
        cfg.optimizer.name = "custom"  # an optax object: nothing of it goes in the config

    if isinstance(model, Task):
        # These shape the supervised Task that fit builds; a Task of one's own has its own: refused, never ignored.
        given = {"loss": loss is not None, "metrics": bool(metrics), "privacy": privacy is not None,
                 "grad_accum_steps": grad_accum_steps != 1, "ema_decay": ema_decay != 0, "precision": precision != "float32"}
        if any(given.values()):
            raise InputError(f"{', '.join(k for k, v in given.items() if v)}: set for a Task of your own "
                             f"({type(model).__name__}), which has its own step; they apply to models, not Tasks")
        cfg.task = getattr(model, "name", "task")
        train_set = _examples(train_data, argument="train_data")
        val_set = _examples(validation_data, argument="validation_data")
        if train_set is None:
            raise InputError("train_data=None: expected the training examples")
        info = data.DatasetInfo(name="train_data", num_examples=len(train_set), feature_shape=(), num_classes=None,
                                class_names=(), description="")
        built = tasks.Built(task=model, splits=data.Splits(train=train_set, test=val_set, info=info),
                            description=model.describe(), select="loss")
    else:
        built = _supervised(model, train_data, validation_data, loss=loss, metrics=metrics, optimizer=optimizer,
                            cfg=cfg, privacy=privacy, grad_accum_steps=grad_accum_steps, ema_decay=ema_decay,
                            precision=precision, callbacks=callbacks)
    config_lib.check(cfg)
    setup = run.finish_setup(cfg, built, batch_argument="batch_size")
    state, history, _ = run.execute(cfg, setup, None, quiet=not verbose, callbacks=callbacks)
    return state, history


def _hook(fn) -> Callback:
    if not callable(fn):
        raise InputError(f"callbacks: {fn!r} is neither a jaxdl Callback nor a function fn(state, step, figures)")
    return Hook(fn)


def _supervised(model, train_data, validation_data, *, loss, metrics, optimizer, cfg, privacy, grad_accum_steps,
                ema_decay, precision, callbacks) -> tasks.Built:
    """The supervised Task of `fit`'s arguments, checked against the data with `jax.eval_shape`."""
    wrapped = modules.wrap(model)
    if isinstance(model, models.MLP):
        models.check_mlp(model)
    if wrapped.kind == "nnx" and cfg.ensemble.size > 1 and not wrapped.factory:
        raise InputError(
            f"ensemble={cfg.ensemble.size} with an NNX module instance: every member would start from the same weights; "
            "pass a factory instead, e.g. fit(lambda rngs: MyModel(..., rngs=rngs), ...), so that member k "
            "initialises its own weights from seed + k")
    loss_obj = losses.resolve("binary_crossentropy" if loss is None else loss)
    if isinstance(validation_data, str) and validation_data == "test":
        if not isinstance(train_data, str):
            raise InputError("validation_data='test' needs a dataset name as train_data")
        splits = data.load(train_data)  # once, for both splits
        train_set, val_set = splits.train, splits.test
    else:
        train_set = _dataset(train_data, argument="train_data", split="train")
        val_set = None if validation_data is None else _dataset(validation_data, argument="validation_data", split="test")
    for argument, dataset in (("train_data", train_set), ("validation_data", val_set)):
        if dataset is not None:
            models.check_features(model, dataset.x.shape, argument=f"{argument} features")
    if val_set is not None and val_set.x.shape[1:] != train_set.x.shape[1:]:
        raise InputError(
            f"validation_data features have shape {val_set.x.shape[1:]} per example, "
            f"but train_data has {train_set.x.shape[1:]}"
        )
    shard_count = jax.process_count()
    data.check_batch_size(cfg.train.batch_size, len(train_set), argument="batch_size")
    steps = data.steps_per_epoch(len(train_set), cfg.train.batch_size // shard_count, shard_count=shard_count,
                                 drop_remainder=cfg.train.drop_remainder)
    per_member = bool(cfg.ensemble.learning_rate or cfg.ensemble.weight_decay)
    scalable = any(isinstance(c, ReduceLROnPlateau) for c in callbacks)
    tx = _optimizer(optimizer, total_steps=steps * cfg.train.epochs, per_member=per_member, scalable=scalable)
    task = Supervised(
        wrapped, loss_obj, tx, input_shape=train_set.x.shape[1:], extra_metrics=metrics, privacy=privacy,
        accumulate=grad_accum_steps, compute_dtype=PRECISIONS[precision], ema_decay=ema_decay,
    )
    task.check(train_set.x.shape, train_set.y, argument="train_data")
    if val_set is not None:
        task.check(val_set.x.shape, val_set.y, argument="validation_data")
    kind = loss_obj.kind
    info = data.DatasetInfo(name="train_data", num_examples=len(train_set), feature_shape=tuple(train_set.x.shape[1:]),
                            num_classes=None, class_names=(), description="")
    return tasks.Built(task=task, splits=data.Splits(train=train_set, test=val_set, info=info),
                       description=task.describe(), select="accuracy" if kind in ("binary", "multiclass") else "loss")


def _check_inputs(state: TrainState, x: np.ndarray, *, argument: str) -> None:
    if tuple(x.shape[1:]) != tuple(state.input_shape):
        raise InputError(
            f"{argument} have shape {tuple(x.shape[1:])} per example, but the model was trained on "
            f"{tuple(state.input_shape)}"
        )


def _task_of(state: TrainState, loss) -> Supervised:
    """The supervised task a trained state evaluates and predicts with (its model and head, a loss)."""
    if not isinstance(state, TrainState) or not isinstance(state.model, modules.Model):
        raise InputError(f"state={type(state).__name__}: expected the TrainState that jaxdl.fit returns for a model")
    if loss is None:
        loss_obj = losses.for_head(state.head)
    else:
        loss_obj = losses.resolve(loss)
    return Supervised(state.model, loss_obj, state.tx, input_shape=state.input_shape)


def evaluate(state: TrainState, data_or_name, *, loss=None, batch_size: int = 1024) -> dict[str, float]:
    """Loss and metrics of a trained state on `(X, y)` or a dataset name's test split.

    Args:
      state: a trained state, as `fit` returns.
      data_or_name: `(X, y)`, or an embedded dataset's name.
      loss: the loss to report; by default the one the training loss's head
        implies (sigmoid: binary cross-entropy, softmax: categorical).
      batch_size: examples per evaluation call.

    Returns:
      loss and accuracy; for binary tasks also precision, recall and auc.
    """
    task = _task_of(state, loss)
    dataset = _dataset(data_or_name, argument="data", split="test")
    _check_inputs(state, dataset.x, argument="data features")
    task.check(dataset.x.shape, dataset.y, argument="data")
    return Evaluator(task, batch_size=batch_size)(state, dataset)


def predict(state: TrainState, x, *, batch_size: int = 1024, scaler: "data.Scaler | str | None" = None) -> np.ndarray:
    """The model's outputs through its loss's head: sigmoid or softmax probabilities for classifiers.

    Args:
      state: a trained state.
      x: features, (N, ...).
      batch_size: examples per call.
      scaler: scale raw `x` the way the training features were: a
        `data.Scaler`, or a run's workdir (or its `scaler.json`). None: `x`
        is already scaled.
    """
    task = _task_of(state, None)
    if isinstance(scaler, str):
        path = os.path.join(scaler, "scaler.json") if os.path.isdir(scaler) else scaler
        if not os.path.isfile(path):
            raise InputError(f"scaler={scaler!r}: no scaler.json there; expected a run's workdir or its scaler.json")
        with open(path) as f:
            scaler = data.Scaler.from_dict(json.load(f))
    x = np.asarray(x)
    x = data.from_arrays(x, np.zeros(len(x)), argument="x").x
    _check_inputs(state, x, argument="x")
    if scaler is not None:
        x = scaler.transform(x)
    return predict_batches(state, x, predict_step=task.predict_step, batch_size=batch_size)
