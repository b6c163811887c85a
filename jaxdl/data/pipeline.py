"""The host data pipeline: grain reading, transforming and prefetching one host's batches.

Each element of the grain dataset is one step's batch: the epoch's plan
(`order.epoch_indices`: seeded global shuffle, per-host shard, padded or
dropped remainder) says which examples a step reads, a source reads them in
one call, and the transforms run on the batch. grain supplies the iterator
and its state, threads, and optional worker processes.

One grain dataset spans all the epochs of a run (epoch-major global steps),
so worker processes start once. The iterator state is a small JSON-ready
dict, `{"epoch": e, "step": k}`; `iterator(state=...)` on a new pipeline
continues exactly where the saved one stopped, with or without workers.
"""

import functools
from collections.abc import Callable, Iterator
from typing import Protocol

import numpy as np
from absl import flags

from jaxdl.data import order


class Source(Protocol):
    """A random-access split: `len(source)` examples, `read(indices)` -> {"x": ..., "y": ...}."""

    def __len__(self) -> int: ...

    def read(self, indices: np.ndarray) -> dict: ...


class _ReadStep:
    """Reads the batch of one global step (epoch-major) of the plan; picklable for worker processes."""

    def __init__(self, pipeline: "HostPipeline"):
        self.source = pipeline.source
        self.transform = pipeline.transform
        self.steps = pipeline.steps_per_epoch
        self.plan = functools.partial(
            order.epoch_indices, len(pipeline.source), pipeline.batch_size, seed=pipeline.seed,
            shuffle=pipeline.shuffle, drop_remainder=pipeline.drop_remainder,
            shard_index=pipeline.shard_index, shard_count=pipeline.shard_count,
        )
        self._cached = None  # (epoch, indices, mask): each process computes an epoch's plan once

    def __call__(self, global_step: int) -> dict:
        epoch, step = divmod(int(global_step), self.steps)
        cached = self._cached  # one read: grain's reader threads share this object
        if cached is None or cached[0] != epoch + 1:
            cached = (epoch + 1, *self.plan(epoch=epoch + 1))
            self._cached = cached
        _, indices, mask = cached
        batch = {**self.source.read(indices[step]), "mask": mask[step]}
        return self.transform(batch) if self.transform is not None else batch


class HostPipeline:
    """Batches of a split for one host, epoch after epoch.

    Args:
      source: the split to read.
      batch_size: examples per batch on this host.
      seed: with the epoch number, fixes the order of examples.
      shuffle: shuffle each epoch (otherwise the split's order).
      drop_remainder: drop the last partial batch instead of padding it.
      shard_index: this host's shard (`jax.process_index()` on a multi-host run).
      shard_count: the number of shards (`jax.process_count()`).
      transform: applied to every batch on the host.
      workers: worker processes reading batches (0: read in this process,
        with grain's threads). Workers start once per iterator, so iterate
        over all epochs with one iterator.
    """

    def __init__(
        self,
        source: Source,
        *,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_remainder: bool = False,
        shard_index: int = 0,
        shard_count: int = 1,
        transform: Callable | None = None,
        workers: int = 0,
    ):
        self.source = source
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.transform = transform
        self.workers = workers
        self.steps_per_epoch = order.steps_per_epoch(
            len(source), batch_size, shard_count=shard_count, drop_remainder=drop_remainder
        )

    def iterator(self, epoch: int = 1, last_epoch: int | None = None, *, state: dict | None = None) -> "PipelineIterator":
        """Batches from the start of `epoch` to the end of `last_epoch` (default: `epoch` alone).

        With `state` (from `PipelineIterator.get_state`), starts where that
        iterator stood instead, and runs to the end of `last_epoch`.
        """
        start = (epoch - 1) * self.steps_per_epoch
        if state is not None:
            start = (state["epoch"] - 1) * self.steps_per_epoch + state["step"]
            epoch = state["epoch"]
        stop = (last_epoch if last_epoch is not None else epoch) * self.steps_per_epoch
        import grain  # imported where used: only the host pipeline needs it

        dataset = grain.MapDataset.range(start, stop).map(_ReadStep(self)).to_iter_dataset(
            grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)
        )
        if self.workers > 0:
            # grain's worker processes read absl flags, which a program that
            # never called absl.app.run has not parsed: take their defaults.
            if not flags.FLAGS.is_parsed():
                flags.FLAGS.mark_as_parsed()
            dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.workers))
        return PipelineIterator(iter(dataset), start, self.steps_per_epoch)


class PipelineIterator(Iterator[dict]):
    """Batches in order, with a small JSON-ready state: the epoch and step of the next batch."""

    def __init__(self, grain_iterator, start: int, steps_per_epoch: int):
        self._iterator = grain_iterator
        self._next = start
        self._steps = steps_per_epoch

    def __next__(self) -> dict:
        batch = next(self._iterator)
        self._next += 1
        return batch

    def get_state(self) -> dict:
        """Where the iterator stands: `{"epoch": e, "step": k}` of the next batch (counting epochs from 1)."""
        epoch, step = divmod(self._next, self._steps)
        return {"epoch": epoch + 1, "step": step}
