"""Host-side transforms of batches: plain callables on numpy arrays, picklable for worker processes.

A transform maps a batch dict (`x`, `y`, `mask`) to a new one. The same
transform applied to a whole split at once gives the same numbers as applied
batch by batch, which is how the device-resident path and the host pipeline
stay identical.
"""

import dataclasses

import numpy as np

from jaxdl.data.arrays import Scaler


@dataclasses.dataclass(frozen=True)
class Scale:
    """Feature scaling fitted on the training split: `(x - offset) / scale`."""

    scaler: Scaler

    def __call__(self, batch: dict) -> dict:
        return {**batch, "x": self.scaler.transform(batch["x"])}


@dataclasses.dataclass(frozen=True)
class NormalizeImages:
    """uint8 pixel values to float32 in [0, 1], then `(x - mean) / std` per channel."""

    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)

    def __call__(self, batch: dict) -> dict:
        x = np.asarray(batch["x"], np.float32) / np.float32(255.0)
        x = (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        return {**batch, "x": x}


@dataclasses.dataclass(frozen=True)
class Flatten:
    """Each example's features to one vector, for models that take vectors (the MLP)."""

    def __call__(self, batch: dict) -> dict:
        x = np.asarray(batch["x"])
        return {**batch, "x": x.reshape(x.shape[0], -1)}


@dataclasses.dataclass(frozen=True)
class OneHot:
    """Integer class labels to one-hot float32 rows (categorical cross-entropy takes either)."""

    num_classes: int

    def __call__(self, batch: dict) -> dict:
        y = np.asarray(batch["y"]).astype(np.int64)
        return {**batch, "y": np.eye(self.num_classes, dtype=np.float32)[y]}


@dataclasses.dataclass(frozen=True)
class Chain:
    """Several transforms, applied in order."""

    transforms: tuple = ()

    def __call__(self, batch: dict) -> dict:
        for transform in self.transforms:
            batch = transform(batch)
        return batch
