import jax
import numpy as np
import optax

from conftest import supervised_task, zeros_for
from jaxdl import feed, loop, models
from jaxdl.data import ArrayDataset


def test_no_compiles_after_the_first_epoch_and_eval_on_schedule(blobs, compiles):
    x, y = blobs
    train_set, test_set = ArrayDataset(x[:150], y[:150].astype(np.int32)), ArrayDataset(x[150:], y[150:].astype(np.int32))
    task = supervised_task(models.MLP(hidden=(8,), num_outputs=1), tx=optax.adam(1e-2), input_shape=(4,))
    initial = task.init(jax.random.PRNGKey(0))
    zeros = zeros_for(task.train_step, initial, {**train_set.read(np.arange(16)), "mask": np.ones(16, np.float32)})
    counts = []
    _, history = loop.train(
        initial, feed.make(train_set, task.train_step, batch_size=16, seed=0), zeros=zeros, epochs=5,
        eval_data=test_set, eval_every_epochs=2, evaluator=loop.Evaluator(task),
        on_epoch=lambda record: counts.append(compiles.count),
    )
    assert counts[1] == counts[0] + 1  # the first evaluation (epoch 2) compiles the eval step
    assert counts[2:] == [counts[1]] * 3  # then nothing compiles: training and evaluation reuse their programs
    assert history["eval_accuracy"][0] is None and history["eval_accuracy"][1] is not None
    assert history["eval_accuracy"][4] is not None  # the last epoch is always evaluated
    assert history["step"] == [10, 20, 30, 40, 50]  # 150 examples at batch 16: 9 full + 1 padded


def test_predict_in_padded_batches_matches_one_call():
    model = models.MLP(hidden=(8,), num_outputs=3, output_activation="softmax")
    task = supervised_task(model, loss="categorical_crossentropy", tx=optax.sgd(0.1), input_shape=(4,))
    state = task.init(jax.random.PRNGKey(0))
    x = np.random.default_rng(0).normal(size=(23, 4)).astype(np.float32)
    np.testing.assert_allclose(loop.predict(state, x, predict_step=task.predict_step, batch_size=5),
                               model.apply(state.variables(), x), rtol=1e-5, atol=1e-7)
