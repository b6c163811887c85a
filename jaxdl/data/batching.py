"""Cutting an in-memory dataset into batches: seeded shuffles per epoch and a padded last batch.

Remainder policy: when the batch size does not divide the dataset, the last
batch of an epoch is padded to the full batch size with rows whose mask is 0.
Every example is seen exactly once per epoch, the padded rows change neither
the loss nor the gradient (the loss is the mean over real rows), and every
step has the same shape, so the step compiles once. `drop_remainder=True`
drops those examples from the epoch instead (a different set each epoch,
since the order is shuffled).
"""

from collections.abc import Iterator

import numpy as np

from jaxdl.data.arrays import ArrayDataset
from jaxdl.errors import InputError

Batch = dict[str, np.ndarray]


def check_batch_size(batch_size, num_examples: int, *, argument: str = "train.batch_size") -> None:
    """Checks a batch size against the dataset it cuts.

    Raises:
      InputError: for a batch size that is not a positive integer, or that is
        larger than the dataset.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"{argument}={batch_size!r}: expected a positive integer")
    if batch_size > num_examples:
        raise InputError(
            f"{argument}={batch_size} is larger than the dataset ({num_examples} examples); "
            f"expected at most {num_examples}"
        )


def steps_per_epoch(num_examples: int, batch_size: int, *, drop_remainder: bool = False) -> int:
    """Batches in one epoch under the remainder policy."""
    return num_examples // batch_size if drop_remainder else -(-num_examples // batch_size)


def epoch_order(num_examples: int, *, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The order of examples in an epoch: a permutation fixed by (seed, epoch)."""
    if not shuffle:
        return np.arange(num_examples)
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def _batches(data: ArrayDataset, order: np.ndarray, batch_size: int, num_steps: int) -> Iterator[Batch]:
    total = num_steps * batch_size
    order = order[:total]
    mask = np.zeros(total, np.float32)
    mask[: len(order)] = 1.0
    # Padding rows repeat example order[0]; their mask of 0 removes them from loss and metrics.
    order = np.concatenate([order, np.full(total - len(order), order[0], order.dtype)])
    x, y = data.x[order], data.y[order]
    for i in range(num_steps):
        s = slice(i * batch_size, (i + 1) * batch_size)
        yield {"x": x[s], "y": y[s], "mask": mask[s]}


def epoch_batches(
    data: ArrayDataset, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True, drop_remainder: bool = False
) -> Iterator[Batch]:
    """The training batches of one epoch, in the order fixed by (seed, epoch)."""
    order = epoch_order(len(data), seed=seed, epoch=epoch, shuffle=shuffle)
    yield from _batches(data, order, batch_size, steps_per_epoch(len(data), batch_size, drop_remainder=drop_remainder))


def eval_batches(data: ArrayDataset, batch_size: int) -> Iterator[Batch]:
    """The whole dataset in order, in batches of `min(batch_size, len(data))`, the last one padded."""
    batch_size = min(batch_size, len(data))
    yield from _batches(data, np.arange(len(data)), batch_size, steps_per_epoch(len(data), batch_size))
