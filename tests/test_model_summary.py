import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

from jaxdl import models
from jaxdl.errors import InputError
from jaxdl.model_summary import Summary, summarize


def tutorial_mlp():
    return models.MLP(hidden=(12, 8), num_outputs=1, output_activation="sigmoid")


def variable_sizes(model, input_shape, collection=None):
    """Sum of the sizes of the leaves of `model.init`, one collection or all.

    `jax.eval_shape` gives exactly the leaves `model.init` would (one real init
    is checked below), without the seconds that eager initialisation costs here.
    """
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((2, *input_shape)))
    tree = variables if collection is None else variables[collection]
    return sum(int(np.size(leaf)) for leaf in jax.tree.leaves(tree))


def by_name(summary: Summary) -> dict:
    return {row.name: row for row in summary.rows}


def test_tutorial_mlp_rows_counts_and_shapes():
    summary = summarize(tutorial_mlp(), (30,))
    assert [(r.name, r.type) for r in summary.rows] == [
        ("input", "Input"),
        ("hidden_0", "Dense"),
        ("hidden_1", "Dense"),
        ("output", "Dense"),
    ]
    assert [(r.weights, r.biases) for r in summary.rows[1:]] == [(360, 12), (96, 8), (8, 1)]
    assert [r.params for r in summary.rows] == [0, 372, 104, 9]
    assert [r.output_shape for r in summary.rows] == [(None, 30), (None, 12), (None, 8), (None, 1)]
    assert summary.batch_size is None
    assert (summary.total_params, summary.trainable_params, summary.non_trainable_params) == (485, 485, 0)
    assert (summary.total_weights, summary.total_biases) == (464, 21)
    assert summary.total_bytes == 485 * 4


def test_tutorial_mlp_count_equals_a_real_init():
    variables = tutorial_mlp().init(jax.random.PRNGKey(0), jnp.ones((1, 30)))
    assert summarize(tutorial_mlp(), (30,)).total_params == sum(leaf.size for leaf in jax.tree.leaves(variables)) == 485


def test_tutorial_mlp_table():
    table = summarize(tutorial_mlp(), (30,)).table()
    for text in ("input (Input)", "hidden_0 (Dense)", "hidden_1 (Dense)", "output (Dense)", "(None, 12)"):
        assert text in table
    assert "Total params: 485 (1.89 KB)" in table
    assert "Trainable params: 485 (1.89 KB)" in table
    assert "Non-trainable params: 0 (0.00 B)" in table
    assert "Weights: 464, biases: 21" in table
    # Fixed width: every layer line has its counts in the same columns as the header.
    lines = table.splitlines()
    header = next(line for line in lines if "Layer (type)" in line)
    hidden_0 = next(line for line in lines if line.startswith(" hidden_0 "))
    assert len(hidden_0) == len(header)
    assert hidden_0.split()[-3:] == ["360", "12", "372"]


@pytest.mark.parametrize(
    "model, input_shape",
    [
        (tutorial_mlp(), (30,)),
        (models.MLP(hidden=(16,), num_outputs=10, output_activation="softmax", dropout_rate=0.2), (28, 28)),
        (models.CNN(conv_features=(4, 8), hidden=(16,), num_outputs=3), (8, 8, 1)),
        (models.CNN(), (28, 28, 1)),
    ],
)
def test_parameter_count_equals_the_initialised_parameters(model, input_shape):
    summary = summarize(model, input_shape)
    assert summary.trainable_params == variable_sizes(model, input_shape, "params")
    assert summary.total_params == variable_sizes(model, input_shape)
    assert summary.total_weights + summary.total_biases == summary.trainable_params
    assert f"Total params: {summary.total_params:,} (" in summary.table()


def test_cnn_layers_including_pooling_and_flatten():
    summary = summarize(models.CNN(), (28, 28, 1))
    assert [(r.name, r.type, r.output_shape) for r in summary.rows] == [
        ("input", "Input", (None, 28, 28, 1)),
        ("conv_0", "Conv", (None, 28, 28, 32)),
        ("max_pool", "MaxPool", (None, 14, 14, 32)),
        ("conv_1", "Conv", (None, 14, 14, 64)),
        ("max_pool_1", "MaxPool", (None, 7, 7, 64)),
        ("flatten", "Flatten", (None, 7 * 7 * 64)),
        ("hidden_0", "Dense", (None, 128)),
        ("output", "Dense", (None, 10)),
    ]
    rows = by_name(summary)
    assert (rows["conv_0"].weights, rows["conv_0"].biases) == (3 * 3 * 1 * 32, 32)
    assert (rows["conv_1"].weights, rows["conv_1"].biases) == (3 * 3 * 32 * 64, 64)
    assert (rows["hidden_0"].weights, rows["hidden_0"].biases) == (3136 * 128, 128)
    table = summary.table()
    for row in summary.rows:
        assert f" {row.name} ({row.type}) " in table
    assert "Total params: 421,642 (1.61 MB)" in table


def test_small_cnn_with_dropout_keeps_call_order():
    summary = summarize(models.CNN(hidden=(16,), dropout_rate=0.5), (8, 8, 1))
    names = [r.name for r in summary.rows]
    assert names[names.index("hidden_0") + 1].startswith("Dropout")
    assert by_name(summary)["flatten"].output_shape == (None, 2 * 2 * 64)


class _Block(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.Conv(4, (3, 3))(x)
        x = nn.BatchNorm(use_running_average=not train)(x)
        return nn.avg_pool(nn.relu(x), (2, 2), (2, 2))


class _Nested(nn.Module):
    """Submodules from setup, a shared layer, a parameter of its own and batch statistics."""

    def setup(self):
        self.blocks = [_Block() for _ in range(2)]
        self.pre = nn.Dense(8)
        self.shared = nn.Dense(8)
        self.scale = self.param("scale", nn.initializers.ones, (8,))

    def __call__(self, x, train: bool = False):
        for block in self.blocks:
            x = block(x, train)
        x = x.reshape((x.shape[0], -1))
        return self.shared(self.shared(self.pre(x))) * self.scale


def test_any_linen_module_nested_shared_and_with_state():
    model = _Nested()
    summary = summarize(model, (8, 8, 3))
    rows = by_name(summary)
    assert summary.trainable_params == variable_sizes(model, (8, 8, 3), "params")
    assert summary.non_trainable_params == variable_sizes(model, (8, 8, 3), "batch_stats") == 2 * 8
    assert rows["blocks_0/Conv_0"].output_shape == (None, 8, 8, 4)
    assert rows["blocks_1/BatchNorm_0"].state == 8
    assert rows["avg_pool_1"].type == "AvgPool" and rows["avg_pool_1"].output_shape == (None, 2, 2, 4)
    assert rows["flatten"].output_shape == (None, 16)
    assert [r.name for r in summary.rows].count("shared") == 1  # called twice, counted once
    assert "State" in summary.table()
    assert "Non-trainable params: 16 (64.00 B)" in summary.table()


def test_a_single_layer_is_its_own_row():
    summary = summarize(nn.Dense(3), (4,))
    assert [(r.name, r.type, r.weights, r.biases, r.output_shape) for r in summary.rows[1:]] == [
        ("dense", "Dense", 12, 3, (None, 3))
    ]


def test_model_that_needs_a_concrete_batch_size_falls_back_to_one():
    class Branchy(nn.Module):
        @nn.compact
        def __call__(self, x):
            if x.shape[0] > 3:  # a symbolic batch cannot answer this
                x = x * 2
            return nn.Dense(3)(x)

    summary = summarize(Branchy(), (4,))
    assert summary.batch_size == 1
    assert summary.rows[-1].output_shape == (1, 3)
    assert summary.total_params == 15


def test_integer_inputs_with_dtype():
    class Tokens(nn.Module):
        @nn.compact
        def __call__(self, ids):
            return nn.Dense(2)(nn.Embed(100, 8)(ids).mean(axis=1))

    summary = summarize(Tokens(), (6,), dtype=jnp.int32)
    rows = by_name(summary)
    assert rows["Embed_0"].output_shape == (None, 6, 8) and rows["Embed_0"].weights == 800
    assert summary.total_params == 800 + 8 * 2 + 2


@pytest.mark.parametrize("bad", [(0,), (30.0,), "30", None, (True,)])
def test_bad_input_shape_names_the_argument(bad):
    with pytest.raises(InputError, match=r"input_shape=.*expected a tuple of positive integers"):
        summarize(tutorial_mlp(), bad)


class _NeedsThirty(nn.Module):
    @nn.compact
    def __call__(self, x):
        if x.shape[-1] != 30:
            raise ValueError(f"expected 30 features, got {x.shape[-1]}")
        return nn.Dense(1)(x)


def test_model_that_cannot_take_the_shape_is_an_input_error():
    with pytest.raises(
        InputError,
        match=r"input_shape=\(5, 5, 1\): _NeedsThirty failed on inputs of shape \(batch, 5, 5, 1\): "
        r"ValueError: expected 30 features, got 1",
    ):
        summarize(_NeedsThirty(), (5, 5, 1))


def test_not_a_flax_module_is_an_input_error():
    with pytest.raises(InputError, match="model=function: expected a Flax Linen module"):
        summarize(lambda x: x, (3,))


def test_str_is_the_table():
    summary = summarize(tutorial_mlp(), (30,))
    assert str(summary) == summary.table()
