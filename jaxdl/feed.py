"""Feeding the train step: from the host pipeline, or from a split that lives on the device.

A feed knows nothing of the model, the loss or the step: it is handed a
pure train step `(state, batch) -> (state, totals)` (already vmapped over an
ensemble's members) and any batch pytree (a dict of arrays). Both feeds run
that step over the same plan of examples
(`data.order`), so for a given seed they train on the same batches in the
same order; they differ only in where the batch is assembled.

- `HostFeed`: the grain pipeline assembles each batch on the host and the
  compiled step receives it. For data of any size.
- `ResidentFeed`: the whole (transformed) split is copied to the device
  once; each epoch's plan is computed there from (seed, epoch) and each step
  gathers its batch on the device. Nothing but a step number crosses from
  the host per step. For data that fits in device memory.

Under a `parallel.Strategy` other than one device, both split each batch
across the devices (or, for an ensemble, the members). An ensemble's member k
reads the data in the order of seed + k: its batches are stacked on a member
axis, (K, batch, ...).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import ensemble, parallel
from jaxdl.data import order
from jaxdl.data.pipeline import HostPipeline, Source
from jaxdl.errors import InputError

from jaxdl.config import PIPELINES  # noqa: E402 -- the choices live with the config schema


class _Feed:
    """What the loop asks of a feed: `run_steps`, and `run_epoch` on top of it."""

    steps_per_epoch: int

    def run_steps(self, state, totals, epoch: int, start: int = 0, stop: int | None = None, interrupt=None):
        """Trains steps `start` to `stop` (default: the end) of `epoch`, adding to `totals`.

        `interrupt()` is asked after every compiled call; when it says True the
        feed stops there.

        Returns:
          (state, totals, the step of the epoch reached).
        """
        raise NotImplementedError

    def run_epoch(self, state, totals, epoch: int):
        """Trains one epoch; returns the new state and the summed metric totals."""
        state, totals, _ = self.run_steps(state, totals, epoch)
        return state, totals


class HostFeed(_Feed):
    """Batches from a `HostPipeline`, one compiled step call per batch."""

    kind = "host"

    def __init__(
        self,
        pipelines: list[HostPipeline],
        train_step,
        *,
        epochs: int = 1,
        steps_per_call: int = 1,
        strategy: parallel.Strategy = parallel.SINGLE,
    ):
        """One pipeline per ensemble member (one in all for a single model)."""
        self.pipelines = pipelines
        self.epochs = epochs
        self.strategy = strategy
        self.steps_per_epoch = pipelines[0].steps_per_epoch
        self.steps_per_call = min(steps_per_call, self.steps_per_epoch)
        self._step = parallel.compile_train_step(train_step, strategy)
        self._steps = parallel.compile_train_steps(train_step, strategy)
        self._iterators, self._last_epoch = None, 0

    def _next(self) -> dict:
        batches = [next(it) for it in self._iterators]
        if not self.strategy.members:
            return batches[0]
        return {key: np.stack([batch[key] for batch in batches]) for key in batches[0]}  # (members, batch, ...)

    def run_steps(self, state, totals, epoch: int, start: int = 0, stop: int | None = None, interrupt=None):
        """See `_Feed.run_steps`."""
        stop = self.steps_per_epoch if stop is None else stop
        # One iterator for the run, so that worker processes start once.
        position = {"epoch": epoch, "step": start}
        iterators = self._iterators
        if not (iterators is not None and iterators[0].get_state() == position and epoch <= self._last_epoch):
            self._last_epoch = max(epoch, self.epochs)
            self._iterators = [p.iterator(last_epoch=self._last_epoch, state=position) for p in self.pipelines]
        totals = parallel.place_state(self.strategy, totals)
        step = start
        while step < stop:
            count = call_size(self.steps_per_call, stop - step)
            if count == 1:
                state, totals = self._step(state, totals, parallel.place_batch(self.strategy, self._next()))
            else:
                group = [self._next() for _ in range(count)]
                stacked = {key: np.stack([batch[key] for batch in group]) for key in group[0]}
                state, totals = self._steps(state, totals, parallel.place_batch(self.strategy, stacked, axis=1))
            step += count
            if interrupt is not None and step < stop and interrupt():
                break
        return state, totals, step


class ResidentFeed(_Feed):
    """A split held on the device, its batches gathered there by a plan computed there."""

    kind = "device"

    def __init__(
        self,
        data,
        train_step,
        *,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_remainder: bool = False,
        shard_index: int = 0,
        shard_count: int = 1,
        transform=None,
        steps_per_call: int | None = None,
        strategy: parallel.Strategy = parallel.SINGLE,
    ):
        arrays = {**data.arrays, "mask": np.ones(len(data), np.float32)}
        if transform is not None:  # the same transform the host pipeline applies, on the whole split at once
            arrays = transform(arrays)
        arrays.pop("mask")
        self.strategy = strategy
        self._arrays = parallel.to_device(arrays, strategy)
        members = strategy.members
        self._seed = ensemble.seeds(seed, members) if members else np.int32(seed)
        self.steps_per_epoch = order.steps_per_epoch(
            len(data), batch_size, shard_count=shard_count, drop_remainder=drop_remainder
        )
        plan = functools.partial(
            order.epoch_indices, len(data), batch_size, shuffle=shuffle, drop_remainder=drop_remainder,
            shard_index=shard_index, shard_count=shard_count, xp=jnp,
        )
        def epoch_plan(seed, epoch):
            if not members:
                return plan(seed=seed, epoch=epoch)
            # Each member's plan, stacked after the step axis: (steps, members, batch).
            indices, mask = jax.vmap(lambda s: plan(seed=s, epoch=epoch))(seed)
            return indices.swapaxes(0, 1), mask.swapaxes(0, 1)

        self.steps_per_call = min(steps_per_call or self.steps_per_epoch, self.steps_per_epoch)
        # Many members' permutations are many sorts, which XLA's CPU backend runs in the
        # training's critical path. On the host they can run while the device trains.
        self._host_plan, self._next_plan = None, None
        if members and parallel.sorts_are_slow():
            self._host_plan = functools.partial(plan, xp=np)
        self._plan = parallel.compile_epoch_plan(epoch_plan, strategy)
        self._steps = parallel.compile_resident_train_steps(train_step, strategy)
        self._epoch = parallel.compile_resident_epoch(train_step, epoch_plan, strategy)

    def run_steps(self, state, totals, epoch: int, start: int = 0, stop: int | None = None, interrupt=None):
        """See `_Feed.run_steps`."""
        stop = self.steps_per_epoch if stop is None else stop
        totals = parallel.place_state(self.strategy, totals)
        whole_epoch = start == 0 and stop == self.steps_per_epoch
        if self._host_plan is not None:
            planned = self._next_plan
            indices, mask = planned[1] if planned is not None and planned[0] == epoch else self._members_plan(epoch)
        elif whole_epoch and self.steps_per_call == self.steps_per_epoch:  # the plan and every step in one call
            state, totals = self._epoch(state, totals, self._arrays, self._seed, np.int32(epoch))
            return state, totals, stop
        else:
            indices, mask = self._plan(self._seed, np.int32(epoch))
        step = start
        while step < stop:
            count = call_size(self.steps_per_call, stop - step)
            state, totals = self._steps(state, totals, self._arrays, indices, mask, np.int32(step), count)
            step += count
            if interrupt is not None and step < stop and interrupt():
                break
        if self._host_plan is not None and step == self.steps_per_epoch:
            # The device is still training (dispatch is asynchronous): plan the next epoch meanwhile.
            self._next_plan = (epoch + 1, self._members_plan(epoch + 1))
        return state, totals, step

    def _members_plan(self, epoch: int):
        plans = [self._host_plan(seed=seed, epoch=epoch) for seed in self._seed]
        return tuple(np.stack([p[i] for p in plans], axis=1) for i in (0, 1))  # (steps, members, batch)


def call_size(steps_per_call: int, remaining: int) -> int:
    """Steps in the next compiled call: `steps_per_call`, or for fewer remaining, the largest power of two that fits.

    Each distinct size compiles once; a run stopped at arbitrary steps (for
    checkpoints) therefore compiles at most log2(steps_per_call) more shapes.
    """
    if remaining >= steps_per_call:
        return steps_per_call
    return 1 << (remaining.bit_length() - 1)


def nbytes(data) -> int:
    """Bytes an in-memory split takes."""
    return int(sum(np.asarray(a).nbytes for a in data.arrays.values()))


def make(
    data: Source,
    train_step,
    *,
    batch_size: int,
    seed: int,
    shuffle: bool = True,
    drop_remainder: bool = False,
    pipeline: str = "auto",
    device_max_bytes: int = 256 << 20,
    transform=None,
    workers: int = 0,
    shard_index: int = 0,
    shard_count: int = 1,
    epochs: int = 1,
    steps_per_call: int | str = "auto",
    loops_are_slow: bool = False,
    strategy: parallel.Strategy = parallel.SINGLE,
) -> HostFeed | ResidentFeed:
    """Picks the feed: on the device when the split is in memory and under `device_max_bytes`.

    Args:
      pipeline: "auto", "device" (the split must be an in-memory ArrayDataset)
        or "host" (the grain pipeline).
      epochs: how many epochs the host pipeline's iterator spans.
      train_step: the pure step `(state, batch) -> (state, totals)`, vmapped
        over the members for an ensemble.
      steps_per_call: train steps per compiled call (fused with `lax.scan`):
        an integer, "epoch", or "auto" (an epoch on the device path, one
        step on the host path, where a call's batches are stacked on the host;
        one step when `loops_are_slow`, see `parallel.loops_are_slow`).
      batch_size: the global batch; with several processes (`shard_count`),
        each reads batch_size / shard_count rows of it per step.
      strategy: where the steps run (`parallel.choose`).

    Raises:
      InputError: for an unknown pipeline, or "device" with a split that is
        not held in memory or with several processes.
    """
    if pipeline not in PIPELINES:
        raise InputError(f"data.pipeline={pipeline!r} is not known; expected one of: {', '.join(PIPELINES)}")
    in_memory = hasattr(data, "arrays")
    if pipeline == "device" and not in_memory:
        raise InputError("data.pipeline='device' needs a split held in memory; this one is read from files: use 'host'")
    if pipeline == "device" and shard_count > 1:
        raise InputError(f"data.pipeline='device' runs in one process, but {shard_count} processes joined this run: use 'host'")
    on_device = pipeline == "device" or (
        pipeline == "auto" and in_memory and shard_count == 1 and nbytes(data) <= device_max_bytes
    )
    batch_size = local_batch_size(batch_size, shard_count)
    steps = order.steps_per_epoch(len(data), batch_size, shard_count=shard_count, drop_remainder=drop_remainder)
    per_call = resolve_steps_per_call(steps_per_call, steps_per_epoch=steps, on_device=on_device)
    if steps_per_call == "auto" and loops_are_slow:
        per_call = 1
    if on_device:
        return ResidentFeed(
            data, train_step, batch_size=batch_size, seed=seed, shuffle=shuffle, drop_remainder=drop_remainder,
            shard_index=shard_index, shard_count=shard_count, transform=transform, steps_per_call=per_call,
            strategy=strategy,
        )
    member_seeds = ensemble.seeds(seed, strategy.members) if strategy.members else [seed]
    hosts = [
        HostPipeline(
            data, batch_size=batch_size, seed=int(member_seed), shuffle=shuffle, drop_remainder=drop_remainder,
            shard_index=shard_index, shard_count=shard_count, transform=transform, workers=workers,
        )
        for member_seed in member_seeds
    ]
    return HostFeed(hosts, train_step, epochs=epochs, steps_per_call=per_call, strategy=strategy)


def local_batch_size(batch_size: int, shard_count: int, *, argument: str = "train.batch_size") -> int:
    """The rows of each global batch that one of `shard_count` processes reads.

    Raises:
      InputError: when the global batch does not divide over the processes.
    """
    if batch_size % shard_count:
        raise InputError(
            f"{argument}={batch_size} does not divide over the {shard_count} processes of this run; "
            f"expected a multiple of {shard_count}"
        )
    return batch_size // shard_count


def resolve_steps_per_call(value: int | str, *, steps_per_epoch: int, on_device: bool) -> int:
    """The number of steps per compiled call that `value` ("auto", "epoch", or an integer) means.

    Raises:
      InputError: for anything else, or an integer below 1.
    """
    if value == "auto":
        return steps_per_epoch if on_device else 1
    if value == "epoch":
        return steps_per_epoch
    try:
        count = int(value)
    except (TypeError, ValueError):
        count = 0
    if isinstance(value, bool) or count < 1 or str(count) != str(value).strip():
        raise InputError(f"train.steps_per_call={value!r}: expected a positive integer, 'epoch' or 'auto'")
    return min(count, steps_per_epoch)
