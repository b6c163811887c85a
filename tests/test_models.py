import functools

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

    from conftest import supervised_task

    model = models.CNN(conv_features=(4,), hidden=(8,), num_outputs=3, batch_norm=True, image_shape=(8, 8, 1))
    task = supervised_task(model, loss="categorical_crossentropy", tx=optax.adam(1e-2), input_shape=(64,))
    state = task.init(jax.random.PRNGKey(0))
    assert set(state.model_state) == {"batch_stats"}
    assert "bias" not in state.params["conv_0"]  # the normalisation's shift replaces the convolution's bias
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(2.0, 3.0, (16, 64)).astype(np.float32), "y": rng.integers(0, 3, 16),
             "mask": np.ones(16, np.float32)}
    train = jax.jit(task.train_step)
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


def _resnet_param_count(channels, stage_features, blocks, outputs, batch_norm):
    """Trainable parameters of a ResNet, layer by layer: 3x3 convolutions, 1x1 shortcuts, norms, output."""

    def conv(kernel, cin, cout):
        # With batch normalisation a convolution has no bias; the norm has a scale and a shift per channel.
        return kernel * kernel * cin * cout + (2 * cout if batch_norm else cout)

    total = conv(3, channels, stage_features[0])  # the stem
    previous = stage_features[0]
    for s, features in enumerate(stage_features):
        for b in range(blocks):
            total += conv(3, previous, features) + conv(3, features, features)
            if previous != features or (s > 0 and b == 0):  # the projection shortcut
                total += conv(1, previous, features)
            previous = features
    return total + previous * outputs + outputs  # the dense output layer


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("features, blocks", [((4, 8), 1), ((4, 8, 8), 2)])
def test_resnet_parameter_count_matches_the_formula(features, blocks, batch_norm):
    model = models.ResNet(stage_features=features, blocks_per_stage=blocks, num_outputs=3, batch_norm=batch_norm)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 8, 8, 1)))  # shapes only: fast
    count = sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))
    assert count == _resnet_param_count(1, features, blocks, 3, batch_norm)
    if features == (4, 8) and batch_norm:
        # By hand: stem 9*1*4 + 2*4 = 44; stage 0's block 2 * (9*4*4 + 2*4) = 304; stage 1's block
        # (9*4*8 + 2*8) + (9*8*8 + 2*8) + (1*1*4*8 + 2*8) = 304 + 592 + 48 = 944; output 8*3 + 3 = 27.
        assert count == 44 + 304 + 944 + 27 == 1319
    if batch_norm:
        # Each norm keeps a running mean and variance per channel: one per scale-and-shift pair.
        stats = sum(leaf.size for leaf in jax.tree.leaves(variables["batch_stats"]))
        norms = sum(leaf.size for path, leaf in jax.tree_util.tree_leaves_with_path(variables["params"])
                    if "scale" in jax.tree_util.keystr(path))
        assert stats == 2 * norms > 0
        assert all("bias" not in p for name, p in variables["params"].items() if name != "output" and "kernel" in p)
    else:
        assert set(variables) == {"params"}


def test_resnet_outputs_for_images_and_flat_rows():
    model = models.ResNet(stage_features=(4, 8, 8), blocks_per_stage=1, num_outputs=10)
    images = jax.random.uniform(jax.random.PRNGKey(1), (5, 16, 16, 3))
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), images)  # one compiled init: eager, each shape compiles
    probs = model.apply(variables, images)
    logits = model.apply(variables, images, logits=True)
    assert probs.shape == logits.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(axis=-1), np.ones(5), rtol=1e-5)
    np.testing.assert_allclose(probs, jax.nn.softmax(logits), rtol=1e-5, atol=1e-7)
    # Each stage after the first halves height and width: 16 -> 8 -> 4.
    _, captured = jax.eval_shape(
        functools.partial(model.apply, capture_intermediates=True, mutable=["intermediates"]), variables, images
    )
    shapes = {name: v["__call__"][0].shape for name, v in captured["intermediates"].items() if name.startswith("stage")}
    assert shapes == {"stage_0_block_0": (5, 16, 16, 4), "stage_1_block_0": (5, 8, 8, 8),
                      "stage_2_block_0": (5, 4, 4, 8)}

    # Flat rows are reshaped to image_shape: the same parameters give the same outputs.
    flat = model.clone(image_shape=(16, 16, 3), output_activation="sigmoid")
    out = flat.apply(variables, images.reshape(5, -1))
    np.testing.assert_allclose(out, jax.nn.sigmoid(logits), rtol=1e-5, atol=1e-7)
    grey = models.ResNet(stage_features=(4,), blocks_per_stage=1, num_outputs=2)  # (N, H, W) gets a channel
    assert jax.eval_shape(grey.init_with_output, jax.random.PRNGKey(0), jnp.zeros((2, 8, 8)))[0].shape == (2, 2)


def test_resnet_training_steps_reduce_the_loss_and_keep_running_statistics():
    import optax

    from conftest import supervised_task

    model = models.ResNet(stage_features=(4, 8), blocks_per_stage=1, num_outputs=3, image_shape=(8, 8, 1))
    task = supervised_task(model, loss="categorical_crossentropy", tx=optax.adam(1e-2), input_shape=(64,))
    state = task.init(jax.random.PRNGKey(0))
    assert set(state.model_state) == {"batch_stats"}
    rng = np.random.default_rng(0)
    batch = {"x": rng.normal(0.5, 1.0, (16, 64)).astype(np.float32), "y": rng.integers(0, 3, 16),
             "mask": np.ones(16, np.float32)}
    train = jax.jit(task.train_step)
    loss_sums = []
    for _ in range(10):
        state, totals = train(state, batch)
        loss_sums.append(float(totals["loss_sum"]))
    assert loss_sums[-1] < 0.5 * loss_sums[0]
    mean = np.asarray(state.model_state["batch_stats"]["stem_batch_norm"]["mean"])
    assert np.all(mean != 0)
    # Evaluation uses the running statistics: an example gives the same output alone or in a batch.
    np.testing.assert_allclose(model.apply(state.variables(), batch["x"][:1]),
                               model.apply(state.variables(), batch["x"])[:1], rtol=1e-5, atol=1e-6)


def test_resnet_is_built_from_the_config():
    from jaxdl import config

    cfg = config.default_config()
    cfg.model.name = "resnet"
    cfg.model.resnet.stage_features = (16, 32, 64)
    cfg.model.resnet.blocks_per_stage = 3
    cfg.model.resnet.batch_norm = True
    model = models.build(cfg.model, num_outputs=10, output_activation="softmax")
    assert isinstance(model, models.ResNet)
    assert (model.stage_features, model.blocks_per_stage, model.batch_norm) == ((16, 32, 64), 3, True)
    # ResNet-20: the stem, 3 stages of 3 blocks of 2 convolutions, the output layer.
    assert model.conv_features == (16,) + (16,) * 3 + (32,) * 3 + (64,) * 3 and model.hidden == ()
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)))
    assert sum(leaf.size for leaf in jax.tree.leaves(variables["params"])) == _resnet_param_count(
        3, (16, 32, 64), 3, 10, True) == 272_474  # ResNet-20's well-known ~0.27M


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("stage_features", (), "model.resnet.stage_features=(): expected the channels of each ResNet stage"),
        ("stage_features", (16, 0), "model.resnet.stage_features=(16, 0): expected the channels"),
        ("blocks_per_stage", 0, "model.resnet.blocks_per_stage=0: expected a positive integer"),
        ("activation", "relux", "'relux' is not a known activation"),
        ("image_shape", (8, 8), "model.resnet.image_shape=(8, 8): expected () for image data, or (height, width, channels)"),
    ],
)
def test_bad_resnet_settings_are_named(key, value, message):
    from jaxdl import config

    cfg = config.default_config()
    cfg.model.name = "resnet"
    cfg.model.resnet[key] = value
    with pytest.raises(InputError) as err:
        models.build(cfg.model, num_outputs=10, output_activation="softmax")
    assert message in str(err.value)


def test_resnet_takes_one_activation_name():
    with pytest.raises(InputError, match=r"model.activation=\('relu', 'tanh'\): the ResNet takes one activation name"):
        models.check_resnet(models.ResNet(activation=("relu", "tanh")))
