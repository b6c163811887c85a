"""Reference Flax models, used as pure functions through `init` and `apply`.

Every model returns the activations of its output layer. Called with
`logits=True` it returns the output layer's weighted sums `z = w . a + b`
before the output activation instead: the losses work on those for numerical
stability, and `predict` applies the output activation.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import numpy as np

from jaxdl import activations
from jaxdl.errors import InputError

OUTPUT_ACTIVATIONS = ("sigmoid", "softmax", "identity")


class MLP(nn.Module):
    """A multi-layer perceptron: input layer, hidden layers, output layer.

    Each hidden layer is a row of neurons; each neuron computes the weighted
    sum of its inputs plus a bias, `z = w . x + b`, then an activation. The
    output layer is the tutorial's: one sigmoid unit for a yes/no answer,
    softmax over N units for N classes, or identity units for regression.

    Attributes:
      hidden: widths of the hidden layers, e.g. (12, 8).
      activation: one activation name for every hidden layer, or one per layer.
      num_outputs: units in the output layer.
      output_activation: "sigmoid", "softmax" or "identity".
      dropout_rate: dropout after each hidden layer while training (0 = off).
      input_dim: the expected number of input features (like Keras's
        `input_dim`); None accepts whatever the data has.
    """

    hidden: Sequence[int] = (12, 8)
    activation: str | Sequence[str] = "relu"
    num_outputs: int = 1
    output_activation: str = "sigmoid"
    dropout_rate: float = 0.0
    input_dim: int | None = None

    def hidden_activations(self) -> tuple[str, ...]:
        """The activation name of each hidden layer."""
        if isinstance(self.activation, str):
            return (self.activation,) * len(self.hidden)
        return tuple(self.activation)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, logits: bool = False) -> jax.Array:
        x = x.reshape((x.shape[0], -1))  # the input layer takes each example as one vector (images too)
        for i, (width, act) in enumerate(zip(self.hidden, self.hidden_activations())):
            x = nn.Dense(width, name=f"hidden_{i}")(x)
            x = activations.get(act)(x)
            if self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        z = nn.Dense(self.num_outputs, name="output")(x)
        if logits:
            return z
        return activations.get(self.output_activation)(z)


class CNN(nn.Module):
    """A small convolutional network: convolution + activation + 2x2 max-pooling blocks, then dense layers.

    Inputs are images (N, height, width, channels); (N, height, width) gets one
    channel; flat rows (N, features) are reshaped to `image_shape` (for
    datasets stored as vectors, such as the 8x8 `digits`).

    Attributes:
      conv_features: output channels of each convolution block, e.g. (32, 64).
      kernel_size: the side of the square convolution kernels.
      hidden: widths of the dense layers after the convolutions.
      activation: the activation of every convolution and hidden layer.
      num_outputs, output_activation, dropout_rate: as for `MLP`.
      image_shape: (height, width, channels) of flat input rows; () for
        inputs that are images already.
      batch_norm: batch normalisation after each convolution (its running
        statistics are the `batch_stats` collection: the state's
        model_state; evaluation uses them).
    """

    conv_features: Sequence[int] = (32, 64)
    kernel_size: int = 3
    hidden: Sequence[int] = (128,)
    activation: str = "relu"
    num_outputs: int = 10
    output_activation: str = "softmax"
    dropout_rate: float = 0.0
    image_shape: Sequence[int] = ()
    batch_norm: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, logits: bool = False) -> jax.Array:
        act = activations.get(self.activation)
        if x.ndim == 2 and self.image_shape:
            x = x.reshape((x.shape[0], *self.image_shape))
        if x.ndim == 3:
            x = x[..., None]
        for i, features in enumerate(self.conv_features):
            x = nn.Conv(features, (self.kernel_size, self.kernel_size), use_bias=not self.batch_norm, name=f"conv_{i}")(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name=f"batch_norm_{i}")(x)
            x = nn.max_pool(act(x), (2, 2), strides=(2, 2), padding="SAME")
        x = x.reshape((x.shape[0], -1))
        for i, width in enumerate(self.hidden):
            x = act(nn.Dense(width, name=f"hidden_{i}")(x))
            if self.dropout_rate > 0:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        z = nn.Dense(self.num_outputs, name="output")(x)
        return z if logits else activations.get(self.output_activation)(z)


MODELS = {"mlp": MLP, "cnn": CNN}


def check_mlp(model: MLP, *, prefix: str = "model") -> None:
    """Checks an MLP's settings, naming the bad one.

    Raises:
      InputError: for a bad width, activation, output or dropout rate.
    """
    if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in model.hidden):
        raise InputError(
            f"{prefix}.hidden={tuple(model.hidden)!r}: expected positive integer layer widths, e.g. (12, 8)"
        )
    names = model.hidden_activations()
    if len(names) != len(model.hidden):
        raise InputError(
            f"{prefix}.activation={model.activation!r}: expected one name, or one per hidden layer "
            f"({len(model.hidden)})"
        )
    for name in names:
        activations.get(name, argument=f"{prefix}.activation")
    if model.output_activation not in OUTPUT_ACTIVATIONS:
        raise InputError(
            f"{prefix}.output={model.output_activation!r}: expected one of {', '.join(OUTPUT_ACTIVATIONS)}"
        )
    if not isinstance(model.num_outputs, int) or model.num_outputs < 1:
        raise InputError(f"{prefix}.num_outputs={model.num_outputs!r}: expected a positive integer")
    if not 0.0 <= model.dropout_rate < 1.0:
        raise InputError(f"{prefix}.dropout={model.dropout_rate!r}: expected a rate in [0, 1)")
    if model.input_dim is not None and (not isinstance(model.input_dim, int) or model.input_dim < 1):
        raise InputError(f"{prefix}.input_dim={model.input_dim!r}: expected a positive integer or None")


def build(model_config, *, num_outputs: int, output_activation: str) -> nn.Module:
    """Builds the model that `model_config` (the `model` section of a config) names.

    Args:
      model_config: `name`, `hidden`, `activation`, `dropout` and `input_dim`.
      num_outputs: units of the output layer, from the data and the loss.
      output_activation: the output layer's activation, from the loss.

    Raises:
      InputError: for an unknown model name or a bad setting.
    """
    if model_config.name not in MODELS:
        raise InputError(
            f"model.name={model_config.name!r} is not a known model; expected one of: {', '.join(MODELS)}"
        )
    activation = model_config.activation
    if model_config.name == "cnn":
        if not isinstance(activation, str):
            raise InputError(f"model.activation={activation!r}: the CNN takes one activation name")
        activations.get(activation, argument="model.activation")
        return CNN(
            conv_features=tuple(model_config.conv_features),
            kernel_size=model_config.kernel_size,
            hidden=tuple(model_config.hidden),
            activation=activation,
            num_outputs=num_outputs,
            output_activation=output_activation,
            dropout_rate=float(model_config.dropout),
            image_shape=tuple(model_config.image_shape),
            batch_norm=bool(model_config.batch_norm),
        )
    model = MLP(
        hidden=tuple(model_config.hidden),
        activation=activation if isinstance(activation, str) else tuple(activation),
        num_outputs=num_outputs,
        output_activation=output_activation,
        dropout_rate=float(model_config.dropout),
        input_dim=model_config.input_dim,
    )
    check_mlp(model)
    return model


def check_features(model: nn.Module, x_shape: tuple[int, ...], *, argument: str = "features") -> None:
    """Checks that inputs of shape `x_shape` (batch first) fit a model's declared input width.

    Raises:
      InputError: when the model declares `input_dim` and the data differs.
    """
    input_dim = getattr(model, "input_dim", None)
    if input_dim is not None and int(np.prod(x_shape[1:])) != input_dim:
        raise InputError(
            f"{argument} have shape {tuple(x_shape)}, i.e. {tuple(x_shape[1:])} per example, "
            f"but the model expects input_dim={input_dim} features"
        )
