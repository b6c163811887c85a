import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxdl import activations, models
from jaxdl.errors import InputError


def test_mlp_shapes_and_parameter_count():
    model = models.MLP(hidden=(12, 8), num_outputs=1, output_activation="sigmoid")
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 30)))
    shapes = jax.tree.map(jnp.shape, variables["params"])
    assert shapes == {
        "hidden_0": {"kernel": (30, 12), "bias": (12,)},
        "hidden_1": {"kernel": (12, 8), "bias": (8,)},
        "output": {"kernel": (8, 1), "bias": (1,)},
    }
    assert model.apply(variables, jnp.zeros((5, 30))).shape == (5, 1)


def test_neuron_is_weighted_sum_plus_bias_then_activation():
    # One layer, no hidden layers: output = sigmoid(w . x + b), the tutorial's neuron.
    model = models.MLP(hidden=(), num_outputs=1, output_activation="sigmoid")
    variables = model.init(jax.random.PRNGKey(1), jnp.zeros((1, 3)))
    w = variables["params"]["output"]["kernel"][:, 0]
    b = variables["params"]["output"]["bias"][0]
    x = jnp.array([[0.5, -1.0, 2.0]])
    z = model.apply(variables, x, logits=True)
    np.testing.assert_allclose(z[0, 0], x[0] @ w + b, rtol=1e-6)
    np.testing.assert_allclose(model.apply(variables, x)[0, 0], 1 / (1 + np.exp(-(x[0] @ w + b))), rtol=1e-6)


def test_sigmoid_outputs_in_open_unit_interval_and_softmax_sums_to_one():
    x = jax.random.normal(jax.random.PRNGKey(0), (64, 10)) * 5
    binary = models.MLP(hidden=(16,), num_outputs=1, output_activation="sigmoid")
    out = binary.apply(binary.init(jax.random.PRNGKey(1), x), x)
    assert bool(jnp.all((out > 0) & (out < 1)))
    digits = models.MLP(hidden=(16,), num_outputs=10, output_activation="softmax")
    probs = digits.apply(digits.init(jax.random.PRNGKey(2), x), x)
    assert probs.shape == (64, 10)
    assert bool(jnp.all(probs >= 0))
    np.testing.assert_allclose(probs.sum(axis=-1), np.ones(64), rtol=1e-5)


@pytest.mark.parametrize("name", sorted(activations.ACTIVATIONS))
def test_every_activation_runs_in_an_mlp(name):
    model = models.MLP(hidden=(4,), activation=name, num_outputs=2, output_activation="identity")
    x = jnp.linspace(-3, 3, 12).reshape(4, 3)
    out = model.apply(model.init(jax.random.PRNGKey(0), x), x)
    assert out.shape == (4, 2) and bool(jnp.all(jnp.isfinite(out)))


def test_activation_values():
    z = jnp.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(activations.get("relu")(z), [0, 0, 3])
    np.testing.assert_allclose(activations.get("identity")(z), z)
    np.testing.assert_allclose(activations.get("sigmoid")(z), 1 / (1 + np.exp(-np.asarray(z))), rtol=1e-6)
    np.testing.assert_allclose(activations.get("tanh")(z), np.tanh(z), rtol=1e-6)
    e = np.exp(np.asarray(z))
    np.testing.assert_allclose(activations.get("softmax")(z), e / e.sum(), rtol=1e-6)


def test_dense_layer_gradients_match_finite_differences():
    # float64 so central differences are accurate to ~1e-9.
    with jax.enable_x64(True):
        layer = nn.Dense(3, param_dtype=jnp.float64, dtype=jnp.float64)
        x = jax.random.normal(jax.random.PRNGKey(0), (5, 4), jnp.float64)
        params = layer.init(jax.random.PRNGKey(1), x)["params"]

        def loss(p):
            return jnp.sum(jnp.tanh(layer.apply({"params": p}, x)) ** 2)

        grads = jax.grad(loss)(params)
        eps = 1e-6
        for name in ("kernel", "bias"):
            flat = np.asarray(params[name]).ravel()
            numeric = np.zeros_like(flat)
            for i in range(flat.size):
                up, down = flat.copy(), flat.copy()
                up[i] += eps
                down[i] -= eps
                f_up = loss({**params, name: jnp.asarray(up.reshape(params[name].shape))})
                f_down = loss({**params, name: jnp.asarray(down.reshape(params[name].shape))})
                numeric[i] = (f_up - f_down) / (2 * eps)
            np.testing.assert_allclose(np.asarray(grads[name]).ravel(), numeric, rtol=1e-6, atol=1e-9)


def test_per_layer_activations_and_dropout_uses_rng():
    model = models.MLP(hidden=(32, 32), activation=("tanh", "relu"), dropout_rate=0.5, num_outputs=1)
    x = jnp.ones((4, 3))
    variables = model.init(jax.random.PRNGKey(0), x)
    a = model.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    b = model.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    c = model.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(model.apply(variables, x), model.apply(variables, x))  # no dropout at eval


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"activation": "relux"}, "'relux' is not a known activation; expected one of: elu, gelu"),
        ({"hidden": (12, 0)}, "model.hidden=(12, 0): expected positive integer layer widths"),
        ({"activation": ("relu",), "hidden": (4, 4)}, "expected one name, or one per hidden layer (2)"),
        ({"output_activation": "tanh"}, "model.output='tanh': expected one of sigmoid, softmax, identity"),
        ({"dropout_rate": 1.0}, "model.dropout=1.0: expected a rate in [0, 1)"),
    ],
)
def test_bad_model_settings_are_named(kwargs, message):
    with pytest.raises(InputError) as err:
        models.check_mlp(models.MLP(**kwargs))
    assert message in str(err.value)


def test_feature_width_mismatch_is_reported():
    model = models.MLP(input_dim=8)
    models.check_features(model, (10, 8))
    with pytest.raises(InputError, match=r"shape \(10, 30\).*expects input_dim=8 features"):
        models.check_features(model, (10, 30))


def test_cnn_shapes_and_training_step():
    model = models.CNN(conv_features=(8, 16), hidden=(32,), num_outputs=10)
    x = jnp.zeros((4, 28, 28, 1))
    variables = model.init(jax.random.PRNGKey(0), x)
    shapes = jax.tree.map(jnp.shape, variables["params"])
    assert shapes["conv_0"]["kernel"] == (3, 3, 1, 8) and shapes["conv_1"]["kernel"] == (3, 3, 8, 16)
    assert shapes["hidden_0"]["kernel"] == (7 * 7 * 16, 32)  # two 2x2 poolings: 28 -> 14 -> 7
    probs = model.apply(variables, x)
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=-1), np.ones(4), rtol=1e-5)
    assert model.apply(variables, jnp.zeros((2, 28, 28))).shape == (2, 10)  # a channel is added


def test_cnn_batch_norm_keeps_running_statistics_and_evaluates_with_them():
    import optax

    from jaxdl import losses, state as state_lib, step

    model = models.CNN(conv_features=(4,), hidden=(8,), num_outputs=3, batch_norm=True, image_shape=(8, 8, 1))
    state = state_lib.create(model, optax.adam(1e-2), rng=jax.random.PRNGKey(0), input_shape=(64,))
    assert set(state.model_state) == {"batch_stats"}
    assert "bias" not in state.params["conv_0"]  # the normalisation's shift replaces the convolution's bias
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(2.0, 3.0, (16, 64)).astype(np.float32), "y": rng.integers(0, 3, 16),
             "mask": np.ones(16, np.float32)}
    train = jax.jit(step.make_train_step(losses.get("categorical_crossentropy")))
    first_loss = None
    for _ in range(20):
        state, totals = train(state, batch)
        first_loss = first_loss if first_loss is not None else float(totals["loss_sum"])
    assert float(totals["loss_sum"]) < first_loss
    mean = np.asarray(state.model_state["batch_stats"]["batch_norm_0"]["mean"])
    assert np.all(mean != 0)  # the running statistics moved toward the data's
    # Evaluation uses the running statistics: the same output for an example alone or in a batch.
    alone = model.apply(state.variables(), batch["x"][:1])
    together = model.apply(state.variables(), batch["x"])[:1]
    np.testing.assert_allclose(alone, together, rtol=1e-5, atol=1e-6)
