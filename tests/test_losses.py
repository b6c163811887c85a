import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import activations, losses
from jaxdl.errors import InputError


def test_binary_crossentropy_matches_formula_and_is_stable():
    z = jnp.array([[-3.0], [0.0], [2.0], [100.0]])
    y = jnp.array([0, 1, 1, 0])
    p = 1 / (1 + np.exp(-np.asarray(z[:3, 0], np.float64)))
    expected = -(np.asarray(y[:3]) * np.log(p) + (1 - np.asarray(y[:3])) * np.log(1 - p))
    got = losses.get("binary_crossentropy").per_example(z, y, activations.get("sigmoid"))
    np.testing.assert_allclose(got[:3], expected, rtol=1e-5)
    # A confident wrong answer costs ~|z|, not inf: the loss works on logits.
    np.testing.assert_allclose(got[3], 100.0, rtol=1e-5)


def test_categorical_crossentropy_matches_formula():
    z = jnp.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
    y = jnp.array([1, 0])
    logp = np.log(np.exp(np.asarray(z)) / np.exp(np.asarray(z)).sum(axis=1, keepdims=True))
    got = losses.get("sparse_categorical_crossentropy").per_example(z, y, activations.get("softmax"))
    np.testing.assert_allclose(got, [-logp[0, 1], -logp[1, 0]], rtol=1e-5)


def test_mean_squared_error_uses_the_output_layer():
    z = jnp.array([[0.0], [2.0]])
    y = jnp.array([1.0, 1.0])
    mse = losses.get("mse")
    np.testing.assert_allclose(mse.per_example(z, y, activations.get("identity")), [1.0, 1.0])
    np.testing.assert_allclose(mse.per_example(z, y, activations.get("sigmoid")), [0.25, (1 / (1 + np.exp(-2)) - 1) ** 2], rtol=1e-6)


def test_unknown_loss_lists_known_ones():
    with pytest.raises(InputError, match="loss='hinge' is not a known loss; expected one of: binary_crossentropy, categorical_crossentropy"):
        losses.get("hinge")


def test_defaults_by_task():
    assert losses.for_task(2).name == "binary_crossentropy"
    assert losses.for_task(10).name == "categorical_crossentropy"
    assert losses.for_task(None).name == "mean_squared_error"
    assert losses.output_layer(losses.get("categorical_crossentropy"), 10) == (10, "softmax")
    assert losses.output_layer(losses.get("binary_crossentropy"), 2) == (1, "sigmoid")


def test_head_must_fit_the_loss():
    losses.check_head(losses.get("binary_crossentropy"), 1, "sigmoid")
    with pytest.raises(InputError, match="needs an output layer of 1 sigmoid unit, but the model has 10 softmax"):
        losses.check_head(losses.get("binary_crossentropy"), 10, "softmax")
    with pytest.raises(InputError, match="needs a softmax output layer of at least 2 units"):
        losses.check_head(losses.get("categorical_crossentropy"), 1, "sigmoid")


def test_labels_outside_the_classes_are_named():
    cce = losses.get("categorical_crossentropy")
    losses.check_labels(cce, np.array([0, 4, 9]), 10)
    with pytest.raises(InputError, match=r"row 2 has label 10 .*expected an integer class in \[0, 10\)"):
        losses.check_labels(cce, np.array([0, 4, 10]), 10)
    with pytest.raises(InputError, match=r"row 1 has label -1"):
        losses.check_labels(cce, np.array([0, -1]), 10)
    with pytest.raises(InputError, match=r"row 0 has label 0.5 .*expected an integer class"):
        losses.check_labels(cce, np.array([0.5, 1.0]), 10)
    with pytest.raises(InputError, match=r"row 1 has label 2 .*expected 0 or 1"):
        losses.check_labels(losses.get("binary_crossentropy"), np.array([1, 2, 0]), 1)
    with pytest.raises(InputError, match=r"shape \(3, 10\).*y.argmax\(axis=1\)"):
        losses.check_labels(cce, np.eye(10)[:3], 10)
    with pytest.raises(InputError, match="non-finite value at row 1"):
        losses.check_labels(losses.get("mse"), np.array([1.0, np.nan]), 1)
