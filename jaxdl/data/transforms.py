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


@dataclasses.dataclass(frozen=True)
class Inputs:
    """How raw features become a model's inputs: the training split's fitted scaling, or images' pixel scaling.

    A trained state carries it (`TrainState.inputs`), so that `predict` and
    `evaluate` take raw rows, as the training data was before it was scaled.
    Hashable (a static field of the state): the scaling is kept as tuples.
    """

    kind: str  # "scaler" or "images"
    offset: tuple = ()  # scaler: (x - offset) / scale, per feature
    scale: tuple = ()
    scaling: str = ""  # the scaler's kind: standard, minmax
    mean: tuple = ()  # images: x / 255, then (x - mean) / std per channel
    std: tuple = ()

    @classmethod
    def of(cls, scaler: Scaler | None, transform: "Chain | None") -> "Inputs | None":
        """The raw-input preparation of a dataset's splits (`data.Splits`), or None when raw is what the model takes."""
        if scaler is not None:
            return cls("scaler", tuple(scaler.offset.ravel().tolist()), tuple(scaler.scale.ravel().tolist()),
                       scaling=scaler.kind)
        for step in getattr(transform, "transforms", ()):
            if isinstance(step, NormalizeImages):
                return cls("images", mean=tuple(step.mean), std=tuple(step.std))
        return None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Raw features (N, ...) as the model's inputs."""
        if self.kind == "images":
            return NormalizeImages(self.mean, self.std)({"x": x})["x"]
        offset = np.asarray(self.offset, np.float32).reshape(np.shape(x)[1:])
        scale = np.asarray(self.scale, np.float32).reshape(np.shape(x)[1:])
        return ((np.asarray(x, np.float32) - offset) / scale).astype(np.float32)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> "Inputs":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
