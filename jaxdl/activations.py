"""Activation functions by name: what decides whether, and how strongly, a neuron fires."""

from typing import Callable

import jax
import jax.numpy as jnp

from jaxdl.errors import InputError

Activation = Callable[[jax.Array], jax.Array]

ACTIVATIONS: dict[str, Activation] = {
    "identity": lambda z: z,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    # Softmax normalises over the last axis (the units of a layer), so the
    # outputs of a layer are positive and sum to one.
    "softmax": lambda z: jax.nn.softmax(z, axis=-1),
    "gelu": jax.nn.gelu,
    "elu": jax.nn.elu,
    "leaky_relu": jax.nn.leaky_relu,
    "swish": jax.nn.swish,
    "softplus": jax.nn.softplus,
}


def get(name: str, *, argument: str = "activation") -> Activation:
    """Returns the activation function called `name`.

    Args:
      name: one of `ACTIVATIONS`.
      argument: the name of the setting being resolved, for the error message.

    Raises:
      InputError: for an unknown name, listing the known ones.
    """
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise InputError(
            f"{argument}={name!r} is not a known activation; "
            f"expected one of: {', '.join(sorted(ACTIVATIONS))}"
        )
    return ACTIVATIONS[name]
