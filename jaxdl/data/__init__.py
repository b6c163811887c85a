"""Data for training: embedded datasets, numpy arrays, and batching.

The loop sees only `load`, `from_arrays`, and the batching functions, so
moving the embedded datasets behind TFDS changes this package alone.
"""

from jaxdl.data.arrays import SCALINGS, ArrayDataset, Scaler, from_arrays
from jaxdl.data.batching import check_batch_size, epoch_batches, eval_batches, steps_per_epoch
from jaxdl.data.embedded import EMBEDDED, DatasetInfo, Splits, load

__all__ = [
    "EMBEDDED",
    "SCALINGS",
    "ArrayDataset",
    "DatasetInfo",
    "Scaler",
    "Splits",
    "check_batch_size",
    "epoch_batches",
    "eval_batches",
    "from_arrays",
    "load",
    "steps_per_epoch",
]
