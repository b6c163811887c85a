"""The host data pipeline: grain reading, transforming and prefetching one host's batches.

Each element of the grain dataset is one step's batch: the epoch's plan
(`order.epoch_indices`: seeded global shuffle, per-host shard, padded or
dropped remainder) says which examples a step reads, a source reads them in
one call, and the transforms run on the batch. grain supplies the iterator
and its state, threads, and optional worker processes.

The iterator state is a small JSON-ready dict, `{"epoch": e, ...grain's
state...}`; `iterator(state=...)` on a new pipeline continues exactly where
the saved one stopped.
"""

from collections.abc import Callable, Iterator
from typing import Protocol

import grain
import numpy as np
from absl import flags

from jaxdl.data import order


class Source(Protocol):
    """A random-access split: `len(source)` examples, `read(indices)` -> {"x": ..., "y": ...}."""

    def __len__(self) -> int: ...

    def read(self, indices: np.ndarray) -> dict: ...


class _ReadStep:
    # A class, not a closure, so that grain can send it to worker processes.
    def __init__(self, source: Source, indices: np.ndarray, mask: np.ndarray, transform: Callable | None):
        self.source, self.indices, self.mask, self.transform = source, indices, mask, transform

    def __call__(self, step: int) -> dict:
        batch = {**self.source.read(self.indices[step]), "mask": self.mask[step]}
        return self.transform(batch) if self.transform is not None else batch


class HostPipeline:
    """Batches of a split for one host, epoch by epoch.

    Args:
      source: the split to read.
      batch_size: examples per batch on this host.
      seed: with the epoch number, fixes the order of examples.
      shuffle: shuffle each epoch (otherwise the split's order).
      drop_remainder: drop the last partial batch instead of padding it.
      shard_index, shard_count: this host's shard (`jax.process_index()` of
        `jax.process_count()` on a multi-host run).
      transform: applied to every batch on the host.
      workers: worker processes reading batches (0: read in this process,
        with grain's threads).
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

    def _dataset(self, epoch: int) -> grain.IterDataset:
        indices, mask = order.epoch_indices(
            len(self.source), self.batch_size, seed=self.seed, epoch=epoch, shuffle=self.shuffle,
            drop_remainder=self.drop_remainder, shard_index=self.shard_index, shard_count=self.shard_count,
        )
        steps = grain.MapDataset.range(self.steps_per_epoch)
        dataset = steps.map(_ReadStep(self.source, indices, mask, self.transform)).to_iter_dataset(
            grain.ReadOptions(num_threads=2, prefetch_buffer_size=4)
        )
        if self.workers > 0:
            # grain's worker processes read absl flags, which a program that
            # never called absl.app.run has not parsed: take their defaults.
            if not flags.FLAGS.is_parsed():
                flags.FLAGS.mark_as_parsed()
            dataset = dataset.mp_prefetch(grain.MultiprocessingOptions(num_workers=self.workers))
        return dataset

    def iterator(self, epoch: int = 1, *, state: dict | None = None) -> "PipelineIterator":
        """An iterator over one epoch's batches; with `state`, continues a saved iterator."""
        if state is not None:
            epoch = state["epoch"]
        iterator = PipelineIterator(epoch, iter(self._dataset(epoch)))
        if state is not None:
            iterator.set_state(state)
        return iterator


class PipelineIterator(Iterator[dict]):
    """One epoch's batches, with a small JSON-ready state."""

    def __init__(self, epoch: int, grain_iterator):
        self.epoch = epoch
        self._iterator = grain_iterator

    def __next__(self) -> dict:
        return next(self._iterator)

    def get_state(self) -> dict:
        """Where the iterator stands: the epoch and grain's own (small) state."""
        return {"epoch": self.epoch, **self._iterator.get_state()}

    def set_state(self, state: dict) -> None:
        """Moves to a state that `get_state` returned."""
        self._iterator.set_state({k: v for k, v in state.items() if k != "epoch"})
