"""Data for training: sources (embedded, TFDS, CSV, arrays), splits, the pipeline and its plan.

The loop sees `load`, `from_arrays` and the feeds built on `pipeline` and
`order`; where a dataset comes from stays inside this package.
"""

from jaxdl.data.arrays import SCALINGS, ArrayDataset, Examples, Scaler, from_arrays
from jaxdl.data.batching import check_batch_size, eval_batches
from jaxdl.data.order import epoch_indices, steps_per_epoch
from jaxdl.data.pipeline import HostPipeline
from jaxdl.data.sources import EMBEDDED, DatasetInfo, Splits, load
from jaxdl.data.transforms import Inputs

__all__ = [
    "EMBEDDED",
    "SCALINGS",
    "ArrayDataset",
    "DatasetInfo",
    "Examples",
    "HostPipeline",
    "Inputs",
    "Scaler",
    "Splits",
    "check_batch_size",
    "epoch_indices",
    "eval_batches",
    "from_arrays",
    "load",
    "steps_per_epoch",
]
