"""The training state: one pytree holding everything a step reads and writes."""

import hashlib
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct


class TrainState(struct.PyTreeNode):
    """Everything that changes during training, plus the static pieces that define it.

    Attributes:
      step: number of optimizer updates applied so far.
      params: the model's weights and biases.
      opt_state: the optimizer's state (moments, counters).
      rng: the run's base PRNG key. A step draws its randomness from
        `fold_in(rng, step)`, so a resumed run draws the same numbers as an
        uninterrupted one.
      model_state: mutable model collections other than params (for example
        batch statistics); an empty dict for models without any.
      model: the Flax module (static).
      tx: the optax optimizer (static).
      input_shape: the shape of one input example (static), checked by
        `evaluate` and `predict`.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    model_state: dict
    model: nn.Module = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    input_shape: tuple[int, ...] = struct.field(pytree_node=False)

    def apply_gradients(self, grads: Any, model_state: dict) -> "TrainState":
        """One optimizer update: the new state after applying `grads`."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        return self.replace(
            step=self.step + 1,
            params=optax.apply_updates(self.params, updates),
            opt_state=opt_state,
            model_state=model_state,
        )

    def variables(self) -> dict:
        """The model's variables as `model.apply` takes them."""
        return {"params": self.params, **self.model_state}


def init_variables(model: nn.Module, rng: jax.Array, input_shape: tuple[int, ...]) -> dict:
    """The model's initial variables for inputs of shape `input_shape` (one example)."""
    return model.init(rng, jnp.zeros((1, *input_shape), jnp.float32))


def create(
    model: nn.Module,
    tx: optax.GradientTransformation,
    *,
    rng: jax.Array,
    input_shape: tuple[int, ...],
    init: Callable[[nn.Module, jax.Array, tuple[int, ...]], dict] = init_variables,
) -> TrainState:
    """Initialises a model and its optimizer.

    Args:
      model: a Flax module.
      tx: an optax optimizer.
      rng: a PRNG key; it is split into the initialisation key and the run's
        base key, so the two never reuse the same numbers.
      input_shape: the shape of one example, without the batch axis.
      init: computes the initial variables; `parallel.create_state` passes a
        compiled `init_variables`.
    """
    input_shape = tuple(input_shape)
    init_rng, run_rng = jax.random.split(rng)
    variables = dict(init(model, init_rng, input_shape))
    params = variables.pop("params")
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        rng=run_rng,
        model_state=variables,
        model=model,
        tx=tx,
        input_shape=input_shape,
    )


def param_count(params: Any) -> int:
    """Number of scalar parameters (weights and biases)."""
    return int(sum(np.size(leaf) for leaf in jax.tree.leaves(params)))


def params_sha256(params: Any) -> str:
    """SHA-256 of the parameters: each leaf's path, dtype, shape and bytes, in sorted path order.

    Two runs that end with bit-identical parameters give the same digest.
    """
    digest = hashlib.sha256()
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    for path, leaf in sorted(leaves, key=lambda item: jax.tree_util.keystr(item[0])):
        array = np.ascontiguousarray(jax.device_get(leaf))
        digest.update(jax.tree_util.keystr(path).encode())
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()
