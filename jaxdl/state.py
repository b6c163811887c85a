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
      tx: the optax optimizer (static).
      model: what computes the outputs (static): a `jaxdl.modules.Model` for
        supervised tasks, the Flax module for others; None when not needed.
      head: the output activation that turns outputs into predictions
        (static): "sigmoid", "softmax" or "identity".
      input_shape: the shape of one input example (static), checked by
        `evaluate` and `predict`.
      ema_params: an exponential moving average of the parameters, which
        evaluation and prediction use; None when `ema_decay` is 0.
      ema_decay: the average's decay per step (static).
      inputs: how raw features become the model's inputs (static): the
        training data's scaling (`jaxdl.data.transforms.Inputs`), which
        `predict` and `evaluate` apply to raw rows; None: the model takes
        the features as given.
      class_names: the classes' names, when the data has them (static).
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array
    model_state: dict
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    model: Any = struct.field(pytree_node=False, default=None)
    head: str = struct.field(pytree_node=False, default="identity")
    input_shape: tuple[int, ...] = struct.field(pytree_node=False, default=())
    ema_params: Any = None
    ema_decay: float = struct.field(pytree_node=False, default=0.0)
    inputs: Any = struct.field(pytree_node=False, default=None)
    class_names: tuple[str, ...] = struct.field(pytree_node=False, default=())

    def apply_gradients(self, grads: Any, model_state: dict) -> "TrainState":
        """One optimizer update: the new state after applying `grads` (and the average, if kept)."""
        updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
        params = optax.apply_updates(self.params, updates)
        ema_params = self.ema_params
        if ema_params is not None:
            decay = self.ema_decay
            ema_params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)
        return self.replace(
            step=self.step + 1, params=params, opt_state=opt_state, model_state=model_state, ema_params=ema_params,
        )

    def variables(self) -> dict:
        """The model's variables for evaluation and prediction (the averaged parameters, when kept)."""
        params = self.params if self.ema_params is None else self.ema_params
        return {"params": params, **self.model_state}


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
    ema_decay: float = 0.0,
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
      ema_decay: > 0: keep an exponential moving average of the parameters
        (starting from the initial ones) for evaluation.
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
        ema_params=jax.tree.map(jnp.copy, params) if ema_decay else None,
        ema_decay=float(ema_decay),
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
