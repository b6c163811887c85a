"""The autoencoder task: its model, its step, that it never reads a label, and its experiment."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import cli, data, run, state as state_lib, task as task_lib
from jaxdl.errors import InputError
from jaxdl.tasks import autoencoder

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


def _built(**model):
    cfg = autoencoder.default_config()
    cfg.model.hidden = (32,)
    for key, value in model.items():
        cfg.model[key] = value
    x, kind = _images()
    return autoencoder.build(cfg, pixels=(x, x[:16], kind[:16], (4, 4))), x


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


def test_the_task_passes_the_protocols_checks_and_a_few_steps_reduce_the_loss():
    built, x = _built()
    task = built.task
    batch = {"x": x[:32], "mask": np.ones(32, np.float32)}
    task_lib.check(task, batch)  # abstractly: the state keeps its shapes, the totals are scalar sums
    state = task.init(jax.random.PRNGKey(0))
    step = jax.jit(task.train_step)
    losses = []
    for _ in range(30):
        state, totals = step(state, batch)
        assert set(totals) == {"loss_sum", "mse_sum", "count"} and float(totals["count"]) == 32
        losses.append(task.figures(jax.device_get(totals))["loss"])
    assert losses[-1] < 0.8 * losses[0]
    assert int(state.step) == 30
    figures = task.figures(jax.device_get(jax.jit(task.eval_step)(state, batch)))
    assert set(figures) == {"loss", "mse", "pca_mse", "mean_image_mse"}  # the references beside the batch figures
    assert 0 < figures["mse"] < figures["mean_image_mse"]


def test_padding_rows_change_nothing():
    """Rows with mask 0 (the padding of an epoch's last batch) change neither the update nor the totals."""
    built, x = _built()
    task = built.task
    state = task.init(jax.random.PRNGKey(0))
    real = {"x": x[:24], "mask": np.ones(24, np.float32)}
    garbage = np.random.default_rng(1).uniform(size=(8, x.shape[1])).astype(np.float32)
    padded = {"x": np.concatenate([x[:24], garbage]), "mask": np.r_[np.ones(24), np.zeros(8)].astype(np.float32)}
    a, a_totals = jax.jit(task.train_step)(state, real)
    b, b_totals = jax.jit(task.train_step)(state, padded)
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-7), a.params, b.params)
    for key in a_totals:
        assert float(a_totals[key]) == pytest.approx(float(b_totals[key]), rel=1e-5)


def test_training_never_reads_a_label(monkeypatch):
    """Replacing every training label with garbage leaves the trained parameters bit for bit the same."""
    cfg = autoencoder.default_config()
    cfg.train.epochs, cfg.model.hidden = 2, (16,)
    real_load = data.load

    digests = []
    for labels in (lambda y: y, lambda y: np.full_like(y, 7), lambda y: y[::-1].copy()):
        monkeypatch.setattr(data, "load", replace_train_labels(real_load, labels))
        setup = run.setup(cfg)
        assert set(setup.splits.train.arrays) == {"x"}  # the training split holds the images only
        digests.append(run.execute(cfg, setup, None, quiet=True)[2]["params_sha256"])
    assert digests[0] == digests[1] == digests[2]


def test_pca_error_spans_the_mean_image_to_exact():
    x, _ = _images(n=40, pixels=6)
    mean_only = float(np.mean(np.square(x.mean(axis=0) - x)))
    assert autoencoder.pca_error(x, x, 0) == pytest.approx(mean_only, rel=1e-6)
    assert autoencoder.pca_error(x, x, 6) == pytest.approx(0.0, abs=1e-10)
    assert autoencoder.pca_error(x, x, 1) < mean_only


@pytest.mark.parametrize("key, value, message", [
    ("model.latent_dim", "0", "model.latent_dim=0: expected a positive integer"),
    ("model.hidden", "(64,-1)", "model.hidden=(64, -1)"),
    ("model.activation", "swoosh", "model.activation='swoosh'"),
    ("plot_images", "-1", "plot_images=-1"),
])
def test_bad_settings_fail_before_anything_is_written_naming_the_key(tmp_path, capsys, key, value, message):
    workdir = str(tmp_path / "bad")
    assert cli.main(["train", "--config", os.path.join(EXPERIMENTS, "digits_autoencoder.py") + ":quick",
                     "--workdir", workdir, f"--config.{key}={value}"]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(workdir)
    cfg = autoencoder.default_config()
    section, _, leaf = key.rpartition(".")
    (cfg[section] if section else cfg)[leaf] = {"0": 0, "(64,-1)": (64, -1), "-1": -1}.get(value, value)
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
    assert summary["task"] == "autoencoder" and summary["steps"] == 30 * 45  # 1,438 images, batches of 32, the last padded
    assert summary["eval_mse"] < summary["eval_pca_mse"] < summary["eval_mean_image_mse"]
    for name in ("reconstructions.png", "latent_space.png"):
        with open(os.path.join(workdir, "plots", name), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
