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


def batch_rows(local_rows: int) -> int:
    """The rows of the whole batch when this device holds `local_rows` of them (times the devices under pmap)."""
    axis = _AXIS.get()
    return local_rows if axis is None else local_rows * jax.lax.axis_size(axis)


def shard_rows(tree):
    """This device's rows of arrays drawn for the whole batch (pmap: an even split in device order; else all).

    A step that draws random numbers per row (a GAN's latent vectors) draws
    `batch_rows(n)` rows from one key and keeps `shard_rows` of them, so that
    the devices together draw what one device would: the same result under
    every strategy.
    """
    axis = _AXIS.get()
    if axis is None:
        return tree

    def mine(a):
        size = a.shape[0] // jax.lax.axis_size(axis)
        return jax.lax.dynamic_slice_in_dim(a, jax.lax.axis_index(axis) * size, size, 0)

    return jax.tree.map(mine, tree)
