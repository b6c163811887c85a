"""A generative adversarial network: a generator learns to draw digits by fooling a discriminator.

The generator maps a random latent vector z to an image; the discriminator
maps an image to one logit, "real" versus "generated". Both are MLPs, each
with its own `TrainState` and optimizer, held together in a `GANState`, and
one pure step updates both: first the discriminator, on a batch of real
images against a batch of generated ones, then the generator, through the
discriminator just updated, with the non-saturating loss -log D(G(z)). The
training data is the images alone.

A GAN's losses do not say how good its images are (they measure a game
between two networks), so each evaluation scores the generated digits with
a separate judge: a small digit classifier trained once, in `build`, on the
training split's labels. Those labels reach only this classifier, never the
GAN. It gives two scores, each shown beside references computed in the same
way: the real test images (what a perfect generator would score) and the
untrained generator (where training starts).

- digit score: exp(E_x[KL(p(y|x) || p(y))]) over the generated images, the
  Inception score with a digit classifier. It is high (up to the number of
  classes, 10) when each image is confidently one digit and all digits
  appear equally often; 1 when every image looks the same.
- Fréchet distance: between the Gaussians fitted to the classifier's hidden
  features of generated and of real test images (FID's recipe). 0 for the
  same distribution; the reference is real training images against the
  test images, which is as close as a finite sample of real digits gets.
"""

import os
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct
from ml_collections import config_dict

from jaxdl import optim, plots, state as state_lib
from jaxdl.errors import InputError
from jaxdl.tasks import runner

# The evaluation's latent vectors and its real-image subsample come from this
# seed, not the run's: every run and every evaluation is scored on the same z.
EVAL_SEED = 0


class Generator(nn.Module):
    """An MLP from a latent vector to `num_pixels` sigmoid pixels in [0, 1].

    Attributes:
      num_pixels: the length of a flattened image.
      hidden: the hidden layers' widths.
      negative_slope: the hidden layers' leaky relu slope for negative inputs.
    """

    num_pixels: int
    hidden: Sequence[int] = (128, 256)
    negative_slope: float = 0.2

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        x = z
        for i, width in enumerate(self.hidden):
            x = nn.leaky_relu(nn.Dense(width, name=f"hidden_{i}")(x), self.negative_slope)
        return jax.nn.sigmoid(nn.Dense(self.num_pixels, name="pixels")(x))


class Discriminator(nn.Module):
    """An MLP from a flattened image to one logit: > 0 means "real".

    Attributes:
      hidden: the hidden layers' widths.
      negative_slope: the hidden layers' leaky relu slope for negative inputs;
        leaky, so that the generator gets a gradient from every unit.
    """

    hidden: Sequence[int] = (64, 32)
    negative_slope: float = 0.2

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.hidden):
            x = nn.leaky_relu(nn.Dense(width, name=f"hidden_{i}")(x), self.negative_slope)
        return nn.Dense(1, name="logit")(x)[:, 0]


class GANState(struct.PyTreeNode):
    """The two players' train states. The generator's `rng` and `step` seed each step's noise."""

    generator: state_lib.TrainState
    discriminator: state_lib.TrainState


class DigitClassifier(nn.Module):
    """The judge: one hidden relu layer, whose activations are the features the Fréchet distance compares."""

    num_classes: int = 10
    hidden: int = 64

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        features = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
        return features, nn.Dense(self.num_classes, name="logits")(features)


def default_config() -> ml_collections.ConfigDict:
    """A GAN on digits: generator 16-128-256-64, discriminator 64-64-32-1, adam (lr 5e-4, b1 0.5) for both."""
    cfg = runner.base_config("gan")
    cfg.model.latent_dim = 16
    cfg.model.generator_hidden = (128, 256)
    # A small discriminator: a larger one memorises the 1,438 training digits and
    # wins the game, and the generated digits get worse the longer it trains.
    cfg.model.discriminator_hidden = (64, 32)
    cfg.model.negative_slope = 0.2
    cfg.train.epochs = 1200
    cfg.train.batch_size = 64
    cfg.train.eval_every_epochs = 200
    # The discriminator's target for real images; below 1 (e.g. 0.9) is one-sided
    # label smoothing, which keeps it from growing overconfident.
    cfg.train.real_label = 0.9
    # > 0: evaluate and draw with an exponential moving average of the generator's
    # parameters, which smooths out the oscillation of the adversarial game.
    cfg.train.generator_ema_decay = 0.999
    # Two optimizers with the same settings: `optimizer` is the generator's.
    # b1 0.5 is the usual GAN setting: less momentum against a moving target.
    for name in ("optimizer", "discriminator_optimizer"):
        # Built from optim.DEFAULTS as base_config builds `optimizer` (a copy of
        # it would lose the placeholders' types, which overrides need).
        cfg[name] = ml_collections.ConfigDict(
            {k: config_dict.placeholder(float) if v is None else v for k, v in optim.DEFAULTS.items()})
        cfg[name].update(name="adam", learning_rate=5e-4, b1=0.5)
    cfg.plot_images = 40  # generated digits drawn at each evaluation (from the same z each time)
    return cfg


def init_state(generator: Generator, discriminator: Discriminator, tx_generator: optax.GradientTransformation,
               tx_discriminator: optax.GradientTransformation, *, rng: jax.Array, latent_dim: int,
               generator_ema_decay: float = 0.0) -> GANState:
    """Both players' initial train states, from one key (split, so they never share numbers)."""
    g_rng, d_rng = jax.random.split(rng)
    return GANState(
        generator=state_lib.create(generator, tx_generator, rng=g_rng, input_shape=(latent_dim,),
                                   ema_decay=generator_ema_decay),
        discriminator=state_lib.create(discriminator, tx_discriminator, rng=d_rng, input_shape=(generator.num_pixels,)),
    )


def _latent(state: GANState, key: jax.Array, n: int) -> jax.Array:
    return jax.random.normal(key, (n, *state.generator.input_shape))


def discriminator_step(state: GANState, real: jax.Array, key: jax.Array, *, real_label: float = 1.0):
    """One discriminator update: real images towards `real_label`, generated ones (from noise `key`) towards 0.

    Returns:
      The state with the discriminator updated, and the metrics d_loss (the
      sum of both cross-entropies: 2 ln 2 = 1.386 for a discriminator that
      cannot tell), d_real and d_fake (its mean probability of "real" for
      each kind, before the update).
    """
    g, d = state.generator, state.discriminator
    fake = jax.lax.stop_gradient(g.model.apply({"params": g.params}, _latent(state, key, real.shape[0])))

    def loss(params):
        real_logits = d.model.apply({"params": params}, real)
        fake_logits = d.model.apply({"params": params}, fake)
        value = (optax.sigmoid_binary_cross_entropy(real_logits, jnp.full_like(real_logits, real_label)).mean()
                 + optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits)).mean())
        return value, (jax.nn.sigmoid(real_logits).mean(), jax.nn.sigmoid(fake_logits).mean())

    (value, (d_real, d_fake)), grads = jax.value_and_grad(loss, has_aux=True)(d.params)
    return state.replace(discriminator=d.apply_gradients(grads, d.model_state)), {
        "d_loss": value, "d_real": d_real, "d_fake": d_fake}


def generator_step(state: GANState, key: jax.Array, batch_size: int):
    """One generator update with the non-saturating loss -log D(G(z)), the discriminator held fixed.

    The non-saturating loss, rather than log(1 - D(G(z))), gives the
    generator strong gradients early, when the discriminator rejects its
    images easily.

    Returns:
      The state with the generator updated, and the metric g_loss.
    """
    g, d = state.generator, state.discriminator
    z = _latent(state, key, batch_size)

    def loss(params):
        logits = d.model.apply({"params": d.params}, g.model.apply({"params": params}, z))
        return optax.sigmoid_binary_cross_entropy(logits, jnp.ones_like(logits)).mean()

    value, grads = jax.value_and_grad(loss)(g.params)
    return state.replace(generator=g.apply_gradients(grads, g.model_state)), {"g_loss": value}


def make_train_step(*, real_label: float = 1.0):
    """The pure step (GANState, {"x": images}) -> (GANState, metrics): a discriminator update, then a generator update.

    The noise comes from fold_in(generator.rng, generator.step), so a resumed
    run draws the same numbers as an uninterrupted one.
    """

    def train_step(state: GANState, batch: dict):
        real = batch["x"]
        d_key, g_key = jax.random.split(jax.random.fold_in(state.generator.rng, state.generator.step))
        state, d_metrics = discriminator_step(state, real, d_key, real_label=real_label)
        state, g_metrics = generator_step(state, g_key, real.shape[0])
        return state, {**d_metrics, **g_metrics}

    return train_step


def train_classifier(x: np.ndarray, y: np.ndarray, *, num_classes: int, hidden: int = 64, steps: int = 500,
                     learning_rate: float = 1e-2, seed: int = 0) -> tuple[DigitClassifier, dict]:
    """The judge: a `DigitClassifier` trained full-batch with adam on (x, y). Returns the model and its params."""
    model = DigitClassifier(num_classes=num_classes, hidden=hidden)
    params = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, x.shape[1])))["params"]
    tx = optax.adam(learning_rate)

    def loss(params, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply({"params": params}, x)[1], y).mean()

    # The data are arguments, not constants closed over: constants would be
    # copied into the compiled program, which then lowers slowly.
    @jax.jit
    def fit(params, x, y):
        def body(carry, _):
            params, opt_state = carry
            updates, opt_state = tx.update(jax.grad(loss)(params, x, y), opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        return jax.lax.scan(body, (params, tx.init(params)), length=steps)[0][0]

    return model, fit(params, jnp.asarray(x), jnp.asarray(y))


def digit_score(probs: np.ndarray) -> float:
    """exp(mean KL(p(y|x) || p(y))) of classifier probabilities (N, classes): from 1 (all alike) to the class count."""
    probs = np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)
    marginal = probs.mean(axis=0)
    return float(np.exp(np.mean(np.sum(probs * (np.log(probs) - np.log(marginal)), axis=1))))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of feature vectors (N, features).

    ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), where the trace of
    the matrix square root is the sum of the square roots of the eigenvalues
    of S_a^(1/2) S_b S_a^(1/2), a symmetric matrix, so `eigh` suffices.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    values, vectors = np.linalg.eigh(cov_a)
    root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0, None)).sum()
    return float(np.sum(np.square(a.mean(axis=0) - b.mean(axis=0))) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def _check_widths(value, name: str) -> tuple[int, ...]:
    widths = tuple(value)
    if not widths or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
        raise InputError(f"{name}={widths!r}: expected one or more positive integer layer widths, e.g. (128, 256)")
    return widths


def _optimizer(settings: ml_collections.ConfigDict, name: str, total_steps: int) -> optax.GradientTransformation:
    try:
        return optim.build(dict(settings), total_steps=total_steps)
    except InputError as err:  # optim names its section "optimizer"; say which of the two is wrong
        if name == "optimizer":
            raise
        raise InputError(str(err).replace("optimizer.", f"{name}.").replace("optimizer settings", f"{name} settings")) from None


def check(cfg: ml_collections.ConfigDict) -> None:
    """Checks the GAN's settings, naming the bad one."""
    runner.check_positive_int(cfg.model.latent_dim, "model.latent_dim")
    _check_widths(cfg.model.generator_hidden, "model.generator_hidden")
    _check_widths(cfg.model.discriminator_hidden, "model.discriminator_hidden")
    slope = cfg.model.negative_slope
    if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 <= slope < 1:
        raise InputError(f"model.negative_slope={slope!r}: expected a number in [0, 1)")
    decay = cfg.train.generator_ema_decay
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 <= decay < 1:
        raise InputError(f"train.generator_ema_decay={decay!r}: expected a number in [0, 1) (0: no average)")
    label = cfg.train.real_label
    if isinstance(label, bool) or not isinstance(label, (int, float)) or not 0.5 < label <= 1:
        raise InputError(f"train.real_label={label!r}: expected a number in (0.5, 1] (1: no label smoothing)")
    if isinstance(cfg.plot_images, bool) or not isinstance(cfg.plot_images, int) or cfg.plot_images < 0:
        raise InputError(f"plot_images={cfg.plot_images!r}: expected a whole number of images, 0 or more")


def build(cfg: ml_collections.ConfigDict, pixels=None) -> runner.Task:
    """The GAN task of a config.

    Args:
      cfg: the config (`default_config()` and its overrides).
      pixels: (train images, train labels, test images, test labels, image
        shape) to use instead of loading `data.name` (for tests). The train
        labels train the judge only.
    """
    check(cfg)
    # The train labels train the judge only; the step is given the images alone.
    x_train, y_train, x_test, y_test, image_shape = runner.load_labelled_pixels(cfg) if pixels is None else pixels
    num_pixels, latent_dim = x_train.shape[1], cfg.model.latent_dim
    generator = Generator(num_pixels=num_pixels, hidden=tuple(cfg.model.generator_hidden),
                          negative_slope=float(cfg.model.negative_slope))
    discriminator = Discriminator(hidden=tuple(cfg.model.discriminator_hidden), negative_slope=float(cfg.model.negative_slope))
    steps = cfg.train.epochs * (len(x_train) // max(cfg.train.batch_size, 1))
    tx_g = _optimizer(cfg.optimizer, "optimizer", steps)
    tx_d = _optimizer(cfg.discriminator_optimizer, "discriminator_optimizer", steps)

    def init(rng):
        return init_state(generator, discriminator, tx_g, tx_d, rng=rng, latent_dim=latent_dim,
                          generator_ema_decay=float(cfg.train.generator_ema_decay))

    # The judge, and what it makes of real digits. As many generated images as
    # test images are scored, so that both sides of each comparison have the same size.
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    judge, judge_params = train_classifier(x_train, y_train, num_classes=num_classes)
    judge_jit = jax.jit(lambda x: judge.apply({"params": judge_params}, x))  # params: small constants
    n = len(x_test)
    eval_rng = np.random.default_rng(EVAL_SEED)
    z_eval = jnp.asarray(eval_rng.standard_normal((n, latent_dim)), jnp.float32)
    real_subset = x_train[eval_rng.choice(len(x_train), size=min(n, len(x_train)), replace=False)]
    test_features, test_logits = (np.asarray(v) for v in judge_jit(jnp.asarray(x_test)))
    judge_accuracy = float(np.mean(test_logits.argmax(axis=1) == y_test))
    generate_jit = jax.jit(lambda params, z: generator.apply({"params": params}, z))

    def scores(generator_params) -> tuple[float, float]:
        features, logits = judge_jit(generate_jit(generator_params, z_eval))
        return (digit_score(jax.nn.softmax(logits)),
                frechet_distance(np.asarray(features), test_features))

    real_score = digit_score(jax.nn.softmax(test_logits))
    real_distance = frechet_distance(np.asarray(judge_jit(jnp.asarray(real_subset))[0]), test_features)
    # The runner starts from init(PRNGKey(seed)): this is the generator that training begins with.
    untrained_score, untrained_distance = scores(init(jax.random.PRNGKey(cfg.seed)).generator.variables()["params"])

    def evaluate(state):
        score, distance = scores(state.generator.variables()["params"])
        return {"digit_score": score, "digit_score_real": real_score, "digit_score_untrained": untrained_score,
                "frechet_distance": distance, "frechet_distance_real": real_distance,
                "frechet_distance_untrained": untrained_distance}

    def report(state, epoch, workdir):
        if workdir is None or not cfg.plot_images:
            return {}
        images = np.asarray(generate_jit(state.generator.variables()["params"], z_eval[: cfg.plot_images]))
        path = os.path.join(workdir, plots.DIRECTORY, f"samples_epoch_{epoch:04d}.png")
        return {"samples_png": plots.image_grid(
            images.reshape(-1, *image_shape), path, columns=min(10, len(images)),
            title=f"generated digits, epoch {epoch} (the same z at every epoch)")}

    def headline(summary):
        return (f"digit score {summary['eval_digit_score']:.2f} (real test images {summary['eval_digit_score_real']:.2f}, "
                f"untrained generator {summary['eval_digit_score_untrained']:.2f}); Fréchet distance "
                f"{summary['eval_frechet_distance']:.2f} (real train images {summary['eval_frechet_distance_real']:.2f}, "
                f"untrained generator {summary['eval_frechet_distance_untrained']:.2f}), on {n} generated digits")

    g_count = state_lib.param_count(jax.eval_shape(generator.init, jax.random.PRNGKey(0), jnp.zeros((1, latent_dim)))["params"])
    d_count = state_lib.param_count(jax.eval_shape(discriminator.init, jax.random.PRNGKey(0), x_train[:1])["params"])
    g_widths = "-".join(map(str, (latent_dim, *cfg.model.generator_hidden, num_pixels)))
    d_widths = "-".join(map(str, (num_pixels, *cfg.model.discriminator_hidden, 1)))
    description = (
        f"{cfg.data.name}: {len(x_train)} train images of {'x'.join(map(str, image_shape))} pixels, labels unused by the GAN; "
        f"generator {g_widths} ({g_count:,} parameters), discriminator {d_widths} ({d_count:,} parameters); "
        f"{cfg.optimizer.name} lr {cfg.optimizer.learning_rate:g} / {cfg.discriminator_optimizer.name} lr "
        f"{cfg.discriminator_optimizer.learning_rate:g}\n"
        f"judge: a {num_pixels}-64-{num_classes} digit classifier trained on the train split's labels "
        f"(test accuracy {judge_accuracy:.3f}), used only to score generated digits"
    )
    return runner.Task(
        description=description, train={"x": x_train}, init=init,
        train_step=make_train_step(real_label=float(cfg.train.real_label)), evaluate=evaluate,
        params=gan_params, headline=headline, report=report,
    )


def gan_params(state: GANState) -> dict:
    """Both players' parameters (and the generator's average, when kept): what a run's digest covers."""
    out = {"generator": state.generator.params, "discriminator": state.discriminator.params}
    if state.generator.ema_params is not None:
        out["generator_ema"] = state.generator.ema_params
    return out
