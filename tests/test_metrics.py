import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as skm

from jaxdl import losses, metrics


def test_roc_auc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 500)
    scores = np.round(rng.random(500) + 0.3 * labels, 1)  # rounding makes many ties
    assert metrics.roc_auc(scores, labels) == pytest.approx(skm.roc_auc_score(labels, scores), abs=1e-12)
    assert np.isnan(metrics.roc_auc(scores, np.ones(500)))


def test_binary_totals_match_scikit_learn_and_ignore_padding():
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(50, 1)), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 2, 50))
    mask = jnp.asarray(np.r_[np.ones(40), np.zeros(10)], jnp.float32)
    bce = losses.get("binary_crossentropy")
    per_example = bce.per_example(logits, labels, None)
    totals = metrics.batch_totals(bce, logits, None, labels, mask, per_example)
    result = metrics.compute({k: np.asarray(v) for k, v in totals.items()})
    pred = (np.asarray(logits[:40, 0]) > 0).astype(int)
    y = np.asarray(labels[:40])
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert result["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert result["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert result["loss"] == pytest.approx(float(np.mean(per_example[:40])), rel=1e-6)


def test_totals_merge_by_addition():
    a = {"loss_sum": jnp.float32(2.0), "count": jnp.float32(4.0), "accuracy_sum": jnp.float32(3.0)}
    b = {"loss_sum": jnp.float32(1.0), "count": jnp.float32(4.0), "accuracy_sum": jnp.float32(1.0)}
    assert metrics.compute(metrics.merge(a, b)) == {"loss": 3.0 / 8, "accuracy": 4.0 / 8}


def test_two_class_softmax_counts_as_binary():
    cce = losses.get("categorical_crossentropy")
    assert metrics.is_binary(cce, 2)
    assert not metrics.is_binary(cce, 10)
    logits = jnp.array([[0.0, 1.0], [2.0, 0.0]])
    mask, per_example = jnp.ones(2), cce.per_example(logits, jnp.array([1, 1]), None)
    # Two classes: precision and recall, as for a sigmoid unit; ten: accuracy only.
    assert "true_pos" in metrics.batch_totals(cce, logits, None, jnp.array([1, 1]), mask, per_example)
    ten = jnp.zeros((2, 10))
    assert "true_pos" not in metrics.batch_totals(cce, ten, None, jnp.array([1, 1]), mask, cce.per_example(ten, jnp.array([1, 1]), None))
    pred, scores = metrics.predictions(cce, logits)
    np.testing.assert_array_equal(pred, [1, 0])
    np.testing.assert_allclose(scores, [1 / (1 + np.exp(-1.0)), 1 / (1 + np.exp(2.0))], rtol=1e-6)
