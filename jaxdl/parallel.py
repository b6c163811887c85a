"""Where and how steps run: the only module that compiles steps or knows about devices.

For now everything runs on one device with `jax.jit`. Data-parallel pmap,
mesh sharding, vmapped ensembles and multi-step fusion grow here, around the
same pure steps from `step.py`.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import numpy as np
import optax

from jaxdl import metrics, state as state_lib


# Compiled once per (model, input shape) in a process: repeated `fit` calls reuse it.
_compiled_init = jax.jit(state_lib.init_variables, static_argnums=(0, 2))


def create_state(
    model: nn.Module, tx: optax.GradientTransformation, *, rng: jax.Array, input_shape: tuple[int, ...]
) -> state_lib.TrainState:
    """Initialises a `TrainState`, the model's initialisation compiled as one program.

    Run op by op, initialisation compiles each of its dozens of small
    operations separately (about 1.5 s for the tutorial's network on a CPU).
    """
    return state_lib.create(model, tx, rng=rng, input_shape=input_shape, init=_compiled_init)


def compile_train_step(train_step: Callable) -> Callable:
    """Jit-compiles a train step that also adds its metric totals to running totals.

    Keeping the sum on the device means the host fetches metrics once per
    epoch, not once per step. The state and the running totals are donated:
    their buffers are reused for the outputs, so the caller must use the
    returned ones.

    Returns:
      step(state, totals, batch) -> (state, totals).
    """

    def step_and_accumulate(state, totals, batch):
        state, batch_totals = train_step(state, batch)
        return state, metrics.merge(totals, batch_totals)

    return jax.jit(step_and_accumulate, donate_argnums=(0, 1))


def compile_eval_step(eval_step: Callable) -> Callable:
    """Jit-compiles an eval step that adds its totals to running totals.

    Returns:
      step(state, totals, batch) -> (totals, scores of the batch).
    """

    def step_and_accumulate(state, totals, batch):
        batch_totals, scores = eval_step(state, batch)
        return metrics.merge(totals, batch_totals), scores

    return jax.jit(step_and_accumulate, donate_argnums=(1,))


def compile_predict_step(predict_step: Callable) -> Callable:
    """Jit-compiles predict(state, x)."""
    return jax.jit(predict_step)


def fetch(tree):
    """Copies a pytree of device arrays to host numpy arrays (waits for them)."""
    return jax.tree.map(np.asarray, jax.device_get(tree))


def device_summary() -> dict:
    """The devices this process computes on, for the run's manifest."""
    devices = jax.local_devices()
    return {"platform": devices[0].platform, "device_kind": devices[0].device_kind, "device_count": len(devices)}
