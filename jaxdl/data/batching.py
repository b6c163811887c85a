"""Batch sizes, and the batches of a split in order for evaluation.

Remainder policy (training and evaluation alike): when the batch size does
not divide the split, the last batch is padded to the full batch size with
rows whose mask is 0. Every example is seen exactly once per epoch, the
padded rows change neither the loss nor the gradient (the loss is the mean
over real rows), and every step has the same shape, so the step compiles
once. `drop_remainder=True` drops those examples from a training epoch
instead (a different set each epoch, since the order is shuffled).
"""

from collections.abc import Callable, Iterator

import numpy as np

from jaxdl.data import order
from jaxdl.errors import InputError


def check_batch_size(batch_size, num_examples: int, *, argument: str = "train.batch_size") -> None:
    """Checks a batch size against the split it cuts.

    Raises:
      InputError: for a batch size that is not a positive integer, or that is
        larger than the split.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise InputError(f"{argument}={batch_size!r}: expected a positive integer")
    if batch_size > num_examples:
        raise InputError(
            f"{argument}={batch_size} is larger than the dataset ({num_examples} examples); "
            f"expected at most {num_examples}"
        )


def eval_batches(source, batch_size: int, *, transform: Callable | None = None) -> Iterator[dict]:
    """The whole split in order, in batches of `min(batch_size, len(source))`, the last one padded."""
    batch_size = min(batch_size, len(source))
    indices, mask = order.epoch_indices(len(source), batch_size, seed=0, epoch=0, shuffle=False)
    for rows, row_mask in zip(indices, mask):
        batch = {**source.read(rows), "mask": row_mask}
        yield transform(batch) if transform is not None else batch
