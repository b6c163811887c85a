"""Named losses over optax, each tied to the output layer it is meant for.

A loss takes the output layer's pre-activation values `z` (logits) and the
labels and returns one loss value per example. Working on logits keeps the
cross-entropies finite where sigmoid or softmax would round to 0 or 1.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import activations
from jaxdl.errors import InputError


@dataclasses.dataclass(frozen=True)
class Loss:
    """A named loss.

    Attributes:
      name: the name users give.
      kind: the task it trains: "binary", "multiclass", "regression", or
        "custom" for a user's function (whose only metric is the loss).
      head: the output activation it assumes ("sigmoid", "softmax"), or None
        when it works with any output layer (it then sees the outputs after
        the head is applied).
      per_example: (logits, labels, head_fn) -> loss of each example.
    """

    name: str
    kind: str
    head: str | None
    per_example: Callable[[jax.Array, jax.Array, Callable], jax.Array]


def _binary_crossentropy(z, y, head_fn):
    del head_fn  # The sigmoid is folded into the stable log-sigmoid form.
    return optax.sigmoid_binary_cross_entropy(z[..., 0], y.astype(z.dtype))


def _categorical_crossentropy(z, y, head_fn):
    del head_fn  # The softmax is folded into the stable log-softmax form.
    if y.ndim == z.ndim:  # one-hot (or soft) label rows
        return optax.softmax_cross_entropy(z, y.astype(z.dtype))
    return optax.softmax_cross_entropy_with_integer_labels(z, y.astype(jnp.int32))


def _mean_squared_error(z, y, head_fn):
    outputs = head_fn(z)
    y = y.astype(outputs.dtype).reshape(outputs.shape)
    return jnp.mean(jnp.square(outputs - y).reshape(outputs.shape[0], -1), axis=-1)


LOSSES: dict[str, Loss] = {
    "binary_crossentropy": Loss("binary_crossentropy", "binary", "sigmoid", _binary_crossentropy),
    "categorical_crossentropy": Loss(
        "categorical_crossentropy", "multiclass", "softmax", _categorical_crossentropy
    ),
    "mean_squared_error": Loss("mean_squared_error", "regression", None, _mean_squared_error),
}
# Keras's names for the same losses.
ALIASES = {
    "sparse_categorical_crossentropy": "categorical_crossentropy",
    "mse": "mean_squared_error",
}


def get(name: str, *, argument: str = "loss") -> Loss:
    """Returns the loss called `name` (or one of its Keras aliases).

    Raises:
      InputError: for an unknown name, listing the known ones.
    """
    key = ALIASES.get(name, name) if isinstance(name, str) else name
    if key not in LOSSES:
        known = sorted([*LOSSES, *ALIASES])
        raise InputError(f"{argument}={name!r} is not a known loss; expected one of: {', '.join(known)}")
    return LOSSES[key]


def resolve(loss, *, argument: str = "loss") -> Loss:
    """A loss from a name (any case; Keras aliases too), a `Loss`, or a callable `(outputs, labels) -> per-example loss`.

    A callable sees the model's outputs as they are (logits for a classifier:
    e.g. `optax.softmax_cross_entropy_with_integer_labels`) and must return
    one value per example; `Supervised.check` verifies that before training.

    Raises:
      InputError: for an unknown name or a value that is none of these.
    """
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        return get(loss.lower(), argument=argument) if loss.lower() in {*LOSSES, *ALIASES} else get(loss, argument=argument)
    if callable(loss):
        name = getattr(loss, "__name__", type(loss).__name__)
        return Loss(name, "custom", None, lambda z, y, head_fn: loss(z, y))
    raise InputError(
        f"{argument}={loss!r}: expected a loss name ({', '.join(sorted([*LOSSES, *ALIASES]))}) or a function "
        "(outputs, labels) -> one loss per example"
    )


def for_task(num_classes: int | None) -> Loss:
    """The default loss for a dataset: binary for 2 classes, categorical for more, MSE for regression."""
    if num_classes is None:
        return LOSSES["mean_squared_error"]
    return LOSSES["binary_crossentropy" if num_classes == 2 else "categorical_crossentropy"]


def for_head(output_activation: str) -> Loss:
    """The default loss for a model's output layer (used by `evaluate` when none is named)."""
    return {
        "sigmoid": LOSSES["binary_crossentropy"],
        "softmax": LOSSES["categorical_crossentropy"],
    }.get(output_activation, LOSSES["mean_squared_error"])


def output_layer(loss: Loss, num_classes: int | None, num_targets: int = 1) -> tuple[int, str]:
    """The (units, activation) of the output layer that `loss` needs for the data."""
    if loss.kind == "binary":
        return 1, "sigmoid"
    if loss.kind == "multiclass":
        return int(num_classes), "softmax"
    return num_targets, "identity"


def check_head(loss: Loss, num_outputs: int, output_activation: str) -> None:
    """Checks that a model's output layer is the one `loss` is meant for.

    Raises:
      InputError: naming the loss and the output layer it needs.
    """
    activations.get(output_activation, argument="model.output")
    if loss.kind == "binary" and (num_outputs, output_activation) != (1, "sigmoid"):
        raise InputError(
            f"loss={loss.name!r} needs an output layer of 1 sigmoid unit, but the model has "
            f"{num_outputs} {output_activation} unit(s); for a softmax over classes use "
            "loss='categorical_crossentropy'"
        )
    if loss.kind == "multiclass" and (output_activation != "softmax" or num_outputs < 2):
        raise InputError(
            f"loss={loss.name!r} needs a softmax output layer of at least 2 units, but the model has "
            f"{num_outputs} {output_activation} unit(s)"
        )


def check_classes(loss: Loss, y: np.ndarray, *, argument: str = "labels", column: str = "the label column") -> None:
    """Refuses class labels of a single class for a classifier's loss: there is nothing to tell apart.

    Args:
      column: where the labels come from, for the message (e.g. "data.label_column='last'").

    Raises:
      InputError: naming the labels, their one value, and what to do.
    """
    y = np.asarray(y)
    if loss.kind not in ("binary", "multiclass") or y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.number):
        return
    values = np.unique(y)
    if len(values) == 1:
        raise InputError(
            f"{argument} are all {values[0].item()!r} ({y.size} rows): a classifier needs at least two classes; "
            f"check {column}, or set train.loss=mean_squared_error if the labels are regression targets")


def check_labels(loss: Loss, y: np.ndarray, num_outputs: int, *, argument: str = "labels") -> None:
    """Checks labels against a loss and the number of output units, before any compile.

    Binary labels must be 0 or 1; class labels integers in [0, num_outputs);
    regression targets finite numbers.

    Raises:
      InputError: naming the first bad label, its row, and what was expected.
    """
    y = np.asarray(y)
    if y.size == 0:
        raise InputError(f"{argument} are empty")
    if not np.issubdtype(y.dtype, np.number) and y.dtype != bool:
        raise InputError(f"{argument} have dtype {y.dtype}; expected numbers")
    if not np.all(np.isfinite(y)):
        row = int(np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))[0])
        raise InputError(f"{argument} contain a non-finite value at row {row}: {y[row]!r}")
    if loss.kind == "regression":
        return
    if y.ndim != 1:
        raise InputError(
            f"{argument} have shape {y.shape}; loss={loss.name!r} expects one integer class label per "
            "example (shape (N,)); turn one-hot rows into labels with y.argmax(axis=1)"
        )
    if loss.kind == "binary":
        allowed, what = np.isin(y, (0, 1)), "0 or 1"
    else:
        allowed = (y == np.round(y)) & (y >= 0) & (y < num_outputs)
        what = f"an integer class in [0, {num_outputs}) (the model has {num_outputs} outputs)"
    if not allowed.all():
        row = int(np.flatnonzero(~allowed)[0])
        bad = np.unique(y[~allowed])[:5].tolist()
        raise InputError(
            f"{argument} outside the classes: row {row} has label {y[row].item()!r} "
            f"(bad values include {bad}); expected {what}"
        )
