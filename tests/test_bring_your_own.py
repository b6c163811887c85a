"""The researcher's own model, loss and Task through `jaxdl.fit`: Linen, NNX, callables, a Task; ensembles and meshes; bad input."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from sklearn.datasets import load_digits

import jaxdl
from jaxdl import task as task_lib
from jaxdl.errors import InputError
from jaxdl.state import TrainState


@pytest.fixture(scope="module")
def digits():
    """sklearn's digits: pixels scaled to [0, 1], 1,437 train / 360 test rows, 10 classes."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    x, y = x[order], y[order].astype(np.int32)
    return (x[:1437], y[:1437]), (x[1437:], y[1437:])


class PlainMLP(nn.Module):
    """A Linen module as a researcher writes it: `__call__(self, x)` returning logits, nothing else."""

    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(32)(x))
        return nn.Dense(10)(x)


class KwargsMLP(nn.Module):
    """A module with a `**kwargs` catch-all: it must get no keyword it did not name (no `logits=True` to ignore)."""

    @nn.compact
    def __call__(self, x, **kwargs):
        assert not kwargs, kwargs
        return nn.Dense(10)(nn.relu(nn.Dense(32)(x)))


class NNXMLP(nnx.Module):
    """An NNX module with dropout: trained functionally (split outside, merge inside the compiled step)."""

    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, 32, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.out = nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(self.dropout(nnx.relu(self.hidden(x))))


def _fit(model, digits, **options):
    (x, y), test = digits
    options = {"epochs": 8, "batch_size": 32, "optimizer": {"name": "adam", "learning_rate": 0.01},
               "loss": "categorical_crossentropy", "verbose": False, **options}
    return jaxdl.fit(model, (x, y), validation_data=test, **options)


@pytest.mark.parametrize("model", [PlainMLP(), KwargsMLP(), lambda rngs: NNXMLP(rngs)], ids=["linen", "kwargs", "nnx"])
def test_a_researchers_module_learns_digits(digits, model):
    state, history = _fit(model, digits)
    assert history.last["eval_accuracy"] > 0.93  # chance is 0.1
    probabilities = jaxdl.predict(state, digits[1][0][:5])
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)  # the loss's head: softmax


def test_fit_fuses_steps_as_asked(digits):
    fused, _ = _fit(PlainMLP(), digits, epochs=2)
    stepwise, _ = _fit(PlainMLP(), digits, epochs=2, steps_per_call=1, pipeline="host")
    for a, b in zip(jax.tree.leaves(fused.params), jax.tree.leaves(stepwise.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="steps_per_call=0: expected a positive integer"):
        _fit(PlainMLP(), digits, steps_per_call=0)


def test_an_nnx_instance_starts_from_its_own_weights(digits):
    module = NNXMLP(nnx.Rngs(3))
    state, history = _fit(module, digits, epochs=1)
    assert history.last["eval_accuracy"] > 0.5
    with pytest.raises(InputError, match="factory"):
        _fit(module, digits, ensemble=4)


def test_a_callable_loss_and_extra_metrics(digits):
    def top2(logits, labels):
        return jnp.any(jax.lax.top_k(logits, 2)[1] == labels[:, None], axis=-1).astype(jnp.float32)

    _, history = _fit(PlainMLP(), digits, loss=optax.softmax_cross_entropy_with_integer_labels, metrics={"top2": top2})
    _, named = _fit(PlainMLP(), digits)
    # The same loss as the named one: the same training, to float tolerance.
    np.testing.assert_allclose(history.last["eval_loss"], named.last["eval_loss"], rtol=1e-5)
    assert history.last["eval_top2"] >= 0.95
    assert "eval_accuracy" not in history.last  # a function's outputs mean nothing more to jaxdl than its loss


class Autoencoder(jaxdl.Task):
    """A user's Task: an autoencoder of digits, written against the protocol only."""

    name = "my_autoencoder"

    def __init__(self):
        self.net = nn.Sequential([nn.Dense(32), nn.relu, nn.Dense(8), nn.Dense(32), nn.relu, nn.Dense(64)])
        self.tx = optax.adam(0.01)

    def init(self, rng):
        params = self.net.init(rng, jnp.zeros((1, 64)))["params"]
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.tx.init(params), rng=rng,
                          model_state={}, tx=self.tx)

    def _sums(self, params, batch):
        error = jnp.mean(jnp.square(self.net.apply({"params": params}, batch["x"]) - batch["x"]), axis=-1)
        return jnp.sum(error * batch["mask"]), jnp.sum(batch["mask"])

    def train_step(self, state, batch):
        def loss(params):
            total, count = self._sums(params, batch)
            return total / jnp.maximum(jaxdl.psum(count), 1.0), (total, count)

        (_, (total, count)), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
        return state.apply_gradients(jaxdl.psum(grads), state.model_state), {"loss_sum": total, "count": count}

    def eval_step(self, state, batch):
        total, count = self._sums(state.params, batch)
        return {"loss_sum": total, "count": count}


def test_a_user_task_trains_with_fit(digits):
    (x, _), (x_test, _) = digits
    mean_image = float(np.mean(np.square(x.mean(axis=0) - x_test)))
    state, history = jaxdl.fit(Autoencoder(), {"x": x}, epochs=10, batch_size=32, validation_data={"x": x_test},
                               verbose=False)
    assert history.last["eval_loss"] < 0.5 * mean_image  # better than drawing the mean image
    assert int(state.step) == 10 * 45
    # What shapes fit's own supervised Task is refused for a Task of one's own, never ignored.
    with pytest.raises(InputError, match=r"loss, metrics: set for a Task of your own \(Autoencoder\)"):
        jaxdl.fit(Autoencoder(), {"x": x}, loss="mse", metrics={"m": lambda o, y: o}, verbose=False)


@pytest.mark.parametrize("which", ["linen", "nnx", "callable_loss", "task"])
def test_every_kind_runs_as_an_ensemble_of_4_and_under_a_mesh_of_8(digits, which):
    (x, y), (x_test, y_test) = digits
    if which == "task":
        def run(**options):
            return jaxdl.fit(Autoencoder(), {"x": x}, epochs=2, batch_size=32, validation_data={"x": x_test},
                             verbose=False, **options)
    else:
        model = {"linen": PlainMLP(), "nnx": lambda rngs: NNXMLP(rngs), "callable_loss": PlainMLP()}[which]
        loss = optax.softmax_cross_entropy_with_integer_labels if which == "callable_loss" else "categorical_crossentropy"

        def run(**options):
            return _fit(model, digits, epochs=2, loss=loss, **options)

    single, history = run(parallel="single")
    ensemble, ensemble_history = run(ensemble=4, parallel="single")
    assert len(ensemble_history.last["eval_loss_members"]) == 4
    # Member 0 is the model seed 0 gives on its own (vmapped: float tolerance).
    member = jaxdl.ensemble.member(ensemble, 0)
    for a, b in zip(jax.tree.leaves(single.params), jax.tree.leaves(member.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)
    meshed, mesh_history = run(parallel="mesh")
    assert len(jax.devices()) == 8 and mesh_history.last["eval_loss"] == pytest.approx(history.last["eval_loss"], rel=1e-4)


# -- bad input: an InputError naming the problem before anything compiles ---------------------------------------


class FiveOutputs(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(5)(x)


def test_a_module_whose_width_does_not_fit_the_labels_fails_before_compiling(digits, compiles):
    before = compiles.count
    with pytest.raises(InputError, match=r"model FiveOutputs returns 5 logits per example, but y labels go up to 9 \(10 classes\)"):
        _fit(FiveOutputs(), digits)
    with pytest.raises(InputError, match=r"needs 1 output unit.*shape \(4, 5\)"):
        _fit(FiveOutputs(), ((digits[0][0], digits[0][1] % 2), None), loss="binary_crossentropy")
    assert compiles.count == before


def test_a_loss_that_returns_the_wrong_shape_fails_before_compiling(digits, compiles):
    before = compiles.count
    # (B, 10) logits against (B,) labels with an elementwise loss: (B, 10), not one loss per example.
    with pytest.raises(InputError, match=r"returns shape \(4, 10\).*expected one loss per example"):
        _fit(PlainMLP(), digits, loss=lambda logits, labels: jnp.square(logits - labels[:, None]))
    assert compiles.count == before


class ChangesItsState(Autoencoder):
    def train_step(self, state, batch):
        state, totals = super().train_step(state, batch)
        return state.replace(step=state.step.astype(jnp.float32)), totals


class ReturnsMeans(Autoencoder):
    def train_step(self, state, batch):
        state, totals = super().train_step(state, batch)
        return state, {"loss": jnp.zeros(3)}


def test_a_task_whose_step_changes_the_state_structure_fails_before_compiling(digits, compiles):
    (x, _), _ = digits
    before = compiles.count
    with pytest.raises(InputError, match=r"ChangesItsState.train_step returns a state that differs.*\.step.*int32.*float32"):
        jaxdl.fit(ChangesItsState(), {"x": x}, epochs=1, batch_size=32, verbose=False)
    with pytest.raises(InputError, match=r"total 'loss' of shape \(3,\); expected a scalar sum"):
        jaxdl.fit(ReturnsMeans(), {"x": x}, epochs=1, batch_size=32, verbose=False)
    assert compiles.count == before


def test_task_check_needs_a_step_attribute():
    class NoStep(Autoencoder):
        def init(self, rng):
            return {"params": self.net.init(rng, jnp.zeros((1, 64)))["params"]}

    batch = {"x": jax.ShapeDtypeStruct((4, 64), jnp.float32), "mask": jax.ShapeDtypeStruct((4,), jnp.float32)}
    with pytest.raises(InputError, match="has no `step` attribute"):
        task_lib.check(NoStep(), batch)


def test_a_step_that_forgets_psum_under_pmap_is_an_error_not_a_silent_answer(digits):
    class NoPsum(Autoencoder):
        def train_step(self, state, batch):
            def loss(params):
                total, count = self._sums(params, batch)
                return total / count, (total, count)

            (_, (total, count)), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
            return state.apply_gradients(grads, state.model_state), {"loss_sum": total, "count": count}

    (x, _), _ = digits
    with pytest.raises(InputError, match=r"parallel=.pmap.: NoPsum.train_step returns a state that differs between devices.*jaxdl.parallel.psum"):
        jaxdl.fit(NoPsum(), {"x": x}, epochs=1, batch_size=32, parallel="pmap", verbose=False)


TASK_FILE = '''
"""A researcher's task in a file of their own: a linear autoencoder of digits, trained by `jaxdl train`."""
import flax.linen as nn, jax, jax.numpy as jnp, numpy as np
from sklearn.datasets import load_digits
import jaxdl
from jaxdl import config, data, optim, tasks


class LinearAutoencoder(jaxdl.Task):
    def __init__(self, width, tx):
        self.net, self.tx = nn.Sequential([nn.Dense(width), nn.Dense(64)]), tx

    def init(self, rng):
        params = self.net.init(rng, jnp.zeros((1, 64)))["params"]
        return jaxdl.TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.tx.init(params),
                                rng=rng, model_state={}, tx=self.tx)

    def _sums(self, params, batch):
        error = jnp.mean(jnp.square(self.net.apply({"params": params}, batch["x"]) - batch["x"]), axis=-1)
        return jnp.sum(error * batch["mask"]), jnp.sum(batch["mask"])

    def train_step(self, state, batch):
        def loss(params):
            total, count = self._sums(params, batch)
            return total / jaxdl.psum(count), (total, count)
        (_, (total, count)), grads = jax.value_and_grad(loss, has_aux=True)(state.params)
        return state.apply_gradients(jaxdl.psum(grads), {}), {"loss_sum": total, "count": count}

    def eval_step(self, state, batch):
        total, count = self._sums(state.params, batch)
        return {"loss_sum": total, "count": count}


def default_config():
    cfg = config.base_config("unused")
    cfg.model.width = 8
    cfg.data.name = "digits"
    cfg.train.epochs, cfg.train.batch_size = 3, 32
    cfg.optimizer.learning_rate = 0.01
    return cfg


def build(cfg):
    x = (load_digits().data / 16).astype(np.float32)
    train, test = data.Examples(x=x[:1400]), data.Examples(x=x[1400:])
    steps = tasks.steps_per_epoch(cfg, len(train))
    task = LinearAutoencoder(cfg.model.width, optim.from_config(cfg, total_steps=steps * cfg.train.epochs))
    info = data.DatasetInfo(name="digits", num_examples=len(train), feature_shape=(64,), num_classes=None,
                            class_names=(), description="")
    return tasks.Built(task=task, splits=data.Splits(train=train, test=test, info=info),
                       description=f"a linear autoencoder of width {cfg.model.width}",
                       headline=lambda summary: f"test reconstruction error {summary['eval_loss']:.4f}")
'''


def test_a_task_in_a_file_of_ones_own_trains_from_the_command_line_and_resumes(tmp_path, capsys):
    from jaxdl import cli

    (tmp_path / "linear_autoencoder.py").write_text(TASK_FILE)
    (tmp_path / "experiment.py").write_text(
        "import ml_collections\n\ndef get_config():\n"
        "    return ml_collections.ConfigDict({'task': 'linear_autoencoder.py', 'model': {'width': 4}})\n")
    workdir = str(tmp_path / "run")
    argv = ["train", "--quiet", "--workdir", workdir, "--config", str(tmp_path / "experiment.py")]
    assert cli.main(argv + ["--config.ensemble.size=2", "--config.parallel=single"]) == 0
    out = capsys.readouterr().out
    assert "ensemble of 2: test loss mean" in out
    assert cli.main(argv + ["--config.ensemble.size=2", "--config.parallel=single"]) == 0  # finished: rerun resumes
    assert cli.main(["eval", "--workdir", workdir]) == 0
    assert "loss" in capsys.readouterr().out
    with pytest.raises(InputError, match="no such file"):
        from jaxdl import config

        config.task_module(str(tmp_path / "missing.py"))
