"""In-memory datasets: arrays of features and labels, their checks, and feature scaling."""

import dataclasses

import numpy as np

from jaxdl.errors import InputError


@dataclasses.dataclass(frozen=True)
class ArrayDataset:
    """Features `x` (N, ...) as float32 and labels `y` (N,) or targets (N, k)."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def read(self, indices: np.ndarray) -> dict:
        """The examples at `indices`, as a batch."""
        return {"x": self.x[indices], "y": self.y[indices]}

    @property
    def arrays(self) -> dict:
        """The split as a dict of arrays, examples along the first axis."""
        return {"x": self.x, "y": self.y}


@dataclasses.dataclass(frozen=True)
class Examples:
    """An in-memory split of any task: named arrays with the examples along their first axis.

    `Examples(x=images)` for an autoencoder, `Examples(x=windows, y=next_chars)`
    for a language model; a batch read from it has the same keys.
    """

    arrays: dict

    def __init__(self, arrays: dict | None = None, **named):
        arrays = {**(arrays or {}), **named}
        if not arrays:
            raise InputError("Examples: no arrays given; expected named arrays with examples along the first axis")
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise InputError(f"Examples: the arrays have different numbers of examples: {lengths}")
        if "mask" in arrays:
            raise InputError("Examples: 'mask' is the name the pipeline gives its row mask; rename that array")
        object.__setattr__(self, "arrays", arrays)

    def __len__(self) -> int:
        return len(next(iter(self.arrays.values())))

    def read(self, indices: np.ndarray) -> dict:
        """The examples at `indices`, as a batch."""
        return {k: v[indices] for k, v in self.arrays.items()}


def from_arrays(x, y, *, argument: str = "train_data") -> ArrayDataset:
    """Checks a pair of arrays and wraps it as a dataset.

    Raises:
      InputError: for non-numeric or non-finite features, features without a
        feature axis, or a different number of rows in `x` and `y`.
    """
    try:
        x = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise InputError(f"{argument}: features must be numbers ({err})") from None
    y = np.asarray(y)
    if x.ndim < 2:
        raise InputError(
            f"{argument}: features have shape {x.shape}; expected (examples, features), "
            "e.g. x.reshape(-1, 1) for a single feature"
        )
    if len(x) != len(y):
        raise InputError(f"{argument}: {len(x)} feature rows but {len(y)} labels; expected one label per row")
    if len(x) == 0:
        raise InputError(f"{argument}: the dataset is empty")
    if not np.all(np.isfinite(x)):
        row = int(np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))[0])
        raise InputError(f"{argument}: features contain a non-finite value (NaN or inf) in row {row}")
    if y.dtype.kind in "iub":
        y = y.astype(np.int32)
    elif y.dtype.kind == "f":
        y = y.astype(np.float32)
    return ArrayDataset(x, y)


SCALINGS = ("standard", "minmax", "none")


@dataclasses.dataclass(frozen=True)
class Scaler:
    """Feature scaling `(x - offset) / scale`, fitted on training data only."""

    kind: str
    offset: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, kind: str = "standard") -> "Scaler":
        """Fits the scaling to training features.

        "standard" gives each feature mean 0 and variance 1; "minmax" maps it
        to [0, 1]; "none" leaves it. Constant features keep scale 1.

        Raises:
          InputError: for an unknown kind.
        """
        if kind not in SCALINGS:
            raise InputError(f"data.scaling={kind!r} is not known; expected one of: {', '.join(SCALINGS)}")
        x = np.asarray(x, np.float64)
        if kind == "standard":
            offset, scale = x.mean(axis=0), x.std(axis=0)
        elif kind == "minmax":
            offset, scale = x.min(axis=0), x.max(axis=0) - x.min(axis=0)
        else:
            offset, scale = np.zeros(x.shape[1:]), np.ones(x.shape[1:])
        scale = np.where(scale > 0, scale, 1.0)
        return cls(kind, offset.astype(np.float32), scale.astype(np.float32))

    @classmethod
    def fit_batches(cls, batches, kind: str = "standard") -> "Scaler":
        """Fits the scaling in one pass over batches of features, for data not held in memory."""
        if kind not in SCALINGS:
            raise InputError(f"data.scaling={kind!r} is not known; expected one of: {', '.join(SCALINGS)}")
        count, total, squares, low, high = 0, 0.0, 0.0, np.inf, -np.inf
        for x in batches:
            x = np.asarray(x, np.float64)
            count, total, squares = count + len(x), total + x.sum(axis=0), squares + np.square(x).sum(axis=0)
            low, high = np.minimum(low, x.min(axis=0)), np.maximum(high, x.max(axis=0))
        mean = total / count
        if kind == "standard":
            offset, scale = mean, np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        elif kind == "minmax":
            offset, scale = low, high - low
        else:
            offset, scale = np.zeros_like(mean), np.ones_like(mean)
        scale = np.where(scale > 0, scale, 1.0)
        return cls(kind, np.asarray(offset, np.float32), np.asarray(scale, np.float32))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Scales features the way the training features were scaled."""
        return ((np.asarray(x, np.float32) - self.offset) / self.scale).astype(np.float32)

    def to_dict(self) -> dict:
        """A JSON-ready form, to save with a run."""
        return {"kind": self.kind, "offset": self.offset.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "Scaler":
        return cls(d["kind"], np.asarray(d["offset"], np.float32), np.asarray(d["scale"], np.float32))
