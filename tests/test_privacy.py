"""Per-example gradients (vmap across examples) and DP-SGD."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxdl
from conftest import supervised_task
from jaxdl import models, parallel, privacy
from jaxdl.errors import InputError


def _task_and_state(model, input_shape, loss="binary_crossentropy", seed=0):
    task = supervised_task(model, loss=loss, tx=optax.sgd(0.1), input_shape=input_shape)
    return task, task.init(jax.random.PRNGKey(seed))


def _batch(blobs, size=12, padded=3):
    x, y = blobs
    mask = np.r_[np.ones(size - padded), np.zeros(padded)].astype(np.float32)
    return {"x": x[:size], "y": y[:size].astype(np.int32), "mask": mask}


def _batch_gradient(task, state, batch):
    def mean_loss(params):
        logits, _ = task.model.apply({"params": params}, batch["x"], train=True)  # the output layer's logits
        per_example = task.loss.per_example(logits, batch["y"], task.head)
        return jnp.sum(per_example * batch["mask"]) / jnp.sum(batch["mask"])

    return jax.grad(mean_loss)(state.params)


def _flat(tree):
    return np.concatenate([np.ravel(leaf) for leaf in jax.tree.leaves(tree)])


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_per_example_gradients_average_to_the_batch_gradient(blobs, kind):
    if kind == "mlp":
        (task, state), batch = _task_and_state(models.MLP(hidden=(16, 8)), (4,)), _batch(blobs)
    else:
        rng = np.random.default_rng(0)
        task, state = _task_and_state(models.CNN(conv_features=(4,), hidden=(16,), num_outputs=3, output_activation="softmax"),
                                      (8, 8, 1), loss="categorical_crossentropy")
        batch = {"x": rng.normal(size=(6, 8, 8, 1)).astype(np.float32), "y": rng.integers(0, 3, 6),
                 "mask": np.r_[np.ones(5), 0.0].astype(np.float32)}
    grads, per_example_loss = jax.jit(task.per_example_grads)(state, batch)
    size = len(batch["mask"])
    assert all(leaf.shape[0] == size for leaf in jax.tree.leaves(grads))
    mask = batch["mask"]
    averaged = jax.tree.map(lambda g: np.tensordot(mask, g, axes=1) / mask.sum(), grads)
    expected = _batch_gradient(task, state, batch)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), averaged, expected)
    assert per_example_loss.shape == (size,)


def test_clip_bounds_every_example_and_keeps_small_ones(blobs):
    (task, state), batch = _task_and_state(models.MLP(hidden=(16, 8)), (4,)), _batch(blobs)
    grads, _ = task.per_example_grads(state, batch)
    norms = np.asarray(jax.vmap(optax.tree.norm)(grads))
    bound = float(np.median(norms))
    clipped, before = privacy.clip(grads, bound)
    after = np.asarray(jax.vmap(optax.tree.norm)(clipped))
    np.testing.assert_allclose(before, norms, rtol=1e-6)
    assert np.all(after <= bound * (1 + 1e-5))
    small = norms <= bound
    np.testing.assert_allclose(after[small], norms[small], rtol=1e-6)  # gradients under the bound are untouched


def test_dp_sgd_bounds_how_far_one_example_can_move_the_update(blobs):
    """Replacing one example by an extreme one changes the (noise-free) DP gradient by at most 2C/B."""
    clip_norm, size = 0.5, 12
    task, state = _task_and_state(models.MLP(hidden=(16, 8)), (4,))
    batch = _batch(blobs, size=size, padded=0)
    outlier = {**batch, "x": batch["x"].copy(), "y": batch["y"].copy()}
    outlier["x"][3] *= 100.0  # the same direction, 100 times as far
    logit = task.model.apply({"params": state.params}, outlier["x"][3:4])[0][0, 0]
    outlier["y"][3] = 0 if logit > 0 else 1  # and confidently misclassified: a large gradient
    settings = privacy.Privacy(clip_norm=clip_norm, noise_multiplier=0.0)
    example_loss = task._example_loss(state)
    rng = jax.random.PRNGKey(1)
    dp = [_flat(privacy.private_gradient(example_loss, state.params, b, privacy=settings, rng=rng)[0]) for b in (batch, outlier)]
    assert np.linalg.norm(dp[0] - dp[1]) <= 2 * clip_norm / size * (1 + 1e-5)
    plain = [_flat(_batch_gradient(task, state, b)) for b in (batch, outlier)]
    assert np.linalg.norm(plain[0] - plain[1]) > 10 * 2 * clip_norm / size  # without clipping it is not bounded


def test_dp_sgd_noise_has_the_calibrated_scale(blobs):
    clip_norm, sigma, size = 1.0, 2.0, 12
    task, state = _task_and_state(models.MLP(hidden=(256, 64)), (4,))  # many parameters: a good sample of the noise
    batch = _batch(blobs, size=size, padded=0)
    example_loss = task._example_loss(state)
    quiet = privacy.private_gradient(example_loss, state.params, batch, privacy=privacy.Privacy(clip_norm, 0.0), rng=jax.random.PRNGKey(0))[0]
    noisy = privacy.private_gradient(example_loss, state.params, batch, privacy=privacy.Privacy(clip_norm, sigma), rng=jax.random.PRNGKey(0))[0]
    noise = _flat(noisy) - _flat(quiet)
    assert noise.size > 15_000
    assert np.std(noise) == pytest.approx(sigma * clip_norm / size, rel=0.03)
    assert abs(np.mean(noise)) < 0.03 * sigma * clip_norm / size


def test_dp_sgd_trains_and_matches_across_strategies(blobs):
    x, y = blobs
    dp = jaxdl.Privacy(clip_norm=1.0, noise_multiplier=0.5)
    runs = {
        kind: jaxdl.fit(models.MLP(hidden=(16,)), (x, y), epochs=15, batch_size=16, optimizer={"name": "sgd", "learning_rate": 0.1},
                        privacy=dp, parallel=kind, verbose=False)
        for kind in ("single", "pmap", "mesh")
    }
    state, history = runs["single"]
    assert history.last["train_accuracy"] > 0.9  # it learns, noise and all
    for kind in ("pmap", "mesh"):  # the same clipped sums and the same noise, wherever the examples are
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                     parallel.fetch(runs[kind][0].params), parallel.fetch(state.params))


def test_privacy_settings_are_checked():
    with pytest.raises(InputError, match="privacy.clip_norm=0: expected a number > 0"):
        privacy.Privacy(clip_norm=0.0, noise_multiplier=1.0)
    with pytest.raises(InputError, match="privacy.noise_multiplier=-1.0: expected a finite number >= 0"):
        privacy.Privacy(clip_norm=1.0, noise_multiplier=-1.0)
