"""The Keras-like entry points for Python users: `fit`, `evaluate`, `predict`.

    import jaxdl
    model = jaxdl.MLP(hidden=(12, 8), num_outputs=1, output_activation="sigmoid")
    state, history = jaxdl.fit(model, (x_train, y_train), epochs=150, batch_size=10,
                               validation_data=(x_test, y_test))
    jaxdl.evaluate(state, (x_test, y_test))   # {"loss": ..., "accuracy": ..., ...}
    jaxdl.predict(state, x_new)               # sigmoid outputs in (0, 1)
"""

import json
import os
from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import data, feed, losses, models, optim, parallel as parallel_lib
from jaxdl.errors import InputError
from jaxdl.loop import Evaluator, History, predict as predict_batches, train
from jaxdl.callbacks import ReduceLROnPlateau
from jaxdl.privacy import Privacy
from jaxdl.run import initial_state, member_hyperparams
from jaxdl.state import TrainState
from jaxdl.writers import Progress


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


def _check_model(model) -> None:
    if not isinstance(model, nn.Module) or not hasattr(model, "output_activation"):
        raise InputError(
            f"model={type(model).__name__}: expected a Flax module with `num_outputs` and "
            "`output_activation`, such as jaxdl.MLP(...)"
        )
    if isinstance(model, models.MLP):
        models.check_mlp(model)


def fit(
    model: nn.Module,
    train_data,
    epochs: int = 150,
    batch_size: int = 10,
    optimizer: str | Mapping | optax.GradientTransformation = "adam",
    loss: str = "binary_crossentropy",
    validation_data=None,
    *,
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
    """Trains `model` on `train_data`, the way Keras's `model.fit` does.

    Args:
      model: a Flax module such as `jaxdl.MLP(...)`.
      train_data: a pair of arrays `(X, y)`, or an embedded dataset's name
        ("breast_cancer", "digits"), whose scaled train split is used.
      epochs: passes over the training data.
      batch_size: examples per step. When it does not divide the data, the
        last batch of each epoch is padded and the padding masked out (see
        `drop_remainder`).
      optimizer: a name ("adam", "adamw", "rmsprop", "sgd"), a mapping of
        settings such as `{"name": "sgd", "learning_rate": 0.1}` (see
        `jaxdl.optim.DEFAULTS`), or an optax optimizer.
      loss: "binary_crossentropy", "categorical_crossentropy" (integer
        labels) or "mean_squared_error".
      validation_data: `(X, y)` evaluated after every epoch; with a dataset
        name as `train_data`, also "test" for that dataset's test split.
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
        ReduceLROnPlateau, Hook, or your own `Callback`).
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
      `(state, history)`: the trained `TrainState` and the per-epoch metrics.
      For an ensemble, every leaf of the state has a leading member axis
      (`jaxdl.ensemble.member(state, k)` takes one out) and each history
      figure is the members' mean, with `<name>_members` holding every value.

    Raises:
      InputError: for bad arguments or data, before anything compiles.
    """
    _check_model(model)
    loss_obj = losses.get(loss)
    losses.check_head(loss_obj, model.num_outputs, model.output_activation)
    if isinstance(validation_data, str) and validation_data == "test":
        if not isinstance(train_data, str):
            raise InputError("validation_data='test' needs a dataset name as train_data")
        splits = data.load(train_data)  # once, for both splits
        train_set, val_set = splits.train, splits.test
    else:
        train_set = _dataset(train_data, argument="train_data", split="train")
        val_set = None if validation_data is None else _dataset(validation_data, argument="validation_data", split="test")
    for name, dataset in (("train_data", train_set), ("validation_data", val_set)):
        if dataset is not None:
            models.check_features(model, dataset.x.shape, argument=f"{name} features")
            losses.check_labels(loss_obj, dataset.y, model.num_outputs, argument=f"{name} labels")
    if val_set is not None and val_set.x.shape[1:] != train_set.x.shape[1:]:
        raise InputError(
            f"validation_data features have shape {val_set.x.shape[1:]} per example, "
            f"but train_data has {train_set.x.shape[1:]}"
        )
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"epochs={epochs!r}: expected an integer >= 1")
    data.check_batch_size(batch_size, len(train_set), argument="batch_size")
    # Under jax.distributed, each process trains on its share of every global batch.
    shard_index, shard_count = parallel_lib.process_shard()
    local_batch = feed.local_batch_size(batch_size, shard_count, argument="batch_size")
    steps = data.steps_per_epoch(len(train_set), local_batch, shard_count=shard_count, drop_remainder=drop_remainder)
    if isinstance(ensemble, bool) or not isinstance(ensemble, int) or ensemble < 1:
        raise InputError(f"ensemble={ensemble!r}: expected an integer >= 1")
    if privacy is not None and not isinstance(privacy, Privacy):
        raise InputError(f"privacy={privacy!r}: expected jaxdl.Privacy(clip_norm=..., noise_multiplier=...)")
    settings = {"name": optimizer} if isinstance(optimizer, str) else None
    if not isinstance(optimizer, (str, optax.GradientTransformation)):
        settings = dict(optimizer)
    hyperparams = {}
    if ensemble_learning_rates or ensemble_weight_decays:
        if settings is None:
            raise InputError("per-member learning rates or weight decays need the optimizer as a name or settings, not an optax object")
        hyperparams = member_hyperparams(
            {**optim.DEFAULTS, **settings}, ensemble, learning_rate=ensemble_learning_rates,
            weight_decay=ensemble_weight_decays, argument="fit: ensemble",
        )
    scalable = any(isinstance(c, ReduceLROnPlateau) for c in callbacks)
    if scalable and settings is None:
        raise InputError("ReduceLROnPlateau needs the optimizer as a name or settings, not an optax object")
    tx = optimizer if settings is None else optim.build(
        settings, total_steps=steps * epochs, per_member=bool(hyperparams), scalable=scalable
    )
    precisions = {"float32": None, "bfloat16": jnp.bfloat16}
    if precision not in precisions:
        raise InputError(f"precision={precision!r}: expected one of: {', '.join(precisions)}")
    if isinstance(grad_accum_steps, bool) or not isinstance(grad_accum_steps, int) or grad_accum_steps < 1 or batch_size % grad_accum_steps:
        raise InputError(f"grad_accum_steps={grad_accum_steps!r}: expected a positive integer that divides batch_size={batch_size}")
    if not 0 <= ema_decay < 1:
        raise InputError(f"ema_decay={ema_decay!r}: expected a number in [0, 1)")
    strategy, _ = parallel_lib.choose(parallel, batch_size=batch_size, members=ensemble, fsdp=fsdp, batch_argument="batch_size")

    initial = initial_state(
        model, tx, seed=seed, input_shape=train_set.x.shape[1:], strategy=strategy, hyperparams=hyperparams,
        ema_decay=ema_decay,
    )
    train_feed = feed.make(
        train_set, loss_obj, batch_size=batch_size, seed=seed, shuffle=shuffle, drop_remainder=drop_remainder,
        pipeline=pipeline, epochs=epochs, steps_per_call=steps_per_call, model=model, strategy=strategy,
        privacy=privacy, shard_index=shard_index, shard_count=shard_count,
        step_options={"accumulate": grad_accum_steps, "compute_dtype": precisions[precision]},
    )
    return train(
        initial,
        train_feed,
        loss=loss_obj,
        epochs=epochs,
        eval_data=val_set,
        progress=Progress(epochs, quiet=not verbose),
        callbacks=callbacks,
        stop_on_nan=stop_on_nan,
    )


def _check_inputs(state: TrainState, x: np.ndarray, *, argument: str) -> None:
    if tuple(x.shape[1:]) != tuple(state.input_shape):
        raise InputError(
            f"{argument} have shape {tuple(x.shape[1:])} per example, but the model was trained on "
            f"{tuple(state.input_shape)}"
        )


def evaluate(state: TrainState, data_or_name, *, loss: str | None = None, batch_size: int = 1024) -> dict[str, float]:
    """Loss and metrics of a trained state on `(X, y)` or a dataset name's test split.

    Args:
      state: a trained state, as `fit` returns.
      data_or_name: `(X, y)`, or an embedded dataset's name.
      loss: the loss to report; by default the one the model's output layer
        implies (sigmoid: binary cross-entropy, softmax: categorical).
      batch_size: examples per evaluation call.

    Returns:
      loss and accuracy; for binary tasks also precision, recall and auc.
    """
    loss_obj = losses.for_head(state.model.output_activation) if loss is None else losses.get(loss)
    dataset = _dataset(data_or_name, argument="data", split="test")
    _check_inputs(state, dataset.x, argument="data features")
    losses.check_labels(loss_obj, dataset.y, state.model.num_outputs, argument="data labels")
    return Evaluator(loss_obj, batch_size=batch_size)(state, dataset)


def predict(state: TrainState, x, *, batch_size: int = 1024, scaler: "data.Scaler | str | None" = None) -> np.ndarray:
    """The model's outputs for features `x`: sigmoid or softmax probabilities for classifiers.

    Args:
      state: a trained state.
      x: features, (N, ...).
      batch_size: examples per call.
      scaler: scale raw `x` the way the training features were: a
        `data.Scaler`, or a run's workdir (or its `scaler.json`). None: `x`
        is already scaled.
    """
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
    return predict_batches(state, x, batch_size=batch_size)
