"""The GAN task: its two models, its two-player step, its judge, and its experiment run end to end and resumed."""

import json
import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxdl import cli, config, data, run, state as state_lib, task as task_lib
from jaxdl.tasks import gan

from conftest import EXPERIMENTS, replace_train_labels

QUICK = os.path.join(EXPERIMENTS, "digits_gan.py") + ":quick"


def _pixels(n=128, seed=0):
    """4x4 images of two kinds (top half lit or bottom half lit), with their kinds as labels."""
    rng = np.random.default_rng(seed)
    kind = rng.integers(0, 2, n)
    x = np.zeros((n, 16), np.float32)
    for i, k in enumerate(kind):
        x[i, k * 8:(k + 1) * 8] = 1.0
    x = np.clip(x + 0.05 * rng.normal(size=x.shape), 0, 1).astype(np.float32)
    return x[:96], kind[:96], x[96:], kind[96:], (4, 4)


def _tiny_config():
    cfg = gan.default_config()
    cfg.model.latent_dim = 4
    cfg.model.generator_hidden = (16,)
    cfg.model.discriminator_hidden = (16,)
    cfg.train.generator_ema_decay = 0.0
    cfg.optimizer.learning_rate = cfg.discriminator_optimizer.learning_rate = 1e-2
    return cfg


def _leaves_differ(a, b) -> bool:
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_shapes_ranges_and_parameter_counts():
    generator = gan.Generator(num_pixels=64, hidden=(8, 16))
    discriminator = gan.Discriminator(hidden=(16, 8))
    z = jax.random.normal(jax.random.PRNGKey(0), (5, 4))
    g_vars = generator.init(jax.random.PRNGKey(1), z)
    images = generator.apply(g_vars, z)
    assert images.shape == (5, 64) and bool(jnp.all((images > 0) & (images < 1)))
    d_vars = discriminator.init(jax.random.PRNGKey(2), images)
    assert discriminator.apply(d_vars, images).shape == (5,)
    # Images as 8x8 grids are flattened: the same logits.
    np.testing.assert_array_equal(discriminator.apply(d_vars, images.reshape(5, 8, 8)), discriminator.apply(d_vars, images))
    # Dense layers: weights plus biases.
    assert state_lib.param_count(g_vars["params"]) == (4 * 8 + 8) + (8 * 16 + 16) + (16 * 64 + 64) == 1_272
    assert state_lib.param_count(d_vars["params"]) == (64 * 16 + 16) + (16 * 8 + 8) + (8 * 1 + 1) == 1_185


def test_the_default_models_parameter_counts():
    cfg = gan.default_config()
    generator = gan.Generator(num_pixels=64, hidden=tuple(cfg.model.generator_hidden))
    discriminator = gan.Discriminator(hidden=tuple(cfg.model.discriminator_hidden))
    g_params = jax.eval_shape(generator.init, jax.random.PRNGKey(0), jnp.zeros((1, cfg.model.latent_dim)))["params"]
    d_params = jax.eval_shape(discriminator.init, jax.random.PRNGKey(0), jnp.zeros((1, 64)))["params"]
    # generator 16-128-256-64, discriminator 64-64-32-1 (the experiment's description says so: see below)
    assert state_lib.param_count(g_params) == (16 * 128 + 128) + (128 * 256 + 256) + (256 * 64 + 64) == 51_648
    assert state_lib.param_count(d_params) == (64 * 64 + 64) + (64 * 32 + 32) + (32 + 1) == 6_273


def _batch(x, n=32):
    return {"x": np.asarray(x[:n]), "mask": np.ones(n, np.float32)}


def test_one_step_updates_both_players_deterministically_without_recompiling(compiles):
    built = gan.build(_tiny_config(), pixels=_pixels())
    task = built.task
    assert set(built.splits.train.arrays) == {"x"}  # the step is given images only
    batch = _batch(built.splits.train.arrays["x"])
    task_lib.check(task, batch)  # abstractly: the state keeps its shapes, the totals are scalar sums
    state = task.init(jax.random.PRNGKey(0))
    assert int(state.step) == 0
    step = jax.jit(task.train_step)
    new, totals = step(state, batch)
    assert int(new.step) == int(new.generator.step) == int(new.discriminator.step) == 1
    assert _leaves_differ(state.generator.params, new.generator.params)
    assert _leaves_differ(state.discriminator.params, new.discriminator.params)
    figures = task.figures(jax.device_get(totals))
    assert set(figures) == {"d_loss", "g_loss", "d_real", "d_fake"} and float(totals["count"]) == 32
    # An untrained discriminator cannot tell: both probabilities near 1/2.
    assert 0.3 < figures["d_real"] < 0.7 and 0.3 < figures["d_fake"] < 0.7
    again, totals_again = step(state, batch)
    assert not _leaves_differ(new, again) and not _leaves_differ(totals, totals_again)
    before = compiles.count
    following, _ = step(new, batch)
    assert compiles.count == before  # the second call reuses the compiled step
    # The noise follows the step: the next step draws other images.
    assert _leaves_differ(jax.tree.map(jnp.subtract, following.generator.params, new.generator.params),
                          jax.tree.map(jnp.subtract, new.generator.params, state.generator.params))
    # Held out: the discriminator's cross-entropy on real images, and its probability of "real".
    assert set(task.figures(jax.device_get(jax.jit(task.eval_step)(new, batch)))) == {"loss", "d_real"}


def test_padding_rows_change_nothing():
    """Whatever rows with mask 0 hold, the update and the totals are the same."""
    built = gan.build(_tiny_config(), pixels=_pixels())
    task, x = built.task, built.splits.train.arrays["x"]
    state = task.init(jax.random.PRNGKey(0))
    mask = np.r_[np.ones(24), np.zeros(8)].astype(np.float32)
    rng = np.random.default_rng(1)
    results = [jax.jit(task.train_step)(state, {"x": np.concatenate([x[:24], pad]), "mask": mask})
               for pad in (np.zeros((8, 16), np.float32), rng.uniform(size=(8, 16)).astype(np.float32))]
    jax.tree.map(lambda p, q: np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7), results[0], results[1])
    assert float(results[0][1]["count"]) == 24


def test_a_few_steps_reduce_the_discriminators_loss_then_the_generators():
    built = gan.build(_tiny_config(), pixels=_pixels())
    state = built.task.init(jax.random.PRNGKey(0))
    real = jnp.asarray(built.splits.train.arrays["x"][:32])
    key = jax.random.PRNGKey(1)
    d_step = jax.jit(lambda s, k: gan.discriminator_step(s, real, k, real_label=0.9))
    d_losses = []
    for i in range(40):
        state, totals = d_step(state, jax.random.fold_in(key, i))
        d_losses.append(float(totals["d_loss_sum"]) / 32)
    # About 2 ln 2 at first (it cannot tell real from generated, whatever the label), then it can.
    assert d_losses[0] > 1.2 and d_losses[-1] < 0.7 * d_losses[0]
    g_step = jax.jit(lambda s, k: gan.generator_step(s, k, 32))
    g_losses = []
    for i in range(40):
        state, totals = g_step(state, jax.random.fold_in(key, 100 + i))
        g_losses.append(float(totals["g_loss_sum"]) / 32)
    # Against the fixed discriminator, the generator learns to fool it.
    assert g_losses[-1] < 0.5 * g_losses[0]
    assert int(state.discriminator.step) == int(state.generator.step) == 40


def _digits():
    splits = data.load("digits", scaling="none")
    return (splits.train.x.astype(np.float32) / 16, np.asarray(splits.train.y), splits.test.x.astype(np.float32) / 16,
            np.asarray(splits.test.y), (8, 8))


def test_the_digit_score_and_the_frechet_distance():
    assert gan.digit_score(np.full((50, 10), 0.1)) == pytest.approx(1.0)
    assert gan.digit_score(np.eye(10)[np.arange(50) % 10]) == pytest.approx(10.0, rel=1e-6)
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 3))
    assert gan.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    # Shifting the mean adds the squared shift; scaling (a Gaussian's covariance) adds tr(S)(1 - s)^2 for S = I.
    assert gan.frechet_distance(a, a + 2.0) == pytest.approx(12.0, rel=1e-6)
    b = rng.normal(size=(20000, 3))
    assert gan.frechet_distance(b, 3 * b) == pytest.approx(3 * (1 - 3) ** 2, rel=0.05)

    x_train, y_train, x_test, y_test, _ = _digits()
    judge, params = gan.train_classifier(x_train, y_train, num_classes=10)
    features, logits = judge.apply({"params": params}, jnp.asarray(x_test))
    assert float(np.mean(np.argmax(logits, axis=1) == y_test)) > 0.93
    real = gan.digit_score(jax.nn.softmax(logits))
    constant = gan.digit_score(jax.nn.softmax(judge.apply({"params": params}, jnp.asarray(np.repeat(x_test[:1], 100, 0)))[1]))
    assert constant == pytest.approx(1.0, abs=1e-4) and real > 8.0
    train_features = judge.apply({"params": params}, jnp.asarray(x_train[:len(x_test)]))[0]
    noise_features = judge.apply({"params": params}, jnp.asarray(rng.uniform(size=x_test.shape), jnp.float32))[0]
    assert gan.frechet_distance(train_features, features) < 0.1 * gan.frechet_distance(noise_features, features)


def test_training_never_reads_a_label(monkeypatch):
    """Garbage training labels change the judge, not one bit of the GAN."""
    cfg = config.load(QUICK)
    cfg.train.epochs = 2
    real_load = data.load

    summaries = []
    for labels in (lambda y: y, lambda y: np.full_like(y, 7)):
        monkeypatch.setattr(data, "load", replace_train_labels(real_load, labels))
        setup = run.setup(cfg)
        assert set(setup.splits.train.arrays) == {"x"}  # the training split holds the images only
        summaries.append(run.execute(cfg, setup, None, quiet=True)[2])
    assert summaries[0]["params_sha256"] == summaries[1]["params_sha256"]
    assert summaries[0]["eval_digit_score_real"] > 8 and summaries[1]["eval_digit_score_real"] < 1.5


def _summary(workdir):
    with open(os.path.join(workdir, "summary.json")) as f:
        return json.load(f)


def test_the_quick_experiment_runs_draws_and_resumes(tmp_path, capsys):
    workdir = str(tmp_path / "gan")
    assert cli.main(["train", "--config", QUICK, "--workdir", workdir]) == 0
    out = capsys.readouterr().out
    assert "digit score" in out and "untrained generator" in out and "labels unused by the GAN" in out
    assert "generator 16-128-256-64 (51,648 parameters), discriminator 64-64-32-1 (6,273 parameters)" in out
    summary = _summary(workdir)
    steps = 1438 // 64  # train.drop_remainder: every step a full batch
    assert summary["steps"] == 4 * steps and summary["task"] == "gan"
    assert summary["eval_digit_score_untrained"] < 2 and summary["eval_digit_score_real"] > 8
    assert summary["eval_frechet_distance"] < summary["eval_frechet_distance_untrained"]
    for epoch in (2, 4):
        with open(os.path.join(workdir, "plots", f"samples_epoch_{epoch:04d}.png"), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    evals = [r for r in records if r["type"] == "eval"]
    assert [r["epoch"] for r in evals] == [2, 4]
    assert all("digit_score" in r and "frechet_distance" in r and "loss" in r for r in evals)

    # The finished run, rerun with the same command: nothing to train, the same result.
    assert cli.main(["train", "--config", QUICK, "--workdir", workdir]) == 0
    assert _summary(workdir)["params_sha256"] == summary["params_sha256"]
    assert _summary(workdir)["eval_digit_score"] == pytest.approx(summary["eval_digit_score"], rel=1e-6)

    # A run stopped by SIGTERM at its first evaluation (epoch 2), then resumed by the same command,
    # ends where the uninterrupted one did.
    stopped = str(tmp_path / "stopped")
    cfg = config.load(QUICK)
    setup = run.setup(cfg)
    report = setup.task.report

    def report_then_stop(state, step, writer):
        os.kill(os.getpid(), signal.SIGTERM)  # the loop saves this epoch's checkpoint and returns
        return report(state, step, writer)

    setup.task.report = report_then_stop
    result = run.execute(cfg, setup, stopped, quiet=True)[2]
    assert result["stopped_at"] == 2 * steps
    capsys.readouterr()
    assert cli.main(["train", "--config", QUICK, "--workdir", stopped]) == 0
    assert f"resuming from the checkpoint at step {2 * steps}" in capsys.readouterr().out
    assert _summary(stopped)["params_sha256"] == summary["params_sha256"]


@pytest.mark.parametrize("key, value, message", [
    ("model.latent_dim", "0", "model.latent_dim=0: expected a positive integer"),
    ("model.generator_hidden", "(64,-1)", "model.generator_hidden=(64, -1)"),
    ("model.negative_slope", "1.5", "model.negative_slope=1.5"),
    ("train.real_label", "0.2", "train.real_label=0.2"),
    ("train.generator_ema_decay", "1.0", "train.generator_ema_decay=1.0"),
    ("discriminator_optimizer.name", "adagrad", "discriminator_optimizer.name='adagrad'"),
    ("optimizer.learning_rate", "-1.0", "optimizer.learning_rate=-1.0"),
    ("plot_images", "-1", "plot_images=-1"),
])
def test_bad_settings_fail_before_training_naming_the_key(tmp_path, capsys, key, value, message):
    workdir = str(tmp_path / "bad")
    assert cli.main(["train", "--config", QUICK, "--workdir", workdir, f"--config.{key}={value}"]) == 2
    assert message in capsys.readouterr().err
    assert not os.path.exists(workdir)


def test_each_optimizer_section_takes_overrides_of_its_own(capsys):
    """The discriminator's optimizer is a section of its own, whose unset settings (momentum) can be overridden."""
    assert cli.main(["train", "--config", QUICK, "--show-config", "--config.discriminator_optimizer.momentum=0.5"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["discriminator_optimizer"]["momentum"] == 0.5 and resolved["optimizer"]["momentum"] is None
    assert resolved["optimizer"]["b1"] == resolved["discriminator_optimizer"]["b1"] == 0.5
