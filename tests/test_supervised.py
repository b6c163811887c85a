import jax
import numpy as np
import optax

from conftest import supervised_task, zeros_for
from jaxdl import metrics, models, parallel, state as state_lib
from jaxdl.data import ArrayDataset, HostPipeline


def _task(model=None, lr=0.05, features=4):
    model = model or models.MLP(hidden=(8,), num_outputs=1, output_activation="sigmoid")
    return supervised_task(model, tx=optax.sgd(lr), input_shape=(features,))


def _state(model=None, lr=0.05, features=4, seed=0):
    return _task(model, lr, features).init(jax.random.PRNGKey(seed))


def test_loss_falls_over_training(blobs):
    x, y = blobs
    data = ArrayDataset(x, y.astype(np.int32))
    task = _task()
    train = parallel.compile_train_step(task.train_step)
    state, epoch_losses = task.init(jax.random.PRNGKey(0)), []
    for epoch in range(1, 11):
        totals = None
        for batch in HostPipeline(data, batch_size=16, seed=0).iterator(epoch):
            totals = zeros_for(task.train_step, state, batch) if totals is None else totals
            state, totals = train(state, totals, batch)
        epoch_losses.append(metrics.compute(parallel.fetch(totals))["loss"])
    assert epoch_losses[-1] < 0.5 * epoch_losses[0]
    assert all(b < a for a, b in zip(epoch_losses, epoch_losses[1:4]))
    assert int(state.step) == 10 * 13  # 200 examples at batch 16: 12 full batches + 1 padded


def test_jitted_step_does_not_recompile(blobs, compiles):
    x, y = blobs
    data = ArrayDataset(x, y.astype(np.int32))
    task = _task()
    train = parallel.compile_train_step(task.train_step)
    state = task.init(jax.random.PRNGKey(0))
    batches = list(HostPipeline(data, batch_size=16, seed=0).iterator(1))  # the last one is padded
    zeros = zeros_for(task.train_step, state, batches[0])
    before = compiles.count
    state, totals = train(state, dict(zeros), batches[0])
    assert compiles.count == before + 1
    for batch in batches[1:]:  # later calls, the padded last batch and a new epoch's zeros included
        state, totals = train(state, totals, batch)
    state, totals = train(state, dict(zeros), batches[0])
    assert compiles.count == before + 1


def test_padded_batch_gives_the_gradient_of_the_real_rows(blobs):
    x, y = blobs
    task = _task()
    train = jax.jit(task.train_step)
    real = {"x": x[:6], "y": y[:6], "mask": np.ones(6, np.float32)}
    padded = {
        "x": np.concatenate([x[:6], x[100:104]]),
        "y": np.concatenate([y[:6], y[100:104]]),
        "mask": np.r_[np.ones(6), np.zeros(4)].astype(np.float32),
    }
    a, totals_a = train(task.init(jax.random.PRNGKey(0)), real)
    b, totals_b = train(task.init(jax.random.PRNGKey(0)), padded)
    # Equal up to float32 rounding: the two batch shapes sum in a different order.
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6), a.params, b.params)
    assert float(totals_b["count"]) == 6.0
    np.testing.assert_allclose(totals_a["loss_sum"], totals_b["loss_sum"], rtol=1e-5)


def test_randomness_comes_from_fold_in_of_step():
    model = models.MLP(hidden=(64,), dropout_rate=0.5, num_outputs=1, output_activation="sigmoid")
    batch = {"x": np.ones((4, 4), np.float32), "y": np.array([0, 1, 0, 1]), "mask": np.ones(4, np.float32)}
    task = _task(model)
    train = jax.jit(task.train_step)
    s0 = task.init(jax.random.PRNGKey(0))
    s1a, _ = train(s0, batch)
    s1b, _ = train(task.init(jax.random.PRNGKey(0)), batch)
    # Same state and step: the same dropout masks, so bit-identical results.
    jax.tree.map(np.testing.assert_array_equal, s1a.params, s1b.params)
    # The run's base key never changes; each step folds in its own step number.
    np.testing.assert_array_equal(s1a.rng, s0.rng)
    assert int(s1a.step) == 1


def test_eval_and_predict_steps():
    task = _task()
    state = task.init(jax.random.PRNGKey(0))
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    batch = {"x": x, "y": np.array([0, 1, 1, 0, 1]), "mask": np.ones(5, np.float32)}
    # The model, loss and metric code is clean under strict dtype promotion.
    with jax.numpy_dtype_promotion("strict"):
        totals = jax.jit(task.eval_step)(state, batch)
    scores = totals[metrics.COLLECTED]["scores"]
    probs = jax.jit(task.predict_step)(state, x)
    np.testing.assert_allclose(scores, probs[:, 0], rtol=1e-6)
    np.testing.assert_array_equal(totals[metrics.COLLECTED]["labels"], batch["y"])
    assert float(totals["count"]) == 5.0


def test_params_sha256_is_exact():
    a, b = _state(seed=0), _state(seed=0)
    assert state_lib.params_sha256(a.params) == state_lib.params_sha256(b.params)
    assert state_lib.params_sha256(a.params) != state_lib.params_sha256(_state(seed=1).params)
    nudged = jax.tree.map(lambda p: p.at[(0,) * p.ndim].add(1e-7), a.params)
    assert state_lib.params_sha256(nudged) != state_lib.params_sha256(a.params)
    assert state_lib.param_count(a.params) == 4 * 8 + 8 + 8 + 1


def test_compiled_initialisation_equals_op_by_op():
    task = supervised_task(models.MLP(hidden=(12, 8), num_outputs=1), tx=optax.adam(1e-3), input_shape=(30,))
    eager = task.init(jax.random.PRNGKey(5))
    compiled = jax.jit(task.init)(jax.random.PRNGKey(5))
    np.testing.assert_array_equal(eager.rng, compiled.rng)
    if jax.default_backend() == "cpu":  # bitwise on CPU; GPUs fuse the float ops of the initialisers differently
        assert state_lib.params_sha256(eager.params) == state_lib.params_sha256(compiled.params)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7), eager.params, compiled.params)
    # parallel.init_state (what a run starts from) compiles the same initialisation.
    initial = parallel.init_state(task.init, 5, 0)
    assert state_lib.params_sha256(initial.params) == state_lib.params_sha256(compiled.params)
