"""Sums over the devices that share one batch, for steps that may run under `pmap`.

A step is written for one whole batch. Under `parallel='pmap'` each device
runs it on its slice of the batch, so whatever the step sums over the batch
(gradients, counts of real rows) must also be summed over the devices. A step
says so with `psum` / `pmean`; the strategy layer names the axis while it
traces the step, and everywhere else (one device, a mesh, where XLA
partitions the whole-batch program itself) these are the identity.

    grads = jaxdl.parallel.psum(grads)   # in a Task's train_step
"""

import contextlib
import contextvars

import jax

_AXIS: contextvars.ContextVar[str | None] = contextvars.ContextVar("jaxdl_batch_axis", default=None)


def batch_axis() -> str | None:
    """The named axis the current step is being traced under (pmap), or None."""
    return _AXIS.get()


@contextlib.contextmanager
def tracing_under(axis: str | None):
    """Names the mapped batch axis while a step is traced (the strategy layer's business)."""
    token = _AXIS.set(axis)
    try:
        yield
    finally:
        _AXIS.reset(token)


def psum(tree):
    """Sums `tree` over the devices sharing the batch under pmap; returns it unchanged elsewhere."""
    axis = _AXIS.get()
    return tree if axis is None else jax.lax.psum(tree, axis)


def pmean(tree):
    """Averages `tree` over the devices sharing the batch under pmap; returns it unchanged elsewhere."""
    axis = _AXIS.get()
    return tree if axis is None else jax.lax.pmean(tree, axis)
