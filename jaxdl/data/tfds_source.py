"""TFDS datasets read by random access: `tfds.data_source` over array_record files.

The four datasets that ship inside scikit-learn (breast_cancer, digits, iris,
wine) are real TFDS datasets here, built locally without network on first use.
They are registered with TFDS as `jaxdl_<name>` because TFDS has builders of
its own for some of these names (`iris`), but this module's API calls them by
their plain names. Every example sits in one "train" split, in scikit-learn's
order; jaxdl cuts its own stratified train/test split later. A fifth,
`colour_digits`, is made from `digits`: 32x32 colour images stored as uint8
under "image", shaped like CIFAR-10, to try image models offline.

Any other TFDS dataset is served once `prepare` has downloaded it. Reading never
touches the network: whether a dataset is prepared is decided from the files in
`data_dir` before TFDS is asked for anything, so an unprepared dataset fails at
once with a hint instead of a download or a hang.

Preparation is atomic because TFDS writes every file into an
`incomplete.*` directory beside the version directory and renames it into place
only after `dataset_info.json` is written; an interrupted preparation leaves at
most that temporary directory, which nothing here (or in TFDS) will read.
"""

import concurrent.futures
import functools
import hashlib
import json
import logging
import os
import socket
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxdl.errors import DataError, InputError

_HOMEPAGE = "https://scikit-learn.org/stable/datasets/toy_dataset.html"
_DATASET_INFO = "dataset_info.json"
_CHUNK = 1024


class _SklearnBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A scikit-learn toy dataset as one "train" split, keyed by row index."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "scikit-learn's rows and labels as float32 features, in scikit-learn's order."}
    _loader: str  # the scikit-learn loader's name, set by each subclass
    _about: str = ""
    # Nothing is downloaded, so there are no URL checksums to look up. TFDS
    # 4.9.10 finds them through `code_path`, which needs the undeclared
    # `importlib_resources` package (tensorflow/datasets#11212).
    url_infos = None

    def _info(self) -> tfds.core.DatasetInfo:
        # Built here rather than with `dataset_info_from_configs`, which reads
        # metadata files from beside the module; this module has none.
        bunch = _bunch(self._loader)
        return tfds.core.DatasetInfo(
            builder=self,
            description=self._about,
            features=tfds.features.FeaturesDict(
                {
                    "features": tfds.features.Tensor(shape=bunch.data.shape[1:], dtype=np.float32),
                    "label": tfds.features.ClassLabel(names=[str(n) for n in bunch.target_names]),
                }
            ),
            supervised_keys=("features", "label"),
            # Keeps scikit-learn's order on disk instead of ordering by hashed key.
            disable_shuffling=True,
            homepage=_HOMEPAGE,
        )

    def _log_download_bytes(self) -> None:
        # TFDS prints "Downloading and preparing dataset ..." to stdout; nothing is downloaded here.
        logging.info("building %s in %s", self.name, self.data_dir)

    def _log_download_done(self) -> None:
        logging.info("built %s", self.name)

    def _split_generators(self, dl_manager):
        del dl_manager  # Nothing to download.
        return {"train": self._generate_examples()}

    def _generate_examples(self):
        bunch = _bunch(self._loader)
        for i, (x, y) in enumerate(zip(bunch.data.astype(np.float32), bunch.target)):
            yield i, {"features": x, "label": int(y)}


@functools.cache
def _bunch(loader: str):
    import sklearn.datasets  # only to build a dataset: importing scikit-learn costs ~0.8 s

    return getattr(sklearn.datasets, loader)()


class JaxdlBreastCancer(_SklearnBuilder):
    """Wisconsin diagnostic breast cancer, from scikit-learn."""

    name = "jaxdl_breast_cancer"
    _loader = "load_breast_cancer"
    _about = "Wisconsin diagnostic breast cancer: 569 tumours, 30 features, malignant (0) or benign (1)"


class JaxdlDigits(_SklearnBuilder):
    """UCI handwritten digits (8x8), from scikit-learn."""

    name = "jaxdl_digits"
    _loader = "load_digits"
    _about = "UCI handwritten digits: 1,797 images of 8x8 pixels (64 features), ten classes 0-9"


class JaxdlIris(_SklearnBuilder):
    """Fisher's iris, from scikit-learn."""

    name = "jaxdl_iris"
    _loader = "load_iris"
    _about = "Fisher's iris: 150 flowers, 4 measurements, three species"


class JaxdlWine(_SklearnBuilder):
    """UCI wine recognition, from scikit-learn."""

    name = "jaxdl_wine"
    _loader = "load_wine"
    _about = "UCI wine recognition: 178 wines, 13 chemical measurements, three cultivars"


_COLOUR_SEED = 20240808  # fixes the colours, shifts and noise: the same bytes on every preparation
_COLOUR_SIDE = 32  # CIFAR-10's image side
_MIN_COLOUR_DISTANCE = 160  # between foreground and background in RGB, so that every digit stays visible
_NOISE = 24  # per-pixel noise of up to +-_NOISE grey levels per channel
_MAX_SHIFT = 3  # pixels, in each direction


def colour_digits(images: np.ndarray, *, seed: int = _COLOUR_SEED) -> np.ndarray:
    """scikit-learn's 8x8 digits as 32x32 colour images: a CIFAR-10-shaped stand-in that needs no download.

    Each image is upsampled 4x (bilinear), shifted by up to 3 pixels, painted in
    a foreground colour on a background colour (both random per image, at
    least `_MIN_COLOUR_DISTANCE` apart, the foreground the lighter in every
    channel) and given per-pixel noise, so that a model must learn shapes
    whatever their colour and position.

    Every step is integer arithmetic on numpy's PCG64 stream (stable across
    platforms and numpy versions), so the bytes never depend on floating-point
    rounding or BLAS.

    Args:
      images: (N, 64) or (N, 8, 8) grey levels 0-16, as `load_digits().data`.
      seed: the seed of the colours, shifts and noise.

    Returns:
      uint8 images of shape (N, 32, 32, 3).
    """
    grey = np.rint(np.asarray(images, np.float64)).astype(np.int64).reshape(-1, 8, 8)
    n = len(grey)
    # Bilinear upsampling as a matrix of weights in eighths: output pixel i sits at
    # input coordinate (2i - 3) / 8 (pixel centres), clamped at the borders.
    weights = np.zeros((_COLOUR_SIDE, 8), np.int64)
    for i in range(_COLOUR_SIDE):
        lo, frac = divmod(2 * i - 3, 8)
        weights[i, min(max(lo, 0), 7)] += 8 - frac
        weights[i, min(max(lo + 1, 0), 7)] += frac
    ink = np.einsum("ia,nab,jb->nij", weights, grey, weights)  # 0 .. 16 * 64 = 1024
    scale = 16 * 64

    rng = np.random.default_rng(seed)
    shifts = rng.integers(-_MAX_SHIFT, _MAX_SHIFT + 1, (n, 2))
    padded = np.pad(ink, ((0, 0), (_MAX_SHIFT, _MAX_SHIFT), (_MAX_SHIFT, _MAX_SHIFT)))
    rows = _MAX_SHIFT + shifts[:, 0, None] + np.arange(_COLOUR_SIDE)  # (n, 32)
    cols = _MAX_SHIFT + shifts[:, 1, None] + np.arange(_COLOUR_SIDE)
    ink = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]

    colours = rng.integers(0, 256, (n, 2, 3))
    # Redraw the pairs that are too alike, in order, until none is: deterministic like the rest.
    while True:
        close = np.sum((colours[:, 0] - colours[:, 1]) ** 2, axis=-1) < _MIN_COLOUR_DISTANCE**2
        if not close.any():
            break
        colours[close] = rng.integers(0, 256, (int(close.sum()), 2, 3))
    # The foreground gets the larger value in every channel, so that each channel shows the digit
    # with the same sign of contrast. With random signs per channel, 1,438 training images taught
    # experiments/cifar10_resnet.py's ResNet far more slowly (at learning rate 3e-3: test accuracy
    # 0.46 after 12 epochs, against 0.86 after 8 with this rule; one run each).
    colours = np.sort(colours, axis=1)
    background, foreground = colours[:, None, None, 0], colours[:, None, None, 1]  # (n, 1, 1, 3)
    ink = ink[..., None]
    pixels = (background * (scale - ink) + foreground * ink + scale // 2) // scale
    pixels = pixels + rng.integers(-_NOISE, _NOISE + 1, pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


class JaxdlColourDigits(_SklearnBuilder):
    """scikit-learn's digits as 32x32 colour images (`colour_digits`): a CIFAR-10-shaped stand-in."""

    name = "jaxdl_colour_digits"
    _loader = "load_digits"
    RELEASE_NOTES = {
        "1.0.0": "scikit-learn's digits upsampled to 32x32, coloured, shifted and noised with a fixed seed."
    }
    _about = (
        "scikit-learn's 1,797 handwritten digits as 32x32 colour images (uint8, like CIFAR-10): upsampled 4x, "
        "shifted by up to 3 pixels, a random foreground and background colour each, per-pixel noise; ten classes 0-9"
    )

    def _info(self) -> tfds.core.DatasetInfo:
        # An "image" feature, as TFDS's image datasets (cifar10) have, so that the images take
        # the same path through jaxdl: uint8 stored, scaled to [0, 1] when read. A plain uint8
        # Tensor rather than tfds.features.Image, which needs TensorFlow to encode PNGs.
        return tfds.core.DatasetInfo(
            builder=self,
            description=self._about,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=(_COLOUR_SIDE, _COLOUR_SIDE, 3), dtype=np.uint8),
                    "label": tfds.features.ClassLabel(names=[str(d) for d in range(10)]),
                }
            ),
            supervised_keys=("image", "label"),
            disable_shuffling=True,
            homepage=_HOMEPAGE,
        )

    def _generate_examples(self):
        bunch = _bunch(self._loader)
        for i, (image, y) in enumerate(zip(colour_digits(bunch.data), bunch.target)):
            yield i, {"image": image, "label": int(y)}


# User-facing name -> builder class.
EMBEDDED: dict[str, type[_SklearnBuilder]] = {
    "breast_cancer": JaxdlBreastCancer,
    "digits": JaxdlDigits,
    "iris": JaxdlIris,
    "wine": JaxdlWine,
    "colour_digits": JaxdlColourDigits,
}
_EMBEDDED_BY_REGISTERED = {cls.name: name for name, cls in EMBEDDED.items()}


def default_data_dir() -> str:
    """The TFDS data directory used when none is given.

    Returns:
      `$TFDS_DATA_DIR` if set (read at call time), else `~/tensorflow_datasets`.
    """
    return os.path.expanduser(tfds.core.constants.get_default_data_dir())


def prepare(name: str, *, data_dir: str | None = None) -> str:
    """Builds an embedded dataset, or downloads and prepares a TFDS dataset, as array_record.

    Preparing an already prepared dataset does nothing. Files are written into a
    temporary directory and renamed into place when complete, so an interrupted
    preparation never leaves a dataset that `source` would read.

    Args:
      name: an embedded name (breast_cancer, digits, iris, wine, colour_digits) or a TFDS name,
        optionally with a config ("glue/cola").
      data_dir: the TFDS data directory; None for `default_data_dir()`.

    Returns:
      The prepared dataset's version directory.

    Raises:
      InputError: for a name that is neither embedded nor a TFDS dataset.
      Exception: whatever TFDS raises when a download or the generation fails.
    """
    root = _root(data_dir)
    fresh = _version_dir(root, name) is None
    if name in EMBEDDED:
        builder = EMBEDDED[name](data_dir=root)
        config = tfds.download.DownloadConfig(try_download_gcs=False)
        tfds.disable_progress_bar()  # a first run's console shows jaxdl's progress, not TFDS's bars
    else:
        _check_known(name)
        if _version_dir(root, name) is None and not _network_reachable():
            # Without this check TFDS retries its downloads for minutes before failing.
            raise InputError(
                f"cannot prepare {name!r}: there is no network access here ({_DOWNLOAD_HOST} does not "
                f"resolve). Prepare it on a machine with network access (jaxdl data prepare {name}) and copy "
                f"its folder {os.path.join(root, name.split('/')[0])} here"
            )
        builder = tfds.builder(name, data_dir=root)
        config = tfds.download.DownloadConfig()
    try:
        builder.download_and_prepare(file_format="array_record", download_config=config)
    except ModuleNotFoundError as err:
        if err.name != "importlib_resources":
            raise
        raise ModuleNotFoundError(
            f"preparing {name!r} needs the importlib_resources package, which TFDS uses but does not "
            "declare (tensorflow/datasets#11212); install it with: pip install importlib_resources",
            name=err.name,
        ) from err
    except Exception:
        # Another process may have renamed its finished copy into place first.
        if _version_dir(root, name) is None:
            raise
    if fresh and name in EMBEDDED:
        _record_files(os.fspath(builder.data_path))
    return os.fspath(builder.data_path)


FILES = "jaxdl_files.json"  # an embedded dataset's record files: size and SHA-256 of each, written when it is built


def _record_files(version_dir: str) -> None:
    files = {name: _file_digest(os.path.join(version_dir, name)) for name in sorted(os.listdir(version_dir))
             if "array_record" in name}
    tmp = os.path.join(version_dir, f".{FILES}.{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(files, f, indent=1)
    os.replace(tmp, os.path.join(version_dir, FILES))  # whole or not at all, if two processes prepare at once


def _file_digest(path: str) -> dict:
    with open(path, "rb") as f:
        return {"bytes": os.path.getsize(path), "sha256": hashlib.sha256(f.read()).hexdigest()}


def check_files(name: str, version_dir: str) -> None:
    """Checks an embedded dataset's record files against the sizes and digests written when it was built.

    The record reader does not notice a file cut short: it reads garbage
    labels. Datasets prepared by TFDS itself have no such record and pass.

    Raises:
      DataError: naming the damaged file and how to rebuild the dataset.
    """
    path = os.path.join(version_dir, FILES)
    if not os.path.exists(path):
        return
    with open(path) as f:
        expected = json.load(f)
    for file_name, want in expected.items():
        file_path = os.path.join(version_dir, file_name)
        if not os.path.exists(file_path) or _file_digest(file_path) != want:
            raise DataError(f"the prepared files of dataset {name!r} in {version_dir} are damaged ({file_name} is "
                            "missing or differs from when it was built): remove that directory and prepare the dataset "
                            f"again: jaxdl data prepare {name}")


# TFDS's own mirror, where most of its datasets download from.
_DOWNLOAD_HOST = "storage.googleapis.com"


def _network_reachable(timeout: float = 5.0) -> bool:
    """Whether TFDS's download host resolves, decided within `timeout` seconds."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    lookup = pool.submit(socket.getaddrinfo, _DOWNLOAD_HOST, 443)
    try:
        lookup.result(timeout=timeout)
    except (OSError, concurrent.futures.TimeoutError):
        return False
    finally:
        pool.shutdown(wait=False)  # a lookup that hangs must not hold us here
    return True


def is_prepared(name: str, *, data_dir: str | None = None) -> bool:
    """Whether a dataset is prepared in `data_dir`, judged from its files alone (no network).

    Args:
      name: an embedded or TFDS dataset name; unknown names are simply not prepared.
      data_dir: the TFDS data directory; None for `default_data_dir()`.

    Returns:
      True when a version directory with a `dataset_info.json` exists (for an
      embedded dataset: the version this module builds).
    """
    return _version_dir(_root(data_dir), name) is not None


def source(name: str, split: str, *, data_dir: str | None = None) -> Sequence[dict[str, Any]]:
    """A random-access source over one split (`len`, `__getitem__`, `__getitems__`).

    Embedded datasets are prepared on first use; other datasets must have been
    prepared with `prepare` (or `jaxdl data prepare NAME`).

    Args:
      name: an embedded or TFDS dataset name.
      split: a split name such as "train", or a TFDS split expression over the
        dataset's splits ("train[:80%]").
      data_dir: the TFDS data directory; None for `default_data_dir()`.

    Returns:
      The `tfds.data_source` for the split (an `ArrayRecordDataSource`, a
      `Sequence`); each item is a dict of numpy values.

    Raises:
      InputError: for an unknown dataset, a TFDS dataset that is not prepared,
        or a split the dataset does not have.
    """
    root = _root(data_dir)
    version_dir = _version_dir(root, name)
    if version_dir is None:
        if name not in EMBEDDED:
            _check_known(name)
            raise InputError(_not_prepared_message(name, root, data_dir))
        version_dir = prepare(name, data_dir=root)
    _check_split(name, split, _read_info(version_dir))
    check_files(name, version_dir)
    version = os.path.basename(version_dir)
    return tfds.data_source(f"{_registered(name)}:{version}", split=split, data_dir=root, download=False)


def list_prepared(*, data_dir: str | None = None) -> list[dict]:
    """The datasets prepared in `data_dir`, read from their `dataset_info.json` files.

    Args:
      data_dir: the TFDS data directory; None for `default_data_dir()`.

    Returns:
      One dict per prepared version, sorted by name then version: "name" (the
      name to pass to `source`), "version", "splits" ({split: examples}) and "path".
    """
    root = _root(data_dir)
    found = []
    for dataset_dir in _subdirs(root):
        registered = os.path.basename(dataset_dir)
        # A dataset with configs keeps its versions one level down: NAME/CONFIG/VERSION.
        for parent, label in [(dataset_dir, registered)] + [
            (d, f"{registered}/{os.path.basename(d)}") for d in _subdirs(dataset_dir) if not _is_version(d)
        ]:
            for version_dir in filter(_is_prepared_version, _subdirs(parent)):
                info = _read_info(version_dir)
                found.append(
                    {
                        "name": _EMBEDDED_BY_REGISTERED.get(label, label),
                        "version": os.path.basename(version_dir),
                        "splits": {s["name"]: sum(int(n) for n in s.get("shardLengths", [])) for s in info["splits"]},
                        "path": version_dir,
                    }
                )
    return sorted(found, key=lambda d: (d["name"], tfds.core.Version(d["version"])))


def read_records(src, indices: list[int], name: str, data_dir: str | None) -> list:
    """The records at `indices` of a prepared split.

    Raises:
      DataError: when its files cannot be read (damaged, cut off), naming the
        dataset's directory and how to prepare it again.
    """
    try:
        return src.__getitems__(indices)
    except Exception as err:  # noqa: BLE001 -- whatever the record reader raises on a damaged file
        where = _version_dir(_root(data_dir), name) or _root(data_dir)
        raise DataError(f"the prepared files of dataset {name!r} in {where} cannot be read ({type(err).__name__}: "
                        f"{str(err).splitlines()[0][:200] if str(err) else ''}); they are damaged: remove that directory "
                        f"and prepare the dataset again: jaxdl data prepare {name}") from err


def load_arrays(name: str, split: str, *, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reads a whole split into memory as features and labels.

    Features come from the "features" feature, or "image" for image datasets
    (returned as float32 without normalising). Labels come from "label".

    Args:
      name: an embedded or TFDS dataset name.
      split: a split name or TFDS split expression.
      data_dir: the TFDS data directory; None for `default_data_dir()`.

    Returns:
      `(x, y, info)`: x float32 (N, ...), y int32 (N,) for class labels (float32
      otherwise), and info with name, split, num_examples, feature_key
      ("features" or "image"), feature_dtype (as stored, e.g. "uint8"),
      feature_shape, num_classes (None if labels are not classes),
      class_names, splits ({split: examples} for the whole dataset) and
      description.

    Raises:
      InputError: as `source` does, or when the dataset has no "features" or
        "image" feature, no "label" feature, or features of varying shape.
    """
    src = source(name, split, data_dir=data_dir)
    features = src.dataset_info.features
    key = _feature_key(name, features)
    xs, ys = [], []
    # One `__getitems__` call per chunk reads the records in one batched call.
    for start in range(0, len(src), _CHUNK):
        examples = read_records(src, list(range(start, min(start + _CHUNK, len(src)))), name, data_dir)
        try:
            xs.append(np.stack([e[key] for e in examples]).astype(np.float32))
        except ValueError:
            raise InputError(f"dataset {name!r}: the {key!r} feature varies in shape; expected one shape") from None
        ys.append(np.asarray([e["label"] for e in examples]))
    x = np.concatenate(xs) if xs else np.zeros((0, *features[key].shape), np.float32)
    y = np.concatenate(ys) if ys else np.zeros((0,), np.int64)
    label = features["label"]
    is_class = isinstance(label, tfds.features.ClassLabel)
    info = {
        "name": name,
        "split": split,
        "num_examples": len(x),
        "feature_key": key,
        "feature_dtype": np.dtype(features[key].np_dtype).name,
        "feature_shape": tuple(x.shape[1:]),
        "num_classes": label.num_classes if is_class else None,
        "class_names": tuple(label.names) if is_class else (),
        "splits": {s.name: s.num_examples for s in src.dataset_info.splits.values()},
        "description": src.dataset_info.description or "",
    }
    return x, y.astype(np.int32 if y.dtype.kind in "iub" else np.float32), info


def _feature_key(name: str, features) -> str:
    """The feature that holds the inputs: "features" (vectors) or "image"; the labels must be "label"."""
    key = next((k for k in ("features", "image") if k in features), None)
    if key is None or "label" not in features:
        raise InputError(
            f"dataset {name!r} has features {sorted(features)}; expected 'features' or 'image', and 'label'"
        )
    return key


def _root(data_dir: str | os.PathLike | None) -> str:
    return os.path.expanduser(os.fspath(data_dir)) if data_dir else default_data_dir()


def _registered(name: str) -> str:
    return EMBEDDED[name].name if name in EMBEDDED else name


def _subdirs(path: str) -> list[str]:
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    # `incomplete.*` (an unfinished preparation), `downloads` and hidden folders hold no dataset.
    return sorted(e.path for e in entries if e.is_dir() and not e.name.startswith((".", "incomplete.")))


def _is_version(path: str) -> bool:
    return tfds.core.Version.is_valid(os.path.basename(path))


def _is_prepared_version(path: str) -> bool:
    return _is_version(path) and os.path.isfile(os.path.join(path, _DATASET_INFO))


def _version_dir(root: str, name: str) -> str | None:
    """The directory of the prepared version to read, or None, from the files alone."""
    dataset_dir = os.path.join(root, _registered(name))
    if name in EMBEDDED:
        # Only the version this code builds; an older one is rebuilt, not read.
        candidate = os.path.join(dataset_dir, str(EMBEDDED[name].VERSION))
        return candidate if _is_prepared_version(candidate) else None
    versions = [d for d in _subdirs(dataset_dir) if _is_prepared_version(d)]
    return max(versions, key=lambda d: tfds.core.Version(os.path.basename(d)), default=None)


def _read_info(version_dir: str) -> dict:
    with open(os.path.join(version_dir, _DATASET_INFO)) as f:
        return json.load(f)


def _check_known(name: str) -> None:
    # Without community datasets: listing those fetches an index from GCS.
    if name.split("/")[0] not in tfds.list_builders(with_community_datasets=False):
        raise InputError(
            f"dataset {name!r} is not known: expected an embedded dataset ({', '.join(EMBEDDED)}) "
            "or the name of a TFDS dataset (https://www.tensorflow.org/datasets/catalog/overview); "
            "any TFDS dataset works once prepared with: jaxdl data prepare NAME"
        )


def _not_prepared_message(name: str, root: str, data_dir: str | os.PathLike | None) -> str:
    flag = f" --data_dir {root}" if data_dir else ""
    return (
        f"dataset {name!r} is not prepared in {root}; prepare it with: "
        f"jaxdl data prepare {name}{flag} (this downloads it; it needs network access)"
    )


def _check_split(name: str, split: str, info: dict) -> None:
    available = [s["name"] for s in info["splits"]]
    # A split expression such as "train[:80%]+test" names its splits before any "[".
    wanted = [part.split("[")[0].strip() for part in split.split("+")]
    unknown = [s for s in wanted if s not in available]
    if unknown:
        raise InputError(
            f"dataset {name!r} has no split {unknown[0]!r}; expected one of: {', '.join(available)}"
        )


class LazySplit:
    """A TFDS split read on demand (`read(indices)`), for splits too large to hold in memory.

    Args:
      name, split, data_dir: as for `source`.
      rows: the split's examples to serve, in this order (None: all of them);
        jaxdl's own train/test cut of a dataset with one split is a pair of
        such row sets.
    """

    def __init__(self, name: str, split: str, *, data_dir: str | None = None, rows: np.ndarray | None = None):
        self._source = source(name, split, data_dir=data_dir)
        self._name, self._data_dir = name, data_dir
        features = self._source.dataset_info.features
        self._key = _feature_key(name, features)
        self.feature_shape = tuple(features[self._key].shape)
        self.rows = np.arange(len(self._source)) if rows is None else np.asarray(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, indices: np.ndarray) -> dict:
        """The examples at `indices` (positions in this split), as a batch."""
        records = read_records(self._source, [int(i) for i in self.rows[np.asarray(indices)]], self._name, self._data_dir)
        return {
            "x": np.stack([r[self._key] for r in records]).astype(np.float32),
            "y": np.asarray([r["label"] for r in records]).astype(np.int32),
        }

    def subset(self, rows: np.ndarray) -> "LazySplit":
        """The same split restricted to some of its rows (positions in this split)."""
        other = object.__new__(LazySplit)
        other.__dict__.update(self.__dict__, rows=self.rows[np.asarray(rows)])
        return other


def split_nbytes(name: str, split: str, *, data_dir: str | None = None) -> int:
    """The bytes a split would take in memory as float32 features, from its metadata alone."""
    src = source(name, split, data_dir=data_dir)
    features = src.dataset_info.features
    shape = features[_feature_key(name, features)].shape
    return len(src) * 4 * int(np.prod(shape, dtype=np.int64))
