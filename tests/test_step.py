import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxdl import losses, metrics, models, parallel, state as state_lib, step
from jaxdl.data import ArrayDataset, HostPipeline

BCE = losses.get("binary_crossentropy")


def _state(model=None, lr=0.05, features=4, seed=0):
    model = model or models.MLP(hidden=(8,), num_outputs=1, output_activation="sigmoid")
    return state_lib.create(model, optax.sgd(lr), rng=jax.random.PRNGKey(seed), input_shape=(features,))


def _zeros(kind="binary"):
    return metrics.zeros(kind)


def test_loss_falls_over_training(blobs):
    x, y = blobs
    data = ArrayDataset(x, y.astype(np.int32))
    train = parallel.compile_train_step(step.make_train_step(BCE))
    state, epoch_losses = _state(), []
    for epoch in range(1, 11):
        totals = _zeros()
        for batch in HostPipeline(data, batch_size=16, seed=0).iterator(epoch):
            state, totals = train(state, totals, batch)
        epoch_losses.append(metrics.compute(parallel.fetch(totals))["loss"])
    assert epoch_losses[-1] < 0.5 * epoch_losses[0]
    assert all(b < a for a, b in zip(epoch_losses, epoch_losses[1:4]))
    assert int(state.step) == 10 * 13  # 200 examples at batch 16: 12 full batches + 1 padded


def test_jitted_step_does_not_recompile(blobs, compiles):
    x, y = blobs
    data = ArrayDataset(x, y.astype(np.int32))
    train = parallel.compile_train_step(step.make_train_step(BCE))
    state = _state()
    batches = list(HostPipeline(data, batch_size=16, seed=0).iterator(1))  # the last one is padded
    before = compiles.count
    state, totals = train(state, _zeros(), batches[0])
    assert compiles.count == before + 1
    for batch in batches[1:]:  # later calls, the padded last batch and a new epoch's zeros included
        state, totals = train(state, totals, batch)
    state, totals = train(state, _zeros(), batches[0])
    assert compiles.count == before + 1


def test_padded_batch_gives_the_gradient_of_the_real_rows(blobs):
    x, y = blobs
    train = jax.jit(step.make_train_step(BCE))
    real = {"x": x[:6], "y": y[:6], "mask": np.ones(6, np.float32)}
    padded = {
        "x": np.concatenate([x[:6], x[100:104]]),
        "y": np.concatenate([y[:6], y[100:104]]),
        "mask": np.r_[np.ones(6), np.zeros(4)].astype(np.float32),
    }
    a, totals_a = train(_state(), real)
    b, totals_b = train(_state(), padded)
    # Equal up to float32 rounding: the two batch shapes sum in a different order.
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6), a.params, b.params)
    assert float(totals_b["count"]) == 6.0
    np.testing.assert_allclose(totals_a["loss_sum"], totals_b["loss_sum"], rtol=1e-5)


def test_randomness_comes_from_fold_in_of_step():
    model = models.MLP(hidden=(64,), dropout_rate=0.5, num_outputs=1, output_activation="sigmoid")
    batch = {"x": np.ones((4, 4), np.float32), "y": np.array([0, 1, 0, 1]), "mask": np.ones(4, np.float32)}
    train = jax.jit(step.make_train_step(BCE))
    s0 = _state(model)
    s1a, _ = train(s0, batch)
    s1b, _ = train(_state(model), batch)
    # Same state and step: the same dropout masks, so bit-identical results.
    jax.tree.map(np.testing.assert_array_equal, s1a.params, s1b.params)
    # The run's base key never changes; each step folds in its own step number.
    np.testing.assert_array_equal(s1a.rng, s0.rng)
    assert int(s1a.step) == 1


def test_eval_and_predict_steps():
    state = _state()
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    batch = {"x": x, "y": np.array([0, 1, 1, 0, 1]), "mask": np.ones(5, np.float32)}
    # The model, loss and metric code is clean under strict dtype promotion.
    with jax.numpy_dtype_promotion("strict"):
        totals, scores = jax.jit(step.make_eval_step(BCE))(state, batch)
    probs = jax.jit(step.make_predict_step())(state, x)
    np.testing.assert_allclose(scores, probs[:, 0], rtol=1e-6)
    assert float(totals["count"]) == 5.0


def test_params_sha256_is_exact():
    a, b = _state(seed=0), _state(seed=0)
    assert state_lib.params_sha256(a.params) == state_lib.params_sha256(b.params)
    assert state_lib.params_sha256(a.params) != state_lib.params_sha256(_state(seed=1).params)
    nudged = jax.tree.map(lambda p: p.at[(0,) * p.ndim].add(1e-7), a.params)
    assert state_lib.params_sha256(nudged) != state_lib.params_sha256(a.params)
    assert state_lib.param_count(a.params) == 4 * 8 + 8 + 8 + 1


def test_compiled_initialisation_equals_op_by_op():
    model = models.MLP(hidden=(12, 8), num_outputs=1)
    eager = state_lib.create(model, optax.adam(1e-3), rng=jax.random.PRNGKey(5), input_shape=(30,))
    compiled = parallel.create_state(model, optax.adam(1e-3), rng=jax.random.PRNGKey(5), input_shape=(30,))
    np.testing.assert_array_equal(eager.rng, compiled.rng)
    if jax.default_backend() == "cpu":  # bitwise on CPU; GPUs fuse the float ops of the initialisers differently
        assert state_lib.params_sha256(eager.params) == state_lib.params_sha256(compiled.params)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7), eager.params, compiled.params)
