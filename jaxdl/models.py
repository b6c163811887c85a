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


def as_images(x: jax.Array, image_shape: Sequence[int]) -> jax.Array:
    """Images (N, height, width, channels) from flat rows (reshaped to `image_shape`) or one-channel (N, height, width)."""
    if x.ndim == 2 and image_shape:
        x = x.reshape((x.shape[0], *image_shape))
    if x.ndim == 3:
        x = x[..., None]
    return x


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
        x = as_images(x, self.image_shape)
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


class ResidualBlock(nn.Module):
    """A basic residual block: two 3x3 convolutions whose output is added to the block's input.

    `activation(x + F(x))`, where F is conv -> (batch norm) -> activation ->
    conv -> (batch norm). When the block changes the shape (a stride of 2, or
    more channels), the input goes through a 1x1 convolution with the same
    stride first (a projection shortcut), so that the two can be added.

    Attributes:
      features: output channels of both convolutions.
      strides: the first convolution's (and the shortcut's) stride; 2 halves
        height and width.
      activation, batch_norm: as for `ResNet`.
    """

    features: int
    strides: int = 1
    activation: str = "relu"
    batch_norm: bool = True

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        act = activations.get(self.activation)
        strides = (self.strides, self.strides)

        def conv(kernel: int, stride: tuple[int, int], name: str) -> nn.Conv:
            # A batch normalisation's shift makes the convolution's bias redundant.
            return nn.Conv(self.features, (kernel, kernel), stride, use_bias=not self.batch_norm, name=name)

        def norm(y: jax.Array, name: str) -> jax.Array:
            if not self.batch_norm:
                return y
            return nn.BatchNorm(use_running_average=not train, momentum=0.9, name=name)(y)

        y = act(norm(conv(3, strides, "conv_0")(x), "batch_norm_0"))
        y = norm(conv(3, (1, 1), "conv_1")(y), "batch_norm_1")
        if self.strides != 1 or x.shape[-1] != self.features:
            x = norm(conv(1, strides, "shortcut")(x), "shortcut_batch_norm")
        return act(x + y)


class ResNet(nn.Module):
    """A small residual network for small images (He et al. 2016's CIFAR-10 family: ResNet-20, -32, ...).

    A 3x3 convolution (the stem), then stages of `ResidualBlock`s; each stage
    after the first starts with a stride of 2, halving height and width and
    going to the stage's wider channels. Global average pooling then gives one
    vector per image (so any image size works), and a dense output layer
    follows. With `stage_features=(16, 32, 64)` and 3 blocks per stage it is
    ResNet-20: 1 + 3 * 3 * 2 convolutions + 1 dense layer.

    Inputs are as for `CNN`: images (N, height, width, channels),
    (N, height, width) for one channel, or flat rows reshaped to `image_shape`.

    Attributes:
      stage_features: channels of each stage, e.g. (16, 32, 64); the stem has
        the first stage's.
      blocks_per_stage: residual blocks in every stage.
      activation: the activation of every convolution.
      num_outputs, output_activation: as for `MLP`.
      image_shape: (height, width, channels) of flat input rows; () for
        inputs that are images already.
      batch_norm: batch normalisation after each convolution, as for `CNN`.
        Deep residual networks train far better with it.
    """

    stage_features: Sequence[int] = (16, 32, 64)
    blocks_per_stage: int = 3
    activation: str = "relu"
    num_outputs: int = 10
    output_activation: str = "softmax"
    image_shape: Sequence[int] = ()
    batch_norm: bool = True

    @property
    def conv_features(self) -> tuple[int, ...]:
        """Channels of the stem and of each residual block in order: one width per block, as a CNN's."""
        return (self.stage_features[0], *(f for f in self.stage_features for _ in range(self.blocks_per_stage)))

    @property
    def hidden(self) -> tuple[int, ...]:
        """No hidden dense layers: the pooled features feed the output layer (for descriptions like a CNN's)."""
        return ()

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False, logits: bool = False) -> jax.Array:
        act = activations.get(self.activation)
        x = as_images(x, self.image_shape)
        x = nn.Conv(self.stage_features[0], (3, 3), use_bias=not self.batch_norm, name="stem")(x)
        if self.batch_norm:
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9, name="stem_batch_norm")(x)
        x = act(x)
        for s, features in enumerate(self.stage_features):
            for b in range(self.blocks_per_stage):
                strides = 2 if s > 0 and b == 0 else 1
                x = ResidualBlock(features, strides, self.activation, self.batch_norm, name=f"stage_{s}_block_{b}")(
                    x, train=train
                )
        # An average pool over the whole image (rather than a mean) shows as AvgPool + Flatten in `jaxdl summary`.
        x = nn.avg_pool(x, x.shape[1:3])
        x = x.reshape((x.shape[0], -1))
        z = nn.Dense(self.num_outputs, name="output")(x)
        return z if logits else activations.get(self.output_activation)(z)


MODELS = {"mlp": MLP, "cnn": CNN, "resnet": ResNet}


def check_mlp(model: MLP, *, prefix: str = "model") -> None:
    """Checks an MLP's settings, naming the bad one.

    Raises:
      InputError: for a bad width, activation, output or dropout rate.
    """
    if not isinstance(model.hidden, (tuple, list)):
        raise InputError(
            f"{prefix}.hidden={model.hidden!r}: expected a sequence of layer widths, e.g. (12, 8), or "
            f"({model.hidden!r},) for one hidden layer"
        )
    if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in model.hidden):
        raise InputError(
            f"{prefix}.hidden={tuple(model.hidden)!r}: expected positive integer layer widths, e.g. (12, 8)"
        )
    names = model.hidden_activations()
    if len(names) != len(model.hidden):
        given = model.activation if isinstance(model.activation, str) else ",".join(map(str, model.activation))
        raise InputError(
            f"{prefix}.activation={given!r}: {len(names)} name(s) for {len(model.hidden)} hidden layer(s); expected "
            f"one name, or one per hidden layer ({len(model.hidden)})"
        )
    for name in names:
        activations.get(name, argument=f"{prefix}.activation")
    if model.output_activation not in OUTPUT_ACTIVATIONS:
        raise InputError(
            f"model.output={model.output_activation!r}: expected one of {', '.join(OUTPUT_ACTIVATIONS)}"
        )
    if not isinstance(model.num_outputs, int) or model.num_outputs < 1:
        raise InputError(f"{prefix}.num_outputs={model.num_outputs!r}: expected a positive integer")
    if not 0.0 <= model.dropout_rate < 1.0:
        raise InputError(f"{prefix}.dropout={model.dropout_rate!r}: expected a rate in [0, 1)")
    if model.input_dim is not None and (not isinstance(model.input_dim, int) or model.input_dim < 1):
        raise InputError(f"{prefix}.input_dim={model.input_dim!r}: expected a positive integer or None")


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_resnet(model: ResNet, *, prefix: str = "model") -> None:
    """Checks a ResNet's settings, naming the bad one by its config key.

    Raises:
      InputError: for bad stage widths, block count, activation, output or image shape.
    """
    features = tuple(model.stage_features)
    if not features or not all(_positive_int(f) for f in features):
        raise InputError(
            f"{prefix}.stage_features={features!r}: expected the channels of each ResNet stage as positive "
            "integers, e.g. (16, 32, 64)"
        )
    if not _positive_int(model.blocks_per_stage):
        raise InputError(f"{prefix}.blocks_per_stage={model.blocks_per_stage!r}: expected a positive integer, e.g. 3")
    if not isinstance(model.activation, str):
        raise InputError(f"{prefix}.activation={model.activation!r}: the ResNet takes one activation name for all "
                         "its layers, e.g. relu")
    activations.get(model.activation, argument=f"{prefix}.activation")
    if model.output_activation not in OUTPUT_ACTIVATIONS:
        raise InputError(
            f"model.output={model.output_activation!r}: expected one of {', '.join(OUTPUT_ACTIVATIONS)}"
        )
    if not _positive_int(model.num_outputs):
        raise InputError(f"{prefix}.num_outputs={model.num_outputs!r}: expected a positive integer")
    shape = tuple(model.image_shape)
    if shape and (len(shape) != 3 or not all(_positive_int(d) for d in shape)):
        raise InputError(
            f"{prefix}.image_shape={shape!r}: expected () for image data, or (height, width, channels) "
            "for images stored as flat rows, e.g. (8, 8, 1)"
        )


def build(model_config, *, num_outputs: int, output_activation: str) -> nn.Module:
    """Builds the model that `model_config` (the `model` section of a config) names, from its own section.

    Args:
      model_config: `name` ("mlp", "cnn", "resnet") and that model's section:
        `mlp` (hidden, activation: one name, or one per hidden layer as a
        tuple or a comma-separated string "relu,tanh"; dropout, input_dim), `cnn` (conv_features,
        kernel_size, hidden, activation, dropout, batch_norm, image_shape) or
        `resnet` (stage_features, blocks_per_stage, activation, batch_norm,
        image_shape).
      num_outputs: units of the output layer, from the data and the loss.
      output_activation: the output layer's activation, from the loss.

    Raises:
      InputError: for an unknown model name or a bad setting, naming its key.
    """
    if model_config.name not in MODELS:
        raise InputError(
            f"model.name={model_config.name!r} is not a known model; expected one of: {', '.join(MODELS)}"
        )
    name = model_config.name
    section, prefix = model_config[name], f"model.{name}"
    type_names = {"cnn": "CNN", "resnet": "ResNet"}
    activation = section.activation
    if isinstance(activation, str) and "," in activation:  # one per layer, as the config keeps them: "relu,tanh"
        activation = tuple(a.strip() for a in activation.split(","))
    if name in ("cnn", "resnet") and not isinstance(activation, str):
        raise InputError(f"{prefix}.activation={section.activation!r}: the {type_names[name]} takes one activation "
                         "name for all its layers, e.g. relu")
    if name == "cnn":
        activations.get(activation, argument=f"{prefix}.activation")
        return CNN(
            conv_features=tuple(section.conv_features),
            kernel_size=section.kernel_size,
            hidden=tuple(section.hidden),
            activation=activation,
            num_outputs=num_outputs,
            output_activation=output_activation,
            dropout_rate=float(section.dropout),
            image_shape=tuple(section.image_shape),
            batch_norm=bool(section.batch_norm),
        )
    if name == "resnet":
        model = ResNet(
            stage_features=tuple(section.stage_features),
            blocks_per_stage=section.blocks_per_stage,
            activation=activation,
            num_outputs=num_outputs,
            output_activation=output_activation,
            image_shape=tuple(section.image_shape),
            batch_norm=bool(section.batch_norm),
        )
        check_resnet(model, prefix=prefix)
        return model
    model = MLP(
        hidden=tuple(section.hidden),
        activation=activation if isinstance(activation, str) else tuple(activation),
        num_outputs=num_outputs,
        output_activation=output_activation,
        dropout_rate=float(section.dropout),
        input_dim=section.input_dim,
    )
    check_mlp(model, prefix=prefix)
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
