"""TFDS datasets: the embedded ones built locally as array_record, atomic preparation, offline failures."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import sklearn.datasets
import tensorflow_datasets as tfds

from jaxdl.data import tfds_source
from jaxdl.errors import InputError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SKLEARN = {
    "breast_cancer": (sklearn.datasets.load_breast_cancer, 569, 30, 2),
    "digits": (sklearn.datasets.load_digits, 1797, 64, 10),
    "iris": (sklearn.datasets.load_iris, 150, 4, 3),
    "wine": (sklearn.datasets.load_wine, 178, 13, 3),
}


@pytest.mark.parametrize("name", sorted(SKLEARN))
def test_embedded_dataset_is_array_record_with_scikit_learns_rows(name, tmp_path):
    loader, count, width, classes = SKLEARN[name]
    bunch = loader()
    path = tfds_source.prepare(name, data_dir=str(tmp_path))
    assert path == str(tmp_path / f"jaxdl_{name}" / "1.0.0")
    assert f"jaxdl_{name}-train.array_record-00000-of-00001" in os.listdir(path)
    with open(os.path.join(path, "dataset_info.json")) as f:
        assert json.load(f)["fileFormat"] == "array_record"

    src = tfds_source.source(name, "train", data_dir=str(tmp_path))
    assert len(src) == count
    first = src[0]
    assert first["features"].dtype == np.float32 and first["features"].shape == (width,)
    assert np.issubdtype(np.asarray(first["label"]).dtype, np.integer)
    rows = [count - 1, 0, 7]
    picked = src.__getitems__(rows)
    np.testing.assert_array_equal(np.stack([e["features"] for e in picked]), bunch.data[rows].astype(np.float32))

    x, y, info = tfds_source.load_arrays(name, "train", data_dir=str(tmp_path))
    assert x.dtype == np.float32 and x.shape == (count, width) and y.dtype == np.int32
    np.testing.assert_array_equal(x, bunch.data.astype(np.float32))  # scikit-learn's order, row for row
    np.testing.assert_array_equal(y, bunch.target)
    assert info["num_classes"] == classes and info["class_names"] == tuple(str(c) for c in bunch.target_names)
    assert info["feature_shape"] == (width,) and info["num_examples"] == count
    assert info["splits"] == {"train": count} and info["feature_key"] == "features"


def test_list_prepared_shows_prepared_datasets_and_skips_unfinished_ones(tmp_path):
    assert tfds_source.list_prepared(data_dir=str(tmp_path)) == []
    tfds_source.prepare("iris", data_dir=str(tmp_path))
    tfds_source.prepare("wine", data_dir=str(tmp_path))
    (tmp_path / "jaxdl_digits" / "incomplete.ABCDEF_1.0.0").mkdir(parents=True)
    listed = tfds_source.list_prepared(data_dir=str(tmp_path))
    assert [(d["name"], d["version"], d["splits"]) for d in listed] == [
        ("iris", "1.0.0", {"train": 150}),
        ("wine", "1.0.0", {"train": 178}),
    ]
    assert listed[0]["path"] == str(tmp_path / "jaxdl_iris" / "1.0.0")


def test_second_use_reads_without_rebuilding(tmp_path, monkeypatch):
    calls = []
    generate = tfds_source.JaxdlIris._generate_examples

    def counting(self):
        calls.append(1)
        yield from generate(self)

    monkeypatch.setattr(tfds_source.JaxdlIris, "_generate_examples", counting)
    assert not tfds_source.is_prepared("iris", data_dir=str(tmp_path))
    assert len(tfds_source.source("iris", "train", data_dir=str(tmp_path))) == 150
    version_dir = tmp_path / "jaxdl_iris" / "1.0.0"
    before = os.stat(version_dir)
    assert tfds_source.is_prepared("iris", data_dir=str(tmp_path))
    assert len(tfds_source.source("iris", "train", data_dir=str(tmp_path))) == 150
    assert tfds_source.prepare("iris", data_dir=str(tmp_path)) == str(version_dir)
    after = os.stat(version_dir)
    assert calls == [1]
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_failed_preparation_leaves_nothing_readable(tmp_path, monkeypatch):
    generate = tfds_source.JaxdlIris._generate_examples

    def failing(self):
        for i, example in enumerate(generate(self)):
            if i == 75:
                raise RuntimeError("injected failure")
            yield example

    monkeypatch.setattr(tfds_source.JaxdlIris, "_generate_examples", failing)
    with pytest.raises(RuntimeError, match="injected failure"):
        tfds_source.prepare("iris", data_dir=str(tmp_path))
    assert not tfds_source.is_prepared("iris", data_dir=str(tmp_path))
    assert tfds_source.list_prepared(data_dir=str(tmp_path)) == []
    # TFDS removed its temporary directory, and reading retries the build rather than serving half of it.
    assert os.listdir(tmp_path / "jaxdl_iris") == []
    with pytest.raises(RuntimeError, match="injected failure"):
        tfds_source.source("iris", "train", data_dir=str(tmp_path))

    monkeypatch.undo()
    assert len(tfds_source.source("iris", "train", data_dir=str(tmp_path))) == 150


def test_losing_a_preparation_race_still_succeeds(tmp_path, monkeypatch):
    generate = tfds_source.JaxdlIris._generate_examples

    def racing(self):
        # Another preparation finishes and renames its copy into place while this one is generating.
        monkeypatch.setattr(tfds_source.JaxdlIris, "_generate_examples", generate)
        tfds_source.prepare("iris", data_dir=str(tmp_path))
        yield from generate(self)

    monkeypatch.setattr(tfds_source.JaxdlIris, "_generate_examples", racing)
    assert tfds_source.prepare("iris", data_dir=str(tmp_path)) == str(tmp_path / "jaxdl_iris" / "1.0.0")
    assert os.listdir(tmp_path / "jaxdl_iris") == ["1.0.0"]
    assert len(tfds_source.source("iris", "train", data_dir=str(tmp_path))) == 150


_KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import tensorflow_datasets as tfds
    from jaxdl.data import tfds_source

    if sys.argv[2] == "generation":
        generate = tfds_source.JaxdlIris._generate_examples

        def dying(self):
            for i, example in enumerate(generate(self)):
                if i == 75:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield example

        tfds_source.JaxdlIris._generate_examples = dying
    else:  # after every shard and dataset_info.json is written, before the rename
        write = tfds.core.DatasetInfo.write_to_directory

        def dying(self, *args, **kwargs):
            write(self, *args, **kwargs)
            os.kill(os.getpid(), signal.SIGKILL)

        tfds.core.DatasetInfo.write_to_directory = dying
    tfds_source.prepare("iris", data_dir=sys.argv[1])
    """
)


@pytest.mark.parametrize("moment", ["generation", "metadata"])
def test_killed_preparation_is_not_accepted_and_a_later_one_succeeds(moment, tmp_path):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(tmp_path), moment], env=env, capture_output=True, timeout=120
    )
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()[-2000:]
    leftovers = os.listdir(tmp_path / "jaxdl_iris")
    assert len(leftovers) == 1 and leftovers[0].startswith("incomplete.")
    if moment == "metadata":  # a complete-looking temporary copy is still not a dataset
        assert "dataset_info.json" in os.listdir(tmp_path / "jaxdl_iris" / leftovers[0])
    assert not tfds_source.is_prepared("iris", data_dir=str(tmp_path))
    assert tfds_source.list_prepared(data_dir=str(tmp_path)) == []

    x, _, _ = tfds_source.load_arrays("iris", "train", data_dir=str(tmp_path))
    np.testing.assert_array_equal(x, sklearn.datasets.load_iris().data.astype(np.float32))


@pytest.fixture
def no_network(monkeypatch):
    """Records (and refuses) every attempt to resolve a host or open a connection."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted in a test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_unprepared_tfds_dataset_fails_fast_with_a_hint(tmp_path, no_network):
    # Leftovers of unfinished preparations must not count as prepared.
    (tmp_path / "mnist" / "3.0.1").mkdir(parents=True)
    (tmp_path / "mnist" / "3.0.1" / "mnist-train.array_record-00000-of-00001").write_bytes(b"partial")
    (tmp_path / "mnist" / "incomplete.XYZ123_3.0.1").mkdir()
    (tmp_path / "mnist" / "incomplete.XYZ123_3.0.1" / "dataset_info.json").write_text("{}")

    start = time.monotonic()
    with pytest.raises(InputError) as err:
        tfds_source.source("mnist", "train", data_dir=str(tmp_path))
    with pytest.raises(InputError):
        tfds_source.load_arrays("mnist", "train", data_dir=str(tmp_path))
    assert time.monotonic() - start < 10
    assert str(err.value) == (
        f"dataset 'mnist' is not prepared in {tmp_path}; prepare it with: "
        f"jaxdl data prepare mnist --data_dir {tmp_path} (this downloads it; it needs network access)"
    )
    assert not tfds_source.is_prepared("mnist", data_dir=str(tmp_path))
    assert tfds_source.list_prepared(data_dir=str(tmp_path)) == []
    assert no_network == []


def test_unknown_dataset_names_the_embedded_ones(tmp_path, no_network):
    start = time.monotonic()
    for call in (tfds_source.source, tfds_source.load_arrays):
        with pytest.raises(InputError, match="'no_such_dataset' is not known") as err:
            call("no_such_dataset", "train", data_dir=str(tmp_path))
        assert "breast_cancer, digits, iris, wine" in str(err.value)
        assert "jaxdl data prepare NAME" in str(err.value)
    with pytest.raises(InputError, match="is not known"):
        tfds_source.prepare("no_such_dataset", data_dir=str(tmp_path))
    assert time.monotonic() - start < 10
    assert no_network == []


def test_unknown_split_lists_the_splits(tmp_path):
    with pytest.raises(InputError, match=r"'wine' has no split 'test'; expected one of: train$"):
        tfds_source.source("wine", "test", data_dir=str(tmp_path))
    with pytest.raises(InputError, match="no split 'validation'"):
        tfds_source.load_arrays("wine", "train[:50%]+validation", data_dir=str(tmp_path))
    assert len(tfds_source.source("wine", "train[:50%]", data_dir=str(tmp_path))) == 89


class _TinyImages(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """An mnist-shaped dataset: "image" uint8 (28, 28, 1), "label", train and test splits.

    The image is a plain uint8 Tensor: TFDS's Image feature needs TensorFlow
    to encode PNGs, which is not installed.
    """

    name = "tiny_images"
    VERSION = tfds.core.Version("1.0.0")
    url_infos = None  # see tfds_source._SklearnBuilder
    IMAGES = np.random.default_rng(0).integers(0, 256, (70, 28, 28, 1), dtype=np.uint8)

    def _info(self):
        features = {
            "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
        }
        features = tfds.features.FeaturesDict(features)
        return tfds.core.DatasetInfo(builder=self, features=features, disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 50), "test": self._generate_examples(50, 70)}

    def _generate_examples(self, start, stop):
        for i in range(start, stop):
            yield i, {"image": self.IMAGES[i], "label": i % 10}


def test_image_dataset_loads_as_float32_without_normalising(tmp_path, no_network):
    _TinyImages(data_dir=str(tmp_path)).download_and_prepare(file_format="array_record")
    assert tfds_source.is_prepared("tiny_images", data_dir=str(tmp_path))
    x, y, info = tfds_source.load_arrays("tiny_images", "test", data_dir=str(tmp_path))
    assert x.dtype == np.float32 and x.shape == (20, 28, 28, 1)
    np.testing.assert_array_equal(x, _TinyImages.IMAGES[50:].astype(np.float32))
    np.testing.assert_array_equal(y, np.arange(50, 70) % 10)
    assert info["feature_key"] == "image" and info["feature_dtype"] == "uint8"
    assert info["splits"] == {"train": 50, "test": 20} and info["num_classes"] == 10
    assert [(d["name"], d["splits"]) for d in tfds_source.list_prepared(data_dir=str(tmp_path))] == [
        ("tiny_images", {"train": 50, "test": 20})
    ]
    assert no_network == []


def test_default_data_dir_follows_tfds_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    assert tfds_source.default_data_dir() == str(tmp_path)


# sha256 of colour_digits(load_digits().data): integer arithmetic on numpy's PCG64 stream gives
# these bytes on every machine; a change here changes the dataset (and needs a new VERSION).
COLOUR_DIGITS_SHA256 = "8db3991f9e7dc4f0eb6784effcf29520bec7183583e6d0c2c38d2e51252ea6ad"


def test_colour_digits_is_a_cifar10_shaped_image_dataset(tmp_path, no_network):
    import hashlib

    path = tfds_source.prepare("colour_digits", data_dir=str(tmp_path))
    assert path == str(tmp_path / "jaxdl_colour_digits" / "1.0.0")
    src = tfds_source.source("colour_digits", "train", data_dir=str(tmp_path))
    assert src[0]["image"].dtype == np.uint8 and src[0]["image"].shape == (32, 32, 3)
    x, y, info = tfds_source.load_arrays("colour_digits", "train", data_dir=str(tmp_path))
    assert x.shape == (1797, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(y, sklearn.datasets.load_digits().target)  # scikit-learn's order and labels
    assert info["feature_key"] == "image" and info["feature_dtype"] == "uint8"  # the path TFDS cifar10 takes
    assert info["num_classes"] == 10 and info["class_names"] == tuple("0123456789")
    assert info["splits"] == {"train": 1797}
    images = x.astype(np.uint8)
    np.testing.assert_array_equal(images, x)  # whole grey levels 0-255, stored as such
    assert hashlib.sha256(images.tobytes()).hexdigest() == COLOUR_DIGITS_SHA256
    assert [d["name"] for d in tfds_source.list_prepared(data_dir=str(tmp_path))] == ["colour_digits"]
    assert no_network == []


def test_colour_digits_is_deterministic_and_keeps_each_digit_visible():
    import hashlib

    digits = sklearn.datasets.load_digits()
    images = tfds_source.colour_digits(digits.data)
    again = tfds_source.colour_digits(digits.data.reshape(-1, 8, 8))
    assert hashlib.sha256(images.tobytes()).hexdigest() == COLOUR_DIGITS_SHA256
    np.testing.assert_array_equal(images, again)
    assert not np.array_equal(images, tfds_source.colour_digits(digits.data, seed=1))
    # Colours differ between images: the mean colour of the images spreads over the RGB cube.
    means = images.reshape(len(images), -1, 3).mean(axis=1)
    assert means.std(axis=0).min() > 25
    # Every digit stays visible: summed over the channels, the lightest tenth of each image's
    # pixels (the ink) is far lighter than the darkest tenth (the paper), noise included.
    brightness = np.sort(images.astype(np.int64).sum(axis=-1).reshape(len(images), -1), axis=1)
    tenth = brightness.shape[1] // 10
    assert np.min(brightness[:, -tenth:].mean(axis=1) - brightness[:, :tenth].mean(axis=1)) > 150
