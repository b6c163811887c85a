"""Where data comes from: embedded datasets, any TFDS dataset, CSV files; and the splits cut from them.

`load` returns a dataset's train / validation / test splits and how to use
them. Splits cut by jaxdl (test and validation carved from a dataset that
has only a train split) are stratified by class and fixed by
`split_seed`, so every run is tested on the same examples. Scaling is fitted
on the training split only.
"""

import dataclasses

import numpy as np

from jaxdl.data import csv_source, transforms
from jaxdl.data.arrays import ArrayDataset, Scaler
from jaxdl.errors import InputError

# The datasets that ship inside installed packages (jaxdl.data.tfds_source builds them as TFDS datasets).
# Named here so that importing jaxdl does not import TFDS, which only loading data needs.
EMBEDDED = ("breast_cancer", "digits", "iris", "wine", "colour_digits")


def _tfds_source():
    from jaxdl.data import tfds_source

    return tfds_source


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset."""

    name: str
    num_examples: int
    feature_shape: tuple[int, ...]  # one example, after the split's transform
    num_classes: int | None  # None for regression targets
    class_names: tuple[str, ...]
    description: str
    labels_read_as: str = ""  # for continuous targets read from a CSV file: what was read and why


@dataclasses.dataclass(frozen=True)
class Splits:
    """A dataset's splits, the host transform for their batches, and the fitted scaler."""

    train: ArrayDataset
    test: ArrayDataset
    info: DatasetInfo
    scaler: Scaler | None = None
    validation: ArrayDataset | None = None
    transform: transforms.Chain | None = None


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of a (train, held-out) cut: `fraction` of each class held out, chosen by `seed`.

    Labels that are not integer classes are cut without stratifying. Both
    row sets keep the dataset's order.
    """
    rng = np.random.default_rng(seed)
    groups = [np.arange(len(labels))] if labels.dtype.kind not in "iub" else [
        np.flatnonzero(labels == c) for c in np.unique(labels)
    ]
    held = np.concatenate([rng.permutation(rows)[: int(round(fraction * len(rows)))] for rows in groups])
    keep = np.ones(len(labels), bool)
    keep[held] = False
    return np.flatnonzero(keep), np.flatnonzero(~keep)


def _carve(x, y, fraction: float, seed: int, *, argument: str):
    train, held = stratified_split(y, fraction, seed)
    if len(train) == 0 or len(held) == 0:
        raise InputError(f"{argument}={fraction}: cutting {len(y)} examples this way leaves a split empty")
    return x[train], x[held], y[train], y[held]


def _check_fraction(value, argument: str, *, allow_zero: bool) -> float:
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low_ok and value < 1.0):
        raise InputError(f"{argument}={value!r}: expected a fraction in {'[0' if allow_zero else '(0'}, 1)")
    return float(value)


def load(
    name: str = "breast_cancer",
    *,
    data_dir: str | None = None,
    csv_path: str | None = None,
    label_column: str = "last",
    csv_header: str = "auto",
    csv_delimiter: str = ",",
    test_fraction: float = 0.2,
    validation_fraction: float = 0.0,
    split_seed: int = 0,
    scaling: str = "standard",
    one_hot: bool = False,
    in_memory_max_bytes: int = 2 << 30,
    continuous_labels: bool = False,
) -> Splits:
    """Loads a dataset and cuts its splits.

    Args:
      name: an embedded dataset (breast_cancer, digits, iris, wine,
        colour_digits), prepared as a TFDS dataset on first use, or any
        prepared TFDS dataset; ignored when `csv_path` is given ("csv" says that one must be).
      data_dir: the TFDS data directory (None: TFDS's default).
      csv_path: a CSV file of numbers to read instead (see `csv_source.read`).
      label_column: the CSV's label column: last, first, an index, or a header name.
      csv_header: whether the CSV's first row is a header: auto, true, false.
      csv_delimiter: the CSV's field separator.
      test_fraction: the part held out for testing when the dataset has no
        test split of its own.
      validation_fraction: the part of the training split held out for
        evaluation during training (0: evaluate on the test split).
      split_seed: fixes the carved splits.
      scaling: "standard", "minmax" or "none" for feature vectors (fitted on
        the training split); images are always scaled to [0, 1].
      one_hot: give class labels as one-hot rows.
      in_memory_max_bytes: a TFDS split larger than this (as float32
        features) is read from its files batch by batch instead of loaded.
      continuous_labels: the CSV's labels are regression targets (the loss
        is mean_squared_error): read them as numbers, not classes (see
        `csv_source.read_table`).

    Raises:
      InputError: for an unknown dataset, a bad file, or bad split settings.
    """
    test_fraction = _check_fraction(test_fraction, "data.test_fraction", allow_zero=False)
    validation_fraction = _check_fraction(validation_fraction, "data.validation_fraction", allow_zero=True)
    if csv_path is None and name == "csv":
        raise InputError("data.name='csv' needs a file: pass --config.data.csv_path=FILE")
    tfds_source = _tfds_source()
    if csv_path is None and tfds_source.split_nbytes(name, "train", data_dir=data_dir) > in_memory_max_bytes:
        return _load_lazy(name, data_dir, test_fraction, validation_fraction, split_seed, scaling, one_hot)
    if csv_path is not None:
        table = csv_source.read_table(csv_path, label_column=label_column, header=csv_header, delimiter=csv_delimiter,
                                      continuous=continuous_labels)
        x, y, num_classes = table.features, table.labels, table.num_classes
        meta = {"name": csv_path, "num_classes": num_classes, "class_names": tuple(str(c) for c in range(num_classes or 0)),
                "description": f"CSV file {csv_path}", "labels_read_as": table.labels_read_as}
        test = None
    else:
        x, y, meta = tfds_source.load_arrays(name, "train", data_dir=data_dir)
        test = None
        if "test" in meta.get("splits", {}):
            x_test, y_test, _ = tfds_source.load_arrays(name, "test", data_dir=data_dir)
            test = (x_test, y_test)
    if test is None:
        x, x_test, y, y_test = _carve(x, y, test_fraction, split_seed, argument="data.test_fraction")
    else:
        x_test, y_test = test
    x_val = y_val = None
    if validation_fraction > 0:
        x, x_val, y, y_val = _carve(x, y, validation_fraction, split_seed, argument="data.validation_fraction")

    chain = []
    scaler = None
    if meta.get("feature_key") == "image":  # pixel values 0-255
        chain.append(transforms.NormalizeImages())
    else:
        scaler = Scaler.fit(x, scaling)
        x, x_test = scaler.transform(x), scaler.transform(x_test)
        x_val = scaler.transform(x_val) if x_val is not None else None
    if one_hot and meta["num_classes"]:
        chain.append(transforms.OneHot(meta["num_classes"]))
    info = DatasetInfo(
        name=meta["name"],
        num_examples=len(x) + len(x_test) + (len(x_val) if x_val is not None else 0),
        feature_shape=tuple(x.shape[1:]),
        num_classes=meta["num_classes"],
        class_names=tuple(meta["class_names"]),
        description=meta["description"],
        labels_read_as=meta.get("labels_read_as", ""),
    )
    return Splits(
        train=ArrayDataset(x, y),
        test=ArrayDataset(x_test, y_test),
        validation=ArrayDataset(x_val, y_val) if x_val is not None else None,
        info=info,
        scaler=scaler,
        transform=transforms.Chain(tuple(chain)) if chain else None,
    )


def _labels(split, chunk: int = 4096) -> np.ndarray:
    return np.concatenate([split.read(np.arange(i, min(i + chunk, len(split))))["y"] for i in range(0, len(split), chunk)])


def _load_lazy(name, data_dir, test_fraction, validation_fraction, split_seed, scaling, one_hot) -> Splits:
    """Splits of a TFDS dataset read from its files batch by batch, never held in memory whole."""
    tfds_source = _tfds_source()
    train = tfds_source.LazySplit(name, "train", data_dir=data_dir)
    info = train._source.dataset_info
    own = [s for s in ("test", "validation") if s in info.splits]
    if own:
        test = tfds_source.LazySplit(name, own[0], data_dir=data_dir)
    else:  # the same stratified cut as for data in memory: it cuts row numbers alike
        rows_train, rows_test = _carve(np.arange(len(train)), _labels(train), test_fraction, split_seed, argument="data.test_fraction")[:2]
        train, test = train.subset(rows_train), train.subset(rows_test)
    validation = None
    if validation_fraction > 0:
        rows_train, rows_val = _carve(np.arange(len(train)), _labels(train), validation_fraction, split_seed, argument="data.validation_fraction")[:2]
        train, validation = train.subset(rows_train), train.subset(rows_val)
    chain, scaler = [], None
    if "image" in info.features:
        chain.append(transforms.NormalizeImages())
    else:
        chunks = (train.read(np.arange(i, min(i + 4096, len(train))))["x"] for i in range(0, len(train), 4096))
        scaler = Scaler.fit_batches(chunks, scaling)
        chain.append(transforms.Scale(scaler))
    label = info.features["label"]
    num_classes = getattr(label, "num_classes", None)
    if one_hot and num_classes:
        chain.append(transforms.OneHot(num_classes))
    dataset_info = DatasetInfo(
        name=name,
        num_examples=len(train) + len(test) + (len(validation) if validation is not None else 0),
        feature_shape=train.feature_shape,
        num_classes=num_classes,
        class_names=tuple(getattr(label, "names", ())),
        description=info.description or "",
    )
    return Splits(train=train, test=test, validation=validation, info=dataset_info, scaler=scaler,
                  transform=transforms.Chain(tuple(chain)))
