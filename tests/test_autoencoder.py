"""The autoencoder task: its model, its step, that it never reads a label, and its experiment."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import cli, data, state as state_lib
from jaxdl.errors import InputError
from jaxdl.tasks import autoencoder, runner

from conftest import EXPERIMENTS, replace_train_labels


def _images(n=96, pixels=16, seed=0):
    """Images of two kinds (left half lit or right half lit), in [0, 1]."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, n)
    x = np.zeros((n, pixels), np.float32)
    half = pixels // 2
    for i, k in enumerate(kind):
        x[i, k * half:(k + 1) * half] = 1.0
    return np.clip(x + 0.05 * rng.normal(size=x.shape), 0, 1).astype(np.float32), kind


def test_shapes_and_parameter_count():
    model = autoencoder.Autoencoder(num_pixels=64, hidden=(128, 64), latent_dim=2)
    x = jnp.ones((5, 64))
    variables = model.init(jax.random.PRNGKey(0), x)
    out = model.apply(variables, x)
    assert out.shape == (5, 64) and bool(jnp.all((out >= 0) & (out <= 1)))
    assert model.apply(variables, x, method=autoencoder.Autoencoder.encode).shape == (5, 2)
    # Dense layers 64-128-64-2 (encoder) and 2-64-128-64 (decoder): weights plus biases.
    widths = [64, 128, 64, 2, 64, 128, 64]
    expected = sum(a * b + b for a, b in zip(widths, widths[1:]))
    assert state_lib.param_count(variables["params"]) == expected == 33_474


def test_a_few_steps_reduce_the_reconstruction_loss():
    cfg = autoencoder.default_config()
    cfg.model.hidden = (32,)
    x, kind = _images()
    task = autoencoder.build(cfg, pixels=(x, x[:16], kind[:16], (4, 4)))
    state = task.init(jax.random.PRNGKey(0))
    step = jax.jit(task.train_step)
    losses = []
    for _ in range(30):
        state, metrics = step(state, {"x": jnp.asarray(x[:32])})
        losses.append(float(metrics["loss"]))
    assert losses[-1] < 0.8 * losses[0]
    assert int(state.step) == 30


def test_training_never_reads_a_label(monkeypatch):
    """Replacing every training label with garbage leaves the trained parameters bit for bit the same."""
    cfg = autoencoder.default_config()
    cfg.train.epochs, cfg.model.hidden = 2, (16,)
    real_load = data.load

    digests = []
    for labels in (lambda y: y, lambda y: np.full_like(y, 7), lambda y: y[::-1].copy()):
        monkeypatch.setattr(data, "load", replace_train_labels(real_load, labels))
        task = autoencoder.build(cfg)
        assert set(task.train) == {"x"}  # the step is given images only
        summary = runner.train_and_evaluate(cfg, None, task, quiet=True)
        digests.append(summary["params_sha256"])
    assert digests[0] == digests[1] == digests[2]


def test_pca_error_spans_the_mean_image_to_exact():
    x, _ = _images(n=40, pixels=6)
    mean_only = float(np.mean(np.square(x.mean(axis=0) - x)))
    assert autoencoder.pca_error(x, x, 0) == pytest.approx(mean_only, rel=1e-6)
    assert autoencoder.pca_error(x, x, 6) == pytest.approx(0.0, abs=1e-10)
    assert autoencoder.pca_error(x, x, 1) < mean_only


@pytest.mark.parametrize("key, value, message", [
    ("latent_dim", 0, "model.latent_dim=0: expected a positive integer"),
    ("hidden", (64, -1), "model.hidden=(64, -1)"),
    ("activation", "swoosh", "model.activation='swoosh'"),
])
def test_bad_settings_name_the_key(key, value, message):
    cfg = autoencoder.default_config()
    cfg.model[key] = value
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        autoencoder.build(cfg)


def test_the_experiment_beats_pca_and_draws_its_pictures(tmp_path, capsys):
    workdir = str(tmp_path / "ae")
    assert cli.main(["train", "--config", os.path.join(EXPERIMENTS, "digits_autoencoder.py") + ":quick",
                     "--workdir", workdir]) == 0
    out = capsys.readouterr().out
    assert "test reconstruction error" in out and "labels unused" in out
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["eval_mse"] < summary["eval_pca_mse"] < summary["eval_mean_image_mse"]
    for name in ("reconstructions.png", "latent_space.png"):
        with open(os.path.join(workdir, "plots", name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
