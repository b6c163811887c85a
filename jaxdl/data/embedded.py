"""Datasets that ship inside scikit-learn, so a first run needs no network."""

import dataclasses

import numpy as np
import sklearn.datasets
import sklearn.model_selection

from jaxdl.data.arrays import ArrayDataset, Scaler
from jaxdl.errors import InputError

# name -> (loader, description)
EMBEDDED = {
    "breast_cancer": (
        sklearn.datasets.load_breast_cancer,
        "Wisconsin diagnostic breast cancer: 569 tumours, 30 features, malignant (0) or benign (1)",
    ),
    "digits": (
        sklearn.datasets.load_digits,
        "UCI handwritten digits: 1,797 images of 8x8 pixels (64 features), ten classes 0-9",
    ),
}


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about a dataset."""

    name: str
    num_examples: int
    feature_shape: tuple[int, ...]
    num_classes: int | None  # None for regression targets
    class_names: tuple[str, ...]
    description: str


@dataclasses.dataclass(frozen=True)
class Splits:
    """A dataset's scaled train and test splits, the fitted scaler and the dataset's info."""

    train: ArrayDataset
    test: ArrayDataset
    scaler: Scaler
    info: DatasetInfo


def load(
    name: str, *, data_dir: str | None = None, test_fraction: float = 0.2, split_seed: int = 0, scaling: str = "standard"
) -> Splits:
    """Loads an embedded dataset, split into train and test, scaled on the train split.

    The split is stratified by class and fixed by `split_seed`, so every run
    (whatever its training seed) is tested on the same examples. The embedded
    datasets are read from scikit-learn's installed files; `data_dir` is where
    TFDS-prepared datasets will be kept and is not read for them yet.

    Raises:
      InputError: for an unknown name or a test fraction outside (0, 1).
    """
    if name not in EMBEDDED:
        raise InputError(f"data.name={name!r} is not a known dataset; expected one of: {', '.join(EMBEDDED)}")
    if not isinstance(test_fraction, float) or not 0.0 < test_fraction < 1.0:
        raise InputError(f"data.test_fraction={test_fraction!r}: expected a fraction in (0, 1)")
    del data_dir
    loader, description = EMBEDDED[name]
    bunch = loader()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int32)
    x_train, x_test, y_train, y_test = sklearn.model_selection.train_test_split(
        x, y, test_size=test_fraction, random_state=split_seed, stratify=y
    )
    scaler = Scaler.fit(x_train, scaling)
    info = DatasetInfo(
        name=name,
        num_examples=len(x),
        feature_shape=x.shape[1:],
        num_classes=len(bunch.target_names),
        class_names=tuple(str(c) for c in bunch.target_names),
        description=description,
    )
    return Splits(
        train=ArrayDataset(scaler.transform(x_train), y_train),
        test=ArrayDataset(scaler.transform(x_test), y_test),
        scaler=scaler,
        info=info,
    )
