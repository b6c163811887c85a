import numpy as np
import pytest

from jaxdl import data
from jaxdl.data import batching
from jaxdl.errors import InputError


def test_embedded_datasets_have_their_documented_size():
    cancer = data.load("breast_cancer")
    assert len(cancer.train) + len(cancer.test) == 569 == cancer.info.num_examples
    assert cancer.info.feature_shape == (30,) and cancer.info.num_classes == 2
    digits = data.load("digits")
    assert len(digits.train) + len(digits.test) == 1797
    assert digits.info.feature_shape == (64,) and digits.info.num_classes == 10
    assert set(np.unique(digits.test.y)) == set(range(10))
    assert digits.train.x.dtype == np.float32 and digits.train.y.dtype == np.int32


def test_split_is_fixed_by_split_seed_and_stratified():
    a, b = data.load("breast_cancer"), data.load("breast_cancer")
    np.testing.assert_array_equal(a.test.x, b.test.x)
    c = data.load("breast_cancer", split_seed=1)
    assert not np.array_equal(a.test.x, c.test.x)
    # Stratified: the test split has the dataset's class balance (212 malignant of 569).
    assert abs(np.mean(a.test.y == 0) - 212 / 569) < 0.01
    assert len(a.test) == 114


def test_scaling_is_fitted_on_the_training_split_only():
    splits = data.load("breast_cancer")
    np.testing.assert_allclose(splits.train.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(splits.train.x.std(axis=0), 1, atol=1e-4)
    # The test split is scaled with the training statistics, so it is not exactly standardised.
    assert np.abs(splits.test.x.mean(axis=0)).max() > 0.01
    raw = data.Scaler.from_dict(splits.scaler.to_dict())
    np.testing.assert_array_equal(raw.offset, splits.scaler.offset)


def test_constant_feature_keeps_unit_scale():
    x = np.c_[np.ones(5), np.arange(5.0)].astype(np.float32)
    for kind in data.SCALINGS:
        scaled = data.Scaler.fit(x, kind).transform(x)
        assert np.all(np.isfinite(scaled))
    np.testing.assert_allclose(data.Scaler.fit(x, "minmax").transform(x)[:, 1], [0, 0.25, 0.5, 0.75, 1])


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(InputError, match="data.name='mnist_typo' is not a known dataset; expected one of: breast_cancer, digits"):
        data.load("mnist_typo")


def test_every_example_once_per_epoch_with_a_padded_last_batch():
    ds = data.ArrayDataset(np.arange(23, dtype=np.float32)[:, None], np.arange(23, dtype=np.int32))
    batches = list(data.epoch_batches(ds, 5, seed=3, epoch=1))
    assert len(batches) == data.steps_per_epoch(23, 5) == 5
    assert all(b["x"].shape == (5, 1) for b in batches)
    seen = np.concatenate([b["y"][b["mask"] > 0] for b in batches])
    assert sorted(seen.tolist()) == list(range(23))
    assert batches[-1]["mask"].tolist() == [1, 1, 1, 0, 0]


def test_order_is_fixed_by_seed_and_epoch():
    def order(seed, epoch):
        return np.concatenate([b["y"] for b in data.epoch_batches(ds, 10, seed=seed, epoch=epoch)])

    ds = data.ArrayDataset(np.zeros((50, 1), np.float32), np.arange(50, dtype=np.int32))
    np.testing.assert_array_equal(order(0, 1), order(0, 1))
    assert not np.array_equal(order(0, 1), order(0, 2))
    assert not np.array_equal(order(0, 1), order(1, 1))
    unshuffled = np.concatenate([b["y"] for b in data.epoch_batches(ds, 10, seed=0, epoch=1, shuffle=False)])
    np.testing.assert_array_equal(unshuffled, np.arange(50))


def test_drop_remainder_drops_the_partial_batch():
    ds = data.ArrayDataset(np.zeros((23, 1), np.float32), np.arange(23, dtype=np.int32))
    batches = list(data.epoch_batches(ds, 5, seed=0, epoch=1, drop_remainder=True))
    assert len(batches) == 4 and all(b["mask"].all() for b in batches)


@pytest.mark.parametrize(
    "batch_size, message",
    [
        (0, "train.batch_size=0: expected a positive integer"),
        (-3, "train.batch_size=-3: expected a positive integer"),
        (2.5, "train.batch_size=2.5: expected a positive integer"),
        (24, r"train.batch_size=24 is larger than the dataset \(23 examples\); expected at most 23"),
    ],
)
def test_bad_batch_sizes(batch_size, message):
    with pytest.raises(InputError, match=message):
        batching.check_batch_size(batch_size, 23)


def test_array_checks():
    with pytest.raises(InputError, match="3 feature rows but 2 labels"):
        data.from_arrays(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(InputError, match=r"features have shape \(3,\); expected \(examples, features\)"):
        data.from_arrays(np.zeros(3), np.zeros(3))
    with pytest.raises(InputError, match="non-finite value .* in row 1"):
        data.from_arrays(np.array([[0.0], [np.nan]]), np.zeros(2))
    with pytest.raises(InputError, match="features must be numbers"):
        data.from_arrays(np.array([["a"], ["b"]]), np.zeros(2))
