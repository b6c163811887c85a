import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn import datasets as skd

from conftest import supervised_task, zeros_for
from jaxdl import data, feed, losses, metrics, models, parallel, state as state_lib
from jaxdl.data import batching, csv_source, order, transforms
from jaxdl.errors import InputError


def test_embedded_datasets_through_tfds_have_their_documented_size():
    for name, total, features, classes in (("breast_cancer", 569, 30, 2), ("digits", 1797, 64, 10),
                                           ("iris", 150, 4, 3), ("wine", 178, 13, 3)):
        splits = data.load(name)
        assert len(splits.train) + len(splits.test) == total == splits.info.num_examples
        assert splits.info.feature_shape == (features,) and splits.info.num_classes == classes
        assert splits.train.x.dtype == np.float32 and splits.train.y.dtype == np.int32
        assert set(np.unique(splits.test.y)) == set(range(classes))


def test_stratified_split_holds_out_the_fraction_of_each_class():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    train, held = data.sources.stratified_split(labels, 0.2, seed=3)
    assert np.bincount(labels[held]).tolist() == [10, 6, 4] and sorted(np.r_[train, held].tolist()) == list(range(100))
    again, _ = data.sources.stratified_split(labels, 0.2, seed=3)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, data.sources.stratified_split(labels, 0.2, seed=4)[0])


def test_split_is_fixed_by_split_seed_and_stratified():
    a, b = data.load("breast_cancer"), data.load("breast_cancer")
    np.testing.assert_array_equal(a.test.x, b.test.x)
    assert not np.array_equal(a.test.x, data.load("breast_cancer", split_seed=1).test.x)
    # Stratified: the test split has the dataset's class balance (212 malignant of 569).
    assert abs(np.mean(a.test.y == 0) - 212 / 569) < 0.01 and len(a.test) == 113  # 42 of 212 and 71 of 357


def test_validation_split_is_carved_from_train():
    splits = data.load("digits", validation_fraction=0.25)
    assert len(splits.test) == 359 and len(splits.validation) == 359 and len(splits.train) == 1079
    assert set(map(bytes, splits.validation.x)).isdisjoint(map(bytes, splits.train.x))


def test_scaling_is_fitted_on_the_training_split_only():
    splits = data.load("breast_cancer")
    np.testing.assert_allclose(splits.train.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(splits.train.x.std(axis=0), 1, atol=1e-4)
    assert np.abs(splits.test.x.mean(axis=0)).max() > 0.01  # scaled with the training statistics
    raw = skd.load_breast_cancer().data.astype(np.float32)
    restored = data.Scaler.from_dict(json.loads(json.dumps(splits.scaler.to_dict())))
    np.testing.assert_allclose(restored.transform(raw).mean(axis=0), splits.scaler.transform(raw).mean(axis=0))


def test_constant_feature_keeps_unit_scale():
    x = np.c_[np.ones(5), np.arange(5.0)].astype(np.float32)
    for kind in data.SCALINGS:
        assert np.all(np.isfinite(data.Scaler.fit(x, kind).transform(x)))
    np.testing.assert_allclose(data.Scaler.fit(x, "minmax").transform(x)[:, 1], [0, 0.25, 0.5, 0.75, 1])


def test_order_is_the_same_in_numpy_and_jax_and_differs_by_seed_and_epoch():
    for n in (1, 23, 455, 1797):
        host = order.permutation(n, seed=3, epoch=2)
        device = jax.jit(lambda s, e: order.permutation(n, seed=s, epoch=e, xp=jnp))(3, 2)
        np.testing.assert_array_equal(host, device)
        assert sorted(host.tolist()) == list(range(n))
    base = order.permutation(50, seed=0, epoch=1)
    assert not np.array_equal(base, order.permutation(50, seed=0, epoch=2))
    assert not np.array_equal(base, order.permutation(50, seed=1, epoch=1))


def _dataset(n=23):
    return data.ArrayDataset(np.arange(n, dtype=np.float32)[:, None], np.arange(n, dtype=np.int32))


def _epoch(pipeline, epoch):
    return [b["y"][b["mask"] > 0].tolist() for b in pipeline.iterator(epoch)]


def test_pipeline_serves_every_example_once_per_epoch_with_a_padded_last_batch():
    pipeline = data.HostPipeline(_dataset(), batch_size=5, seed=3)
    batches = list(pipeline.iterator(1))
    assert len(batches) == pipeline.steps_per_epoch == 5 and all(b["x"].shape == (5, 1) for b in batches)
    assert sorted(sum(_epoch(pipeline, 1), [])) == list(range(23))
    assert batches[-1]["mask"].tolist() == [1, 1, 1, 0, 0]
    dropped = data.HostPipeline(_dataset(), batch_size=5, seed=3, drop_remainder=True)
    assert len(list(dropped.iterator(1))) == 4


def test_pipeline_same_seed_same_batches_different_seed_or_epoch_different():
    a, b = data.HostPipeline(_dataset(), batch_size=5, seed=0), data.HostPipeline(_dataset(), batch_size=5, seed=0)
    assert _epoch(a, 1) == _epoch(b, 1)
    assert _epoch(a, 1) != _epoch(a, 2)
    assert _epoch(a, 1) != _epoch(data.HostPipeline(_dataset(), batch_size=5, seed=1), 1)
    unshuffled = data.HostPipeline(_dataset(), batch_size=5, seed=0, shuffle=False)
    assert sum(_epoch(unshuffled, 1), []) == list(range(23))


@pytest.mark.parametrize("workers", [0, 2])
def test_iterator_state_restores_exactly(workers):
    pipeline = data.HostPipeline(_dataset(), batch_size=5, seed=7, workers=workers)
    iterator = pipeline.iterator(1, 3)  # epochs 1-3: 15 batches
    first = [next(iterator) for _ in range(7)]
    state = json.loads(json.dumps(iterator.get_state()))  # small and serialisable
    assert state == {"epoch": 2, "step": 2}
    rest = [b["y"].tolist() for b in iterator]
    fresh = data.HostPipeline(_dataset(), batch_size=5, seed=7, workers=workers)
    resumed = [b["y"].tolist() for b in fresh.iterator(last_epoch=3, state=state)]
    assert resumed == rest and len(first) + len(rest) == 15
    # Across epochs the iterator serves each epoch's own order.
    assert [b["y"].tolist() for b in first[5:]] == [b["y"].tolist() for b in pipeline.iterator(2)][:2]


def test_two_process_shards_are_disjoint_cover_the_split_and_run_equal_steps():
    for n, batch in ((23, 5), (21, 5), (455, 10)):
        shards = [data.HostPipeline(_dataset(n), batch_size=batch, seed=1, shard_index=i, shard_count=2) for i in (0, 1)]
        assert shards[0].steps_per_epoch == shards[1].steps_per_epoch
        seen = [sum(_epoch(s, 3), []) for s in shards]
        assert set(seen[0]).isdisjoint(seen[1]) and sorted(seen[0] + seen[1]) == list(range(n))


def test_device_resident_plan_equals_the_host_pipeline_batches():
    ds = _dataset(455)
    host = [b for b in data.HostPipeline(ds, batch_size=10, seed=4).iterator(3)]
    plan = jax.jit(lambda s, e: order.epoch_indices(455, 10, seed=s, epoch=e, xp=jnp))
    indices, mask = plan(4, 3)
    for i, batch in enumerate(host):
        np.testing.assert_array_equal(ds.y[np.asarray(indices[i])], batch["y"])
        np.testing.assert_array_equal(np.asarray(mask[i]), batch["mask"])


def test_device_and_host_feeds_train_identically():
    splits = data.load("breast_cancer")
    task = supervised_task(models.MLP(hidden=(12, 8), num_outputs=1), tx=optax.adam(1e-3), input_shape=(30,))
    results = {}
    for kind in ("device", "host"):
        f = feed.make(splits.train, task.train_step, batch_size=10, seed=0, pipeline=kind)
        assert f.kind == kind
        state = parallel.init_state(task.init, 0)
        zeros = zeros_for(task.train_step, state, {**splits.train.read(np.arange(10)), "mask": np.ones(10, np.float32)})
        for epoch in (1, 2):
            state, totals = f.run_epoch(state, dict(zeros), epoch)
        results[kind] = (state.params, parallel.fetch(totals))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), results["device"][0], results["host"][0])
    if jax.default_backend() == "cpu":
        assert state_lib.params_sha256(results["device"][0]) == state_lib.params_sha256(results["host"][0])
    assert results["device"][1]["count"] == results["host"][1]["count"] == 456


def test_auto_feed_picks_the_device_under_the_size_limit():
    train_step = supervised_task(models.MLP(hidden=(4,), num_outputs=1), input_shape=_dataset().x.shape[1:]).train_step
    assert feed.make(_dataset(), train_step, batch_size=5, seed=0).kind == "device"
    assert feed.make(_dataset(), train_step, batch_size=5, seed=0, device_max_bytes=10).kind == "host"
    with pytest.raises(InputError, match="data.pipeline='gpu' is not known"):
        feed.make(_dataset(), train_step, batch_size=5, seed=0, pipeline="gpu")


def test_transforms():
    batch = {"x": np.full((2, 2, 2, 1), 255, np.uint8), "y": np.array([1, 2]), "mask": np.ones(2, np.float32)}
    out = transforms.Chain((transforms.NormalizeImages(), transforms.Flatten(), transforms.OneHot(3)))(batch)
    np.testing.assert_array_equal(out["x"], np.ones((2, 4), np.float32))
    np.testing.assert_array_equal(out["y"], [[0, 1, 0], [0, 0, 1]])
    scaler = data.Scaler.fit(np.array([[0.0], [2.0]]))
    np.testing.assert_allclose(transforms.Scale(scaler)({"x": np.array([[2.0]])})["x"], [[1.0]])


def test_one_hot_labels_give_the_same_loss_and_accuracy():
    cce = losses.get("categorical_crossentropy")
    logits = jnp.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    ints, onehot = jnp.array([0, 1]), jnp.eye(3)[jnp.array([0, 1])]
    np.testing.assert_allclose(cce.per_example(logits, ints, None), cce.per_example(logits, onehot, None), rtol=1e-6)
    mask = jnp.ones(2)
    a = metrics.batch_totals(cce, logits, None, ints, mask, cce.per_example(logits, ints, None))
    b = metrics.batch_totals(cce, logits, None, onehot, mask, cce.per_example(logits, onehot, None))
    assert float(a["accuracy_sum"]) == float(b["accuracy_sum"]) == 1.0


@pytest.mark.parametrize(
    "batch_size, message",
    [
        (0, "train.batch_size=0: expected a positive integer"),
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


def test_csv_reads_features_and_labels(tmp_path):
    path = tmp_path / "pima.csv"
    path.write_text("preg,glucose,Outcome\n6,148,1\n1,85,0\n\n8,183,1\n")
    x, y, names = csv_source.read(str(path))
    np.testing.assert_array_equal(x, [[6, 148], [1, 85], [8, 183]])
    np.testing.assert_array_equal(y, [1, 0, 1])
    assert names == ["preg", "glucose"] and y.dtype == np.int32
    x, y, _ = csv_source.read(str(path), label_column="preg")
    np.testing.assert_array_equal(y, [6, 1, 8])
    (tmp_path / "semi.csv").write_text("1;2;0\n3;4;1\n")
    x, y, names = csv_source.read(str(tmp_path / "semi.csv"), delimiter=";", label_column="first")
    np.testing.assert_array_equal(y, [1, 3]) and names == ["f0", "f1"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,2,0\n3,x,1\n", "bad.csv, line 2, column 2: 'x' is not a number"),
        ("a,b,c\n1,2,0\n3,4\n", "bad.csv, line 3: the row has 2 fields; expected 3 like line 1"),
        ("", "bad.csv: the file is empty"),
        ("a,b\n", "bad.csv: the file has a header row but no data rows"),
        ("a,b,c\n1,2,nan\n", "bad.csv, line 2, column 3: 'nan' is not a finite number"),
    ],
)
def test_csv_errors_name_the_file_line_and_problem(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        csv_source.read(str(path))
    assert message in str(err.value)


def test_csv_label_column_errors(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,0\n")
    with pytest.raises(InputError, match="data.label_column='Outcome' is not a column of .*the columns are: a, b"):
        csv_source.read(str(path), label_column="Outcome")
    with pytest.raises(InputError, match="data.label_column='5' is out of range"):
        csv_source.read(str(path), label_column="5")
