"""Compiled training, evaluation and prediction calls, for every strategy.

Each call runs a Task's pure step, `(state, batch) -> (state, totals)`, over
any batch pytree: one step per call, K steps fused with `lax.scan`, or a
whole epoch whose batches are gathered from a split held on the device. A
`Strategy` (see `strategy.py`) decides whether the call is a plain
`jax.jit`, a `jax.pmap`, or a `jax.jit` over a mesh; nothing here looks
inside the state or the batch.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from jaxdl import metrics
from jaxdl.parallel import collectives
from jaxdl.parallel.strategy import AXIS, SINGLE, Strategy, keep_placed, place_state, split


def init_state(init: Callable, seed: int, members: int = 0):
    """`init(PRNGKey(seed))` compiled as one program; for an ensemble, member k is `init(PRNGKey(seed + k))`.

    Run op by op, initialisation compiles each of its dozens of small
    operations separately (about 1.5 s for the tutorial's network on a CPU).
    """
    # The seed is an argument of the one program (not a constant in it): every seed reuses the same program.
    if not members:
        return jax.jit(lambda seed: init(jax.random.PRNGKey(seed)))(np.int32(seed))
    return jax.jit(lambda seeds: jax.vmap(init)(jax.vmap(jax.random.PRNGKey)(seeds)))(
        np.arange(seed, seed + members, dtype=np.int32))


def _compile(strategy: Strategy, fn: Callable, *, data_axes: tuple, static_argnums: tuple = ()) -> Callable:
    """Compiles fn(state, totals, *data) for the strategy, donating the state and totals.

    Under pmap the state and totals are broadcast to every device and come
    back once (they are equal on all of them); `data_axes` says which axis of
    each data argument is mapped over the devices (None: broadcast).
    """
    if strategy.kind != "pmap":
        return jax.jit(fn, donate_argnums=(0, 1), static_argnums=static_argnums)
    fn = _traced_under_axis(fn)
    if any(axis is not None for axis in data_axes):
        return _one_at_a_time(jax.pmap(
            fn, axis_name=AXIS, in_axes=(None, None, *data_axes), out_axes=(None, None),
            static_broadcasted_argnums=static_argnums, donate_argnums=(0, 1),
        ))
    # pmap needs one mapped argument to count the devices by: each device's index.
    mapped = jax.pmap(
        lambda state, totals, _index, *data: fn(state, totals, *data), axis_name=AXIS,
        in_axes=(None, None, 0, *data_axes), out_axes=(None, None),
        static_broadcasted_argnums=tuple(i + 1 for i in static_argnums), donate_argnums=(0, 1),
    )
    indices = np.arange(jax.local_device_count())
    return _one_at_a_time(lambda state, totals, *data: mapped(state, totals, indices, *data))


def _one_at_a_time(call: Callable) -> Callable:
    """On the CPU backend, waits for each pmap call before the next is dispatched.

    With several executions of a pmap program in flight on simulated CPU
    devices, XLA's CPU collectives have deadlocked ("Expected 8 threads to
    join the rendezvous, but only 7 of them arrived"), aborting the process
    under load. One call at a time costs the overlap of host and device work,
    which a CPU does not have anyway. Other backends are left asynchronous.
    """
    if jax.default_backend() != "cpu":
        return call

    def waited(*args):
        return jax.block_until_ready(call(*args))

    return waited


def _traced_under_axis(fn: Callable) -> Callable:
    """fn, naming the pmap axis while it is traced, so that `collectives.psum` in a step sums over the devices."""

    @functools.wraps(fn)
    def traced(*args):
        with collectives.tracing_under(AXIS):
            return fn(*args)

    return traced


def check_pmap_step(train_step: Callable, state, batch, devices: int) -> str | None:
    """Whether `train_step` returns the same state on every device under pmap; the reason if it does not.

    Traced abstractly as a vmap over `devices` slices of the batch with the
    pmap axis's name: a state output that depends on a device's own slice
    (gradients not summed with `collectives.psum`) cannot leave unmapped.
    Nothing is computed or compiled.
    """
    split = jax.tree.map(
        lambda a: jax.ShapeDtypeStruct((devices, a.shape[0] // devices, *a.shape[1:]), a.dtype), batch)
    mapped = jax.vmap(_traced_under_axis(train_step), in_axes=(None, 0), out_axes=(None, 0), axis_name=AXIS,
                      axis_size=devices)
    try:
        jax.eval_shape(mapped, state, split)
    except ValueError as err:
        return str(err).splitlines()[0]
    return None


def _accumulate(train_step: Callable, strategy: Strategy, state, totals, batch):
    state, batch_totals = train_step(state, batch)
    # Under pmap each device's totals cover its slice of the batch: summed over the devices here.
    return keep_placed(strategy, state), metrics.merge(totals, metrics.reduce_over_devices(batch_totals))


def compile_train_step(train_step: Callable, strategy: Strategy = SINGLE) -> Callable:
    """Compiles a train step that also adds its metric totals to running totals.

    Keeping the sum on the device means the host fetches metrics once per
    epoch, not once per step. The state and the running totals are donated:
    their buffers are reused for the outputs, so the caller must use the
    returned ones.

    Returns:
      step(state, totals, batch) -> (state, totals), the batch placed by
      `strategy.place_batch`.
    """
    return _compile(strategy, functools.partial(_accumulate, train_step, strategy), data_axes=(0,))


def _scan_steps(train_step: Callable, strategy: Strategy, state, totals, batches):
    """Runs `train_step` over the leading axis of `batches` with `lax.scan`, summing the totals."""

    def body(carry, batch):
        return _accumulate(train_step, strategy, *carry, batch), None

    (state, totals), _ = jax.lax.scan(body, (state, totals), batches)
    return state, totals


def compile_train_steps(train_step: Callable, strategy: Strategy = SINGLE) -> Callable:
    """Compiles K train steps in one call over host batches stacked on a leading axis of size K.

    Returns:
      steps(state, totals, batches) -> (state, totals). One compile per K.
    """
    return _compile(strategy, functools.partial(_scan_steps, train_step, strategy), data_axes=(1,))


def _gather(arrays: dict, rows: jax.Array, mask: jax.Array) -> dict:
    """The batch of `rows` from a split held on the device (any dict of arrays), with its row mask."""
    return {**jax.tree.map(lambda a: jnp.take(a, rows, axis=0), arrays), "mask": mask}


def compile_resident_train_steps(train_step: Callable, strategy: Strategy = SINGLE) -> Callable:
    """Compiles `count` train steps in one call, their batches gathered on the device.

    Returns:
      steps(state, totals, arrays, indices, mask, start, count) -> (state, totals),
      where `arrays` holds the whole split (a dict of arrays) on the device,
      `indices` and `mask` (steps, batch) are the epoch's plan, and the call
      runs plan rows `start` to `start + count`. `count` is static: one
      compile per distinct count (an epoch's last, shorter call is a second).
      Each device gathers only its share of the rows (`strategy.split`).
    """

    def gather_and_scan(state, totals, arrays, indices, mask, start, count):
        if count == 1:  # no loop: see `loops_are_slow`
            rows, row_mask = split(
                strategy,
                (jax.lax.dynamic_index_in_dim(indices, start, keepdims=False),
                 jax.lax.dynamic_index_in_dim(mask, start, keepdims=False)),
                axis=0,
            )
            return _accumulate(train_step, strategy, state, totals, _gather(arrays, rows, row_mask))
        rows, row_mask = split(
            strategy,
            (jax.lax.dynamic_slice_in_dim(indices, start, count), jax.lax.dynamic_slice_in_dim(mask, start, count)),
            axis=1,
        )
        return _scan_steps(train_step, strategy, state, totals, _gather(arrays, rows, row_mask))  # (count, batch, ...)

    return _compile(strategy, gather_and_scan, data_axes=(None,) * 4, static_argnums=(6,))


def compile_resident_epoch(train_step: Callable, plan: Callable, strategy: Strategy = SINGLE) -> Callable:
    """Compiles a whole epoch on a device-resident split: its plan and all its steps, one call.

    Returns:
      epoch(state, totals, arrays, seed, epoch) -> (state, totals).
    """

    def run_epoch(state, totals, arrays, seed, epoch):
        indices, mask = split(strategy, plan(seed, epoch), axis=1)
        return _scan_steps(train_step, strategy, state, totals, _gather(arrays, indices, mask))

    return _compile(strategy, run_epoch, data_axes=(None,) * 3)


def loops_are_slow(fn: Callable, *args) -> bool:
    """Whether fusing calls of `fn(*args)` (abstract arguments will do) into a `lax.scan` loop would slow it down here.

    XLA's CPU backend runs convolutions inside a loop far slower than outside
    one: a small CNN trained 161 examples/s in a scan against 1,230 with one
    call per step (jax 0.10.2, 2 cores). Dense layers are not affected.
    """
    if jax.default_backend() != "cpu":
        return False
    return "conv_general_dilated" in str(jax.make_jaxpr(fn)(*args))


def sorts_are_slow() -> bool:
    """Whether sorting on the device is slow enough to plan epochs on the host instead.

    XLA's CPU backend sorts with a compiled comparator called per comparison:
    64 permutations of 455 keys take ~3 ms, against ~0.7 ms with numpy.
    """
    return jax.default_backend() == "cpu"


def compile_epoch_plan(plan: Callable, strategy: Strategy = SINGLE) -> Callable:
    """Jit-compiles plan(seed, epoch) -> (indices, mask), so each epoch's order is computed on the device.

    Under pmap or a mesh the plan is computed whole on every device, where the
    steps that read it expect it.
    """
    if strategy.mesh is None:
        return jax.jit(plan)
    return jax.jit(plan, out_shardings=NamedSharding(strategy.mesh, PartitionSpec()))


def to_device(tree, strategy: Strategy = SINGLE):
    """Copies a pytree of host arrays to the devices once, to stay there (whole on each device)."""
    if strategy.mesh is None:
        return jax.device_put(tree)
    return place_state(Strategy("mesh", strategy.mesh), tree)


def compile_eval_step(eval_step: Callable) -> Callable:
    """Jit-compiles an eval step that adds its totals to running totals.

    Returns:
      step(state, totals, batch) -> (totals, what the step collected of the
      batch: the per-example arrays it returned under `metrics.COLLECTED`).
    """

    def step_and_accumulate(state, totals, batch):
        batch_totals = dict(eval_step(state, batch))
        collected = batch_totals.pop(metrics.COLLECTED, {})
        return metrics.merge(totals, batch_totals), collected

    return jax.jit(step_and_accumulate, donate_argnums=(1,))


def compile_predict_step(predict_step: Callable) -> Callable:
    """Jit-compiles predict(state, x)."""
    return jax.jit(predict_step)


