"""Supervised learning as a Task: a model, a loss on its outputs and the labels, and metrics.

The model is any Flax module (`jaxdl.modules`): it returns the output
layer's pre-activation values (logits), and the loss states the head. The
batch is `x` (B, ...), `y` (B, ...) and `mask` (B,). Steps are pure: no jit,
pmap or device code; under pmap the sums over the batch go through
`parallel.psum`, which sums over the devices there and is the identity
elsewhere.
"""

from collections.abc import Callable, Mapping

import jax
import ml_collections
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import activations, losses, metrics, modules, parallel, privacy as privacy_lib
from jaxdl.errors import InputError
from jaxdl.state import TrainState
from jaxdl.task import Task

Batch = dict[str, jax.Array]


class Supervised(Task):
    """Classification or regression: minimise `loss(model(x), y)` over the real rows of each batch.

    Args:
      model: a `modules.Model` (see `modules.wrap`).
      loss: a `losses.Loss` (see `losses.resolve`: a name, a `Loss`, or a
        callable `(outputs, labels) -> per-example loss`).
      tx: the optax optimizer.
      input_shape: one example's shape.
      input_dtype: the inputs' dtype (float32 features, int32 token ids, ...).
      extra_metrics: name -> `(outputs, labels) -> per-example values`,
        reported as their means over the real rows.
      privacy: DP-SGD: clip each example's gradient and add noise.
      accumulate: split each batch into this many micro-batches and apply
        their summed gradient once.
      compute_dtype: e.g. jnp.bfloat16: run the model in this precision;
        parameters, gradients and updates stay float32.
      ema_decay: > 0: keep an exponential moving average of the parameters
        for evaluation and prediction.
      inputs: how raw features become the model's inputs
        (`data.transforms.Inputs`), kept in the state for `predict`.
      class_names: the classes' names, kept in the state.
    """

    name = "supervised"

    def __init__(
        self,
        model: modules.Model,
        loss: losses.Loss,
        tx: optax.GradientTransformation,
        *,
        input_shape: tuple[int, ...],
        input_dtype=jnp.float32,
        extra_metrics: Mapping[str, Callable] | None = None,
        privacy: privacy_lib.Privacy | None = None,
        accumulate: int = 1,
        compute_dtype=None,
        ema_decay: float = 0.0,
        inputs=None,
        class_names: tuple[str, ...] = (),
        description: str = "",
    ):
        self.model, self.loss, self.tx = model, loss, tx
        self.input_shape, self.input_dtype = tuple(input_shape), input_dtype
        self.extra_metrics = dict(extra_metrics or {})
        self.privacy, self.accumulate, self.compute_dtype = privacy, accumulate, compute_dtype
        self.ema_decay = float(ema_decay)
        self.inputs, self.class_names = inputs, tuple(class_names)
        self._outputs = {}  # abstract outputs by abstract input, for `check`
        self.head = activations.get(loss.head or "identity")
        self._description = description

    # -- the protocol -----------------------------------------------------

    def init(self, rng: jax.Array) -> TrainState:
        """The initial state: the model's variables from one half of `rng`, the run's key from the other."""
        init_rng, run_rng = jax.random.split(rng)
        variables = dict(self.model.init(init_rng, jnp.zeros((1, *self.input_shape), self.input_dtype)))
        params = variables.pop("params")
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            opt_state=self.tx.init(params),
            rng=run_rng,
            model_state=variables,
            tx=self.tx,
            model=self.model,
            head=self.loss.head or "identity",
            input_shape=self.input_shape,
            ema_params=jax.tree.map(jnp.copy, params) if self.ema_decay else None,
            ema_decay=self.ema_decay,
            inputs=self.inputs,
            class_names=self.class_names,
        )

    def train_step(self, state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
        """One update on the batch's mean loss over its real rows (over all devices' rows under pmap)."""
        rng = jax.random.fold_in(state.rng, state.step)
        if self.privacy is not None:
            grads, logits = privacy_lib.private_gradient(
                self._example_loss(state), state.params, batch, privacy=self.privacy, rng=rng,
                axis_name=parallel.collectives.batch_axis(),
            )
            per_example = self.loss.per_example(logits, batch["y"], self.head)
            model_state = state.model_state
        else:
            real = parallel.psum(jnp.sum(batch["mask"].astype(jnp.float32)))
            if self.accumulate > 1:
                grads, logits, per_example, model_state = self._accumulated_gradient(state, batch, rng, real)
            else:
                grads, logits, per_example, model_state = self._gradient(state, state.model_state, batch, rng, real)
            grads = parallel.psum(grads)
            model_state = parallel.pmean(model_state)  # e.g. batch statistics: the same on every device
        totals = self._totals(logits, batch, per_example)
        return state.apply_gradients(grads, model_state), totals

    def eval_step(self, state: TrainState, batch: Batch) -> dict:
        """The batch's totals; for binary tasks also the scores and labels that AUC needs (collected)."""
        logits, _ = self.model.apply(state.variables(), batch["x"], train=False)
        logits = logits.astype(jnp.float32)
        per_example = self.loss.per_example(logits, batch["y"], self.head)
        totals = self._totals(logits, batch, per_example)
        if self.loss.kind in ("binary", "multiclass"):
            _, scores = metrics.predictions(self.loss, logits)
            if scores is not None:
                labels = batch["y"] if batch["y"].ndim == 1 else batch["y"].argmax(axis=-1)
                totals[metrics.COLLECTED] = {"scores": scores, "labels": labels, "mask": batch["mask"]}
        return totals

    def figures(self, totals: dict) -> dict:
        """Loss, accuracy, precision, recall, mae as they apply, the extra metrics, and exact AUC from collected scores."""
        out = metrics.compute({k: v for k, v in totals.items() if k != metrics.COLLECTED})
        collected = totals.get(metrics.COLLECTED)
        if collected:
            real = np.asarray(collected["mask"]) > 0  # (examples,) or (members, examples)
            scores, labels = np.asarray(collected["scores"]), np.asarray(collected["labels"])
            aucs = [metrics.roc_auc(s[r], l[r]) for s, l, r in zip(
                scores.reshape(-1, scores.shape[-1]), labels.reshape(-1, labels.shape[-1]), real.reshape(-1, real.shape[-1]))]
            out["auc"] = np.asarray(aucs) if scores.ndim > 1 else aucs[0]
        return out

    def export(self, state: TrainState):
        return state.params

    def describe(self) -> str:
        return self._description or f"{self.model.name}, loss {self.loss.name}"

    # -- inference ----------------------------------------------------------

    def predict_step(self, state: TrainState, x: jax.Array) -> jax.Array:
        """The head's outputs (probabilities for classifiers) for inputs `x`."""
        logits, _ = self.model.apply(state.variables(), x, train=False)
        return self.head(logits.astype(jnp.float32))

    # -- pieces -------------------------------------------------------------

    def _totals(self, logits, batch, per_example) -> dict:
        outputs = self.head(logits)
        totals = metrics.batch_totals(self.loss, logits, outputs, batch["y"], batch["mask"], per_example)
        mask = batch["mask"].astype(jnp.float32)
        for name, fn in self.extra_metrics.items():
            values = jnp.asarray(fn(logits, batch["y"]), jnp.float32)
            totals[f"{name}_sum"] = jnp.sum(values.reshape(values.shape[0], -1).mean(axis=-1) * mask)
        return totals

    def _forward(self, params, model_state, x, rng, *, train: bool = True):
        if self.compute_dtype is not None:
            params = jax.tree.map(lambda p: p.astype(self.compute_dtype), params)
            x = x.astype(self.compute_dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x
        logits, new_model_state = self.model.apply({"params": params, **model_state}, x, train=train, rng=rng)
        return logits.astype(jnp.float32), new_model_state

    def _gradient(self, state: TrainState, model_state: dict, batch: Batch, rng, real):
        """The gradient of the batch's loss sum over its real rows divided by `real`, and what the metrics need.

        `real` counts the real rows of the whole global batch: under pmap each
        device holds part of it, and the devices' gradients are then summed.
        (Averaging the devices' own means would weigh rows unequally when
        padding leaves devices with different numbers of real rows.)
        """

        def objective(params):
            logits, new_model_state = self._forward(params, model_state, batch["x"], rng)
            per_example = self.loss.per_example(logits, batch["y"], self.head)
            mean = jnp.sum(per_example * batch["mask"].astype(per_example.dtype)) / jnp.maximum(real, 1.0)
            return mean, (logits, per_example, new_model_state)

        # Backpropagation: the gradient of the mean loss with respect to every
        # weight and bias, in one reverse pass through the network.
        (_, (logits, per_example, new_model_state)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        return grads, logits, per_example, new_model_state

    def _accumulated_gradient(self, state: TrainState, batch: Batch, rng, real):
        """`_gradient` over micro-batches in a `lax.scan`, the gradients summed: the whole batch's gradient."""
        count, size = self.accumulate, batch["x"].shape[0]
        if size % count:
            raise ValueError(f"a batch of {size} does not split into {count} micro-batches")
        micro = jax.tree.map(lambda a: a.reshape(count, size // count, *a.shape[1:]), batch)

        def body(carry, inputs):
            grads, model_state = carry
            index, micro_batch = inputs
            g, logits, per_example, model_state = self._gradient(
                state, model_state, micro_batch, jax.random.fold_in(rng, index), real)
            return (jax.tree.map(jnp.add, grads, g), model_state), (logits, per_example)

        zeros = jax.tree.map(jnp.zeros_like, state.params)
        (grads, model_state), (logits, per_example) = jax.lax.scan(
            body, (zeros, state.model_state), (jnp.arange(count), micro))
        return grads, logits.reshape(size, *logits.shape[2:]), per_example.reshape(size), model_state

    def _example_loss(self, state: TrainState) -> Callable:
        """The loss of one example: (params, x, y, rng) -> (loss, logits), for per-example gradients."""

        def example_loss(params, x, y, rng):
            logits, _ = self._forward(params, state.model_state, x[None], rng)
            return self.loss.per_example(logits, y[None], self.head)[0], logits[0]

        return example_loss

    def per_example_grads(self, state: TrainState, batch: Batch):
        """(gradients with a leading batch axis, per-example losses): each example's gradient of its own loss."""
        if state.model_state:
            raise ValueError("per-example gradients need a model without mutable state (such as batch statistics)")
        rng = jax.random.fold_in(state.rng, state.step)
        grads, logits = privacy_lib.per_example_grads(self._example_loss(state), state.params, batch, rng)
        return grads, self.loss.per_example(logits, batch["y"], self.head)

    # -- checks before anything compiles -------------------------------------

    def check(self, x_shape: tuple[int, ...], y: np.ndarray, *, argument: str = "train_data") -> None:
        """Checks the model's outputs against the labels and the loss with `jax.eval_shape` (nothing compiles).

        Raises:
          InputError: when the model fails on inputs of this shape, when its
            output width does not fit the labels and the loss, or when the loss
            does not return one value per example.
        """
        batch = min(len(y), 4)
        x = jax.ShapeDtypeStruct((batch, *x_shape[1:]), self.input_dtype)
        labels = jax.ShapeDtypeStruct((batch, *np.shape(y)[1:]), np.asarray(y).dtype)
        try:
            if x not in self._outputs:  # traced once per input shape (the train and validation splits share it)
                with parallel.checking():
                    variables = jax.eval_shape(lambda x: self.model.init(jax.random.PRNGKey(0), x), x)
                    self._outputs[x] = jax.eval_shape(lambda v, x: self.model.apply(v, x, train=False), variables, x)[0]
            logits = self._outputs[x]
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 -- the user's model: say where it failed
            raise InputError(f"model {self.model.name} fails on {argument} inputs of shape {tuple(x.shape)}: "
                             f"{type(err).__name__}: {err}") from err
        if not hasattr(logits, "shape"):
            raise InputError(f"model {self.model.name} returns {type(logits).__name__}; expected one array of outputs")
        shape = tuple(logits.shape)
        units = shape[-1] if len(shape) > 1 else None
        if len(shape) < 1 or shape[0] != batch:
            raise InputError(f"model {self.model.name} returns outputs of shape {shape} for {batch} examples; "
                             f"expected ({batch}, outputs)")
        kind = self.loss.kind
        if kind == "binary" and (len(shape) != 2 or units != 1):
            raise InputError(
                f"loss={self.loss.name!r} needs 1 output unit (a logit) per example, but model {self.model.name} "
                f"returns shape {shape}; give it a final nn.Dense(1), or use loss='categorical_crossentropy' "
                f"for {units} class logits")
        if kind == "multiclass":
            if len(shape) != 2 or units < 2:
                raise InputError(f"loss={self.loss.name!r} needs one logit per class, (examples, classes >= 2), but "
                                 f"model {self.model.name} returns shape {shape}")
            labels_seen = np.asarray(y)
            if labels_seen.ndim == 1 and np.issubdtype(labels_seen.dtype, np.number) and np.all(np.isfinite(labels_seen)) \
                    and labels_seen.max() >= units:
                top = int(labels_seen.max())
                raise InputError(
                    f"model {self.model.name} returns {units} logits per example, but {argument} labels go up to {top} "
                    f"({top + 1} classes); give the model a final layer of {top + 1} units")
            losses.check_labels(self.loss, y, units, argument=f"{argument} labels")
            classes = int(np.max(y)) + 1 if np.ndim(y) == 1 else np.shape(y)[-1]
            if np.ndim(y) > 1 and classes != units:
                raise InputError(f"{argument} labels are one-hot rows of {classes} classes, but model "
                                 f"{self.model.name} returns {units} logits per example")
        elif kind == "binary":
            losses.check_labels(self.loss, y, 1, argument=f"{argument} labels")
        elif kind == "regression":
            losses.check_labels(self.loss, y, 1, argument=f"{argument} labels")
            if int(np.prod(shape[1:])) != int(np.prod(np.shape(y)[1:])):
                raise InputError(f"{argument} targets have shape {tuple(np.shape(y)[1:])} per example, but model "
                                 f"{self.model.name} returns {shape[1:]}; expected the same number of outputs")
        try:
            with parallel.checking():
                per_example = jax.eval_shape(lambda z, t: self.loss.per_example(z, t, self.head), logits, labels)
        except Exception as err:  # noqa: BLE001 -- the user's loss
            raise InputError(f"loss {self.loss.name!r} fails on outputs {shape} and labels {tuple(labels.shape)}: "
                             f"{type(err).__name__}: {err}") from err
        if tuple(getattr(per_example, "shape", ())) != (batch,):
            raise InputError(
                f"loss {self.loss.name!r} returns shape {tuple(getattr(per_example, 'shape', ()))} for outputs {shape} "
                f"and labels {tuple(labels.shape)}; expected one loss per example, ({batch},). (A loss that broadcasts "
                "(B, 1) outputs against (B,) labels gives (B, B): reshape one of them)")
        for name, fn in self.extra_metrics.items():
            values = jax.eval_shape(fn, logits, labels)
            if not values.shape or values.shape[0] != batch:
                raise InputError(f"metrics[{name!r}] returns shape {values.shape}; expected one value per example, "
                                 f"({batch},)")


# -- from a config ----------------------------------------------------------


def default_config():
    """The tutorial's run: a 12-8-1 network on breast_cancer, adam, binary cross-entropy, 150 epochs, batch 10."""
    from ml_collections import config_dict

    from jaxdl import config as config_lib

    cfg = config_lib.base_config("supervised")
    cfg.data.validation_fraction = 0.0  # > 0: evaluate on this part of train during training
    cfg.data.scaling = "standard"  # fitted on the training split only
    cfg.data.one_hot = False  # class labels as one-hot rows
    cfg.data.csv_path = config_dict.placeholder(str)  # train on a CSV file instead of data.name
    cfg.data.label_column = "last"  # of the CSV: last, first, an index, or a header name
    cfg.data.csv_header = "auto"  # auto, true, false
    cfg.data.csv_delimiter = ","
    cfg.data.in_memory_max_mb = 2048  # larger TFDS splits are read from their files batch by batch

    # model.name picks the network; each has a section of its own, and only the chosen one may differ from
    # its defaults (a setting of another section would be ignored: it is refused instead).
    cfg.model.name = "mlp"  # mlp, cnn or resnet
    cfg.model.output = "auto"  # auto: what the loss needs (sigmoid / softmax / identity)
    cfg.model.mlp = ml_collections.ConfigDict()
    cfg.model.mlp.hidden = (12, 8)
    cfg.model.mlp.activation = "relu"  # one name, or one per hidden layer
    cfg.model.mlp.dropout = 0.0
    cfg.model.mlp.input_dim = config_dict.placeholder(int)  # None: the data's feature count
    cfg.model.cnn = ml_collections.ConfigDict()
    cfg.model.cnn.conv_features = (32, 64)  # channels of each convolution block
    cfg.model.cnn.kernel_size = 3
    cfg.model.cnn.hidden = (12, 8)  # dense layers after the convolutions
    cfg.model.cnn.activation = "relu"
    cfg.model.cnn.dropout = 0.0
    cfg.model.cnn.batch_norm = False  # batch normalisation after each convolution
    cfg.model.cnn.image_shape = ()  # (height, width, channels) of data stored as flat rows, e.g. 8,8,1 for digits
    cfg.model.resnet = ml_collections.ConfigDict()
    cfg.model.resnet.stage_features = (32, 64)  # channels of each stage
    cfg.model.resnet.blocks_per_stage = 2  # residual blocks per stage
    cfg.model.resnet.activation = "relu"
    cfg.model.resnet.batch_norm = False
    cfg.model.resnet.image_shape = ()

    cfg.train.loss = "auto"  # auto: binary / categorical cross-entropy by the number of classes
    cfg.train.grad_accum_steps = 1  # split each batch into M micro-batches, one update from their summed gradient
    cfg.train.ema_decay = 0.0  # > 0: evaluate (and predict with) an exponential moving average of the parameters
    cfg.train.precision = "float32"  # or bfloat16: compute in bfloat16, parameters and updates in float32

    cfg.privacy = ml_collections.ConfigDict()
    cfg.privacy.clip_norm = 0.0  # > 0: DP-SGD, each example's gradient clipped to this L2 norm
    cfg.privacy.noise_multiplier = 0.0  # Gaussian noise std = noise_multiplier * clip_norm
    return cfg


PRECISIONS = {"float32": None, "bfloat16": jnp.bfloat16}


def step_options(cfg) -> dict:
    """Gradient accumulation, compute precision and the EMA decay of a config, checked."""
    from jaxdl.config import check_int

    accumulate = check_int(cfg.train.grad_accum_steps, "train.grad_accum_steps", 1)
    if cfg.train.batch_size % accumulate:
        raise InputError(
            f"train.grad_accum_steps={accumulate} does not divide train.batch_size={cfg.train.batch_size}; "
            "each micro-batch has batch_size / grad_accum_steps examples"
        )
    if cfg.train.precision not in PRECISIONS:
        raise InputError(f"train.precision={cfg.train.precision!r}: expected one of: {', '.join(PRECISIONS)}")
    decay = cfg.train.ema_decay
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
        raise InputError(f"train.ema_decay={decay!r}: expected a number in [0, 1)")
    return {"accumulate": accumulate, "compute_dtype": PRECISIONS[cfg.train.precision], "ema_decay": float(decay)}


def build(cfg):
    """The supervised task of a config: its data, loss, model and optimizer, all checked before anything compiles.

    Raises:
      InputError: naming the first bad setting, its value and what was expected.
    """
    from jaxdl import data, model_summary, models, optim, tasks
    from jaxdl.config import check_int

    privacy = None
    if cfg.privacy.clip_norm or cfg.privacy.noise_multiplier:
        privacy = privacy_lib.Privacy(clip_norm=cfg.privacy.clip_norm, noise_multiplier=cfg.privacy.noise_multiplier)
        if cfg.model.name in ("cnn", "resnet") and cfg.model[cfg.model.name].batch_norm:
            raise InputError(f"privacy (DP-SGD) with model.{cfg.model.name}.batch_norm=true: batch statistics mix examples, "
                             "which per-example gradients cannot; turn one of them off")
    check_int(cfg.data.in_memory_max_mb, "data.in_memory_max_mb", 0)
    if not isinstance(cfg.data.one_hot, bool):
        raise InputError(f"data.one_hot={cfg.data.one_hot!r}: expected true or false")
    options = step_options(cfg)
    if options["accumulate"] > 1 and privacy is not None:
        raise InputError("train.grad_accum_steps > 1 with DP-SGD (privacy.clip_norm) is not supported; use one of them")
    named_loss = None if cfg.train.loss == "auto" else losses.get(cfg.train.loss, argument="train.loss")
    splits = data.load(
        cfg.data.name, data_dir=cfg.data.data_dir, csv_path=cfg.data.csv_path, label_column=cfg.data.label_column,
        csv_header=cfg.data.csv_header, csv_delimiter=cfg.data.csv_delimiter, test_fraction=cfg.data.test_fraction,
        validation_fraction=cfg.data.validation_fraction, split_seed=cfg.data.split_seed, scaling=cfg.data.scaling,
        one_hot=cfg.data.one_hot, in_memory_max_bytes=cfg.data.in_memory_max_mb << 20,
        continuous_labels=named_loss is not None and named_loss.kind == "regression",
    )
    steps = tasks.steps_per_epoch(cfg, len(splits.train))
    info = splits.info
    loss = named_loss or losses.for_task(info.num_classes)
    # A one-class training split is refused before the output layer is sized from it (splits read from TFDS
    # files batch by batch carry their declared classes).
    if isinstance(splits.train, data.ArrayDataset):
        csv = cfg.data.csv_path is not None
        losses.check_classes(
            loss, splits.train.y,
            argument=f"data.csv_path={cfg.data.csv_path!r}: the training split's labels" if csv else f"{info.name} training labels",
            column=f"data.label_column={cfg.data.label_column!r}" if csv else "the dataset")
    num_outputs, head = losses.output_layer(loss, info.num_classes)
    if cfg.model.output != "auto":
        head = cfg.model.output
    _check_model_sections(cfg)
    module = models.build(cfg.model, num_outputs=num_outputs, output_activation=head)
    losses.check_head(loss, num_outputs, head)
    models.check_features(module, (len(splits.train), *info.feature_shape), argument=f"{info.name} features")
    for split_name in ("train", "validation", "test"):
        split = getattr(splits, split_name)
        if isinstance(split, data.ArrayDataset):  # splits read from files carry TFDS's checked class labels
            losses.check_labels(loss, split.y, num_outputs, argument=f"{info.name} {split_name} labels")
    tx = optim.from_config(cfg, total_steps=steps * cfg.train.epochs)
    summary = model_summary.summarize(module, info.feature_shape).table()
    shape = info.feature_shape
    features = f"{shape[0]} features" if len(shape) == 1 else f"{'x'.join(map(str, shape))} images"
    widths = "-".join(map(str, (*shape, *getattr(module, "conv_features", ()), *module.hidden, module.num_outputs)))
    params = sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(
        jax.eval_shape(lambda: module.init(jax.random.PRNGKey(0), jnp.zeros((1, *shape), jnp.float32)))["params"]))
    members = f"an ensemble of {cfg.ensemble.size} " if cfg.ensemble.size > 1 else ""
    labels = f"; {info.labels_read_as}: regression with {loss.name}" if info.labels_read_as else ""
    no_hidden = ""
    if not module.hidden and isinstance(module, (models.MLP, models.CNN)):  # e.g. model.mlp.hidden='()'
        no_hidden = " with no hidden layers" if isinstance(module, models.MLP) else " with no hidden dense layers"
    description = (
        f"{summary}\n{info.name}: {len(splits.train)} train / {len(splits.test)} test examples, {features}{labels}; "
        f"{members}{type(module).__name__} {widths}{no_hidden} ({params:,} parameters{' each' if members else ''}); "
        f"{cfg.optimizer.name}, {loss.name}, {cfg.train.epochs} epochs of {steps} steps at batch size "
        f"{cfg.train.batch_size}"
    )
    task = Supervised(
        modules.wrap(module), loss, tx, input_shape=info.feature_shape, privacy=privacy,
        accumulate=options["accumulate"], compute_dtype=options["compute_dtype"], ema_decay=options["ema_decay"],
        inputs=data.Inputs.of(splits.scaler, splits.transform), class_names=info.class_names,
        description=f"{type(module).__name__} {widths}",
    )
    tasks_lib = tasks
    return tasks_lib.Built(task=task, splits=splits, description=description,
                           select="loss" if loss.kind == "regression" else "accuracy", headline=headline)


def _check_model_sections(cfg) -> None:
    """Refuses settings in the sections of models the config does not use (they would be ignored)."""
    if cfg.model.name not in models_lib().MODELS:
        return  # models.build names the known ones
    defaults = default_config().model
    for name in models_lib().MODELS:
        if name == cfg.model.name:
            continue
        for key, value in cfg.model[name].items():
            default = defaults[name][key]
            if (list(value) if isinstance(value, tuple) else value) != (list(default) if isinstance(default, tuple) else default):
                raise InputError(
                    f"model.{name}.{key}={value!r} is set, but model.name={cfg.model.name!r}; a {name} setting would be "
                    f"ignored: set model.name={name!r}, or move it to model.{cfg.model.name}")


def models_lib():
    from jaxdl import models

    return models


def headline(summary: dict) -> str:
    """The line `jaxdl train` prints for a finished supervised run."""
    details = [f"loss {summary['eval_loss']:.4f}"]
    if summary.get("eval_auc") is not None:
        details.append(f"auc {summary['eval_auc']:.4f}")
    if "eval_accuracy" in summary:
        return (f"test accuracy {summary['eval_accuracy']:.4f} ({', '.join(details)}) on {summary['test_examples']} "
                f"{summary['dataset']} test examples, {summary['steps']} steps in {summary['wall_seconds']:.1f} s")
    return f"test loss {summary['eval_loss']:.4f} on {summary['test_examples']} {summary['dataset']} test examples"
