"""Where and how steps run: the only module that compiles steps or knows about devices.

For now everything runs on one device with `jax.jit`. Data-parallel pmap,
mesh sharding, vmapped ensembles and multi-step fusion grow here, around the
same pure steps from `step.py`.
"""

from collections.abc import Callable

import jax
import numpy as np

from jaxdl import metrics


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
