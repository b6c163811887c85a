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

Both scores are computed in `GANTask.report` (they are not sums over
batches) and recorded as `eval_digit_score`, `eval_frechet_distance` and
their references. The batch figures are the players' losses in training and,
on the test split, the discriminator's cross-entropy on held-out real digits
(`eval_loss`; against `train_d_real`, `eval_d_real` shows whether the
discriminator memorises the training digits).
"""

import hashlib
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import struct
from ml_collections import config_dict

from jaxdl import optim, parallel, plots, state as state_lib, task as task_lib
from jaxdl.errors import InputError
from jaxdl.tasks import pixels as pixels_lib

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

    @property
    def step(self) -> jax.Array:
        """Updates applied (each step updates both players once): the generator's count."""
        return self.generator.step


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
    from jaxdl import config as config_lib

    cfg = config_lib.base_config("gan")
    cfg.data.name = "digits"
    cfg.model.latent_dim = 16
    cfg.model.generator_hidden = (128, 256)
    # A small discriminator: a larger one memorises the 1,438 training digits and
    # wins the game, and the generated digits get worse the longer it trains.
    cfg.model.discriminator_hidden = (64, 32)
    cfg.model.negative_slope = 0.2
    cfg.train.epochs = 1200
    cfg.train.batch_size = 64
    cfg.train.eval_every_epochs = 200
    # Every step sees a full batch of real images against as many generated ones.
    cfg.train.drop_remainder = True
    # The discriminator's target for real images; below 1 (e.g. 0.9) is one-sided
    # label smoothing, which keeps it from growing overconfident.
    cfg.train.real_label = 0.9
    # > 0: evaluate and draw with an exponential moving average of the generator's
    # parameters, which smooths out the oscillation of the adversarial game.
    cfg.train.generator_ema_decay = 0.999
    cfg.checkpoint.every_epochs = 10
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
    """`n` latent vectors: this device's rows of those drawn for the whole batch (so every strategy draws the same)."""
    whole = jax.random.normal(key, (parallel.collectives.batch_rows(n), *state.generator.input_shape))
    return parallel.collectives.shard_rows(whole)


def _mask(mask, n: int) -> tuple[jax.Array, jax.Array]:
    """The rows' mask as float32 (all ones when None), and the real rows of the whole batch (all devices' under pmap)."""
    mask = jnp.ones((n,), jnp.float32) if mask is None else mask.astype(jnp.float32)
    return mask, jnp.maximum(parallel.psum(jnp.sum(mask)), 1.0)


def discriminator_step(state: GANState, real: jax.Array, key: jax.Array, *, real_label: float = 1.0, mask=None):
    """One discriminator update: real images towards `real_label`, as many generated ones (noise `key`) towards 0.

    The loss is the mean over the batch's real rows (`mask`; None: all) of each
    row's two cross-entropies, its real image's and its generated image's;
    under pmap the rows of all devices, the gradients summed over them.

    Returns:
      The state with the discriminator updated, and the batch's sums over its
      real rows: d_loss_sum (the two cross-entropies: 2 ln 2 = 1.386 per row
      for a discriminator that cannot tell), d_real_sum and d_fake_sum (its
      probability of "real" for each kind, before the update).
    """
    g, d = state.generator, state.discriminator
    mask, count = _mask(mask, real.shape[0])
    fake = jax.lax.stop_gradient(g.model.apply({"params": g.params}, _latent(state, key, real.shape[0])))

    def loss(params):
        real_logits = d.model.apply({"params": params}, real)
        fake_logits = d.model.apply({"params": params}, fake)
        per_row = (optax.sigmoid_binary_cross_entropy(real_logits, jnp.full_like(real_logits, real_label))
                   + optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits)))
        return jnp.sum(per_row * mask) / count, (per_row, real_logits, fake_logits)

    (_, (per_row, real_logits, fake_logits)), grads = jax.value_and_grad(loss, has_aux=True)(d.params)
    grads = parallel.psum(grads)
    return state.replace(discriminator=d.apply_gradients(grads, d.model_state)), {
        "d_loss_sum": jnp.sum(per_row * mask),
        "d_real_sum": jnp.sum(jax.nn.sigmoid(real_logits) * mask),
        "d_fake_sum": jnp.sum(jax.nn.sigmoid(fake_logits) * mask),
    }


def generator_step(state: GANState, key: jax.Array, batch_size: int, *, mask=None):
    """One generator update with the non-saturating loss -log D(G(z)), the discriminator held fixed.

    The non-saturating loss, rather than log(1 - D(G(z))), gives the
    generator strong gradients early, when the discriminator rejects its
    images easily. It draws `batch_size` images, one per row of `mask`, and
    averages over the real rows as `discriminator_step` does.

    Returns:
      The state with the generator updated, and g_loss_sum over the real rows.
    """
    g, d = state.generator, state.discriminator
    mask, count = _mask(mask, batch_size)
    z = _latent(state, key, batch_size)

    def loss(params):
        logits = d.model.apply({"params": d.params}, g.model.apply({"params": params}, z))
        per_row = optax.sigmoid_binary_cross_entropy(logits, jnp.ones_like(logits))
        return jnp.sum(per_row * mask) / count, per_row

    (_, per_row), grads = jax.value_and_grad(loss, has_aux=True)(g.params)
    grads = parallel.psum(grads)
    return state.replace(generator=g.apply_gradients(grads, g.model_state)), {"g_loss_sum": jnp.sum(per_row * mask)}


def make_train_step(*, real_label: float = 1.0):
    """The pure step: a discriminator update, then a generator update.

    (GANState, {"x": images, "mask": rows}) -> (GANState, totals): the sums
    d_loss_sum, d_real_sum, d_fake_sum, g_loss_sum over the real rows, and count.

    The noise comes from fold_in(generator.rng, generator.step), so a resumed
    run draws the same numbers as an uninterrupted one; under pmap each
    device takes its rows of the noise drawn for the whole batch, so that
    every strategy trains on the same images.
    """

    def train_step(state: GANState, batch: dict):
        real = batch["x"]
        mask = batch.get("mask")
        key = jax.random.fold_in(state.generator.rng, state.generator.step)
        d_key, g_key = jax.random.split(key)
        state, d_totals = discriminator_step(state, real, d_key, real_label=real_label, mask=mask)
        state, g_totals = generator_step(state, g_key, real.shape[0], mask=mask)
        count = real.shape[0] if mask is None else jnp.sum(mask.astype(jnp.float32))
        return state, {**d_totals, **g_totals, "count": jnp.asarray(count, jnp.float32)}

    return train_step


_JUDGES: dict = {}  # the judges trained in this process, by their data and settings: each is trained once


def train_classifier(x: np.ndarray, y: np.ndarray, *, num_classes: int, hidden: int = 64, steps: int = 500,
                     learning_rate: float = 1e-2, seed: int = 0) -> tuple[DigitClassifier, dict]:
    """The judge: a `DigitClassifier` trained full-batch with adam on (x, y). Returns the model and its params.

    Deterministic, so a process that builds the task again (a notebook, a
    resumed run, the tests) reuses the judge it trained for the same data.
    """
    key = (hashlib.sha256(np.ascontiguousarray(x).tobytes() + np.ascontiguousarray(y).tobytes()).hexdigest(),
           x.shape, num_classes, hidden, steps, learning_rate, seed)
    if key not in _JUDGES:
        _JUDGES[key] = _train_classifier(x, y, num_classes=num_classes, hidden=hidden, steps=steps,
                                         learning_rate=learning_rate, seed=seed)
    return _JUDGES[key]


def _train_classifier(x, y, *, num_classes, hidden, steps, learning_rate, seed):
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


class GANTask(task_lib.Task):
    """A generator and a discriminator trained against each other on images alone; scored by a judge in `report`.

    Args:
      generator, discriminator: the two models.
      tx_generator, tx_discriminator: their optimizers.
      latent_dim: the length of the generator's input.
      real_label: the discriminator's target for real images.
      generator_ema_decay: > 0: keep an average of the generator's
        parameters, which the scores and pictures use.
      judge: (generator params) -> (digit score, Fréchet distance) of its
        generated images; None: no scores.
      references: constant figures reported beside the scores (those of
        real images and of the untrained generator).
      sample: (generator params, n) -> n images from the evaluation's fixed z.
      image_shape: one image's shape, for drawing.
      plot_images: how many generated images to draw at each evaluation.
      steps_per_epoch: to name the epoch in the pictures' file names.
    """

    name = "gan"

    def __init__(self, generator: Generator, discriminator: Discriminator, tx_generator: optax.GradientTransformation,
                 tx_discriminator: optax.GradientTransformation, *, latent_dim: int, real_label: float = 1.0,
                 generator_ema_decay: float = 0.0, judge=None, references: dict | None = None, sample=None,
                 image_shape: tuple[int, ...] = (), plot_images: int = 0, steps_per_epoch: int = 1):
        self.generator, self.discriminator = generator, discriminator
        self.tx_generator, self.tx_discriminator = tx_generator, tx_discriminator
        self.latent_dim, self.real_label = latent_dim, float(real_label)
        self.generator_ema_decay = float(generator_ema_decay)
        self.judge, self.references, self.sample = judge, dict(references or {}), sample
        self.image_shape, self.plot_images = tuple(image_shape), plot_images
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self._train_step = make_train_step(real_label=self.real_label)

    def init(self, rng: jax.Array) -> GANState:
        return init_state(self.generator, self.discriminator, self.tx_generator, self.tx_discriminator, rng=rng,
                          latent_dim=self.latent_dim, generator_ema_decay=self.generator_ema_decay)

    def train_step(self, state: GANState, batch: dict):
        """A discriminator update, then a generator update; totals d_loss, d_real, d_fake, g_loss (sums) and count."""
        return self._train_step(state, batch)

    def eval_step(self, state: GANState, batch: dict) -> dict:
        """The discriminator on held-out real images: its cross-entropy against "real" (loss) and its probability of real."""
        d = state.discriminator
        mask = batch["mask"].astype(jnp.float32)
        logits = d.model.apply({"params": d.params}, batch["x"])
        per_row = optax.sigmoid_binary_cross_entropy(logits, jnp.ones_like(logits))
        return {"loss_sum": jnp.sum(per_row * mask), "d_real_sum": jnp.sum(jax.nn.sigmoid(logits) * mask),
                "count": jnp.sum(mask)}

    def report(self, state: GANState, step: int, writer) -> dict:
        """The judge's scores of the generated digits (with their references); draws plots/samples_epoch_XXXX.png."""
        params = state.generator.variables()["params"]
        out = {}
        if self.judge is not None:
            score, distance = self.judge(params)
            out = {"digit_score": score, "frechet_distance": distance, **self.references}
        if self.plot_images and self.sample is not None:
            epoch = int(step) // self.steps_per_epoch
            path = writer.path(plots.DIRECTORY, f"samples_epoch_{epoch:04d}.png")
            if path is not None:
                images = np.asarray(self.sample(params, self.plot_images))
                plots.image_grid(images.reshape(-1, *self.image_shape), path, columns=min(10, len(images)),
                                 title=f"generated digits, epoch {epoch} (the same z at every epoch)")
                writer.image(path, tag="gan/samples")
        return out

    def export(self, state: GANState) -> dict:
        return gan_params(state)

    def describe(self) -> str:
        g_widths = "-".join(map(str, (self.latent_dim, *self.generator.hidden, self.generator.num_pixels)))
        d_widths = "-".join(map(str, (self.generator.num_pixels, *self.discriminator.hidden, 1)))
        return f"GAN: generator {g_widths}, discriminator {d_widths}"


def _check_widths(value, name: str) -> tuple[int, ...]:
    widths = tuple(value)
    if not widths or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
        raise InputError(f"{name}={widths!r}: expected one or more positive integer layer widths, e.g. (128, 256)")
    return widths


def _optimizer(cfg: ml_collections.ConfigDict, name: str, total_steps: int) -> optax.GradientTransformation:
    try:
        return optim.from_config(cfg, total_steps=total_steps, settings=cfg[name])
    except InputError as err:  # optim names its section "optimizer"; say which of the two is wrong
        if name == "optimizer":
            raise
        raise InputError(str(err).replace("optimizer.", f"{name}.").replace("optimizer settings", f"{name} settings")) from None


def check(cfg: ml_collections.ConfigDict) -> None:
    """Checks the GAN's settings, naming the bad one."""
    from jaxdl import tasks

    tasks.check_positive_int(cfg.model.latent_dim, "model.latent_dim")
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
    pixels_lib.check_plot_images(cfg.plot_images)


def build(cfg: ml_collections.ConfigDict, pixels=None):
    """The GAN task of a config, with its data and its judge: a `tasks.Built`.

    Args:
      cfg: the config (`default_config()` and its overrides).
      pixels: (train images, train labels, test images, test labels, image
        shape) to use instead of loading `data.name` (for tests). The train
        labels train the judge only.

    Raises:
      InputError: naming the first bad setting, its value and what was expected.
    """
    from jaxdl import data, tasks

    check(cfg)
    # The train labels train the judge only; the training split holds the images alone.
    x_train, y_train, x_test, y_test, image_shape = pixels_lib.load_labelled_pixels(cfg) if pixels is None else pixels
    x_train, x_test = np.asarray(x_train, np.float32), np.asarray(x_test, np.float32)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    num_pixels, latent_dim = x_train.shape[1], cfg.model.latent_dim
    steps = tasks.steps_per_epoch(cfg, len(x_train))
    tx_g = _optimizer(cfg, "optimizer", steps * cfg.train.epochs)
    tx_d = _optimizer(cfg, "discriminator_optimizer", steps * cfg.train.epochs)
    generator = Generator(num_pixels=num_pixels, hidden=tuple(cfg.model.generator_hidden),
                          negative_slope=float(cfg.model.negative_slope))
    discriminator = Discriminator(hidden=tuple(cfg.model.discriminator_hidden), negative_slope=float(cfg.model.negative_slope))

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

    def sample(generator_params, count: int):
        return generate_jit(generator_params, z_eval[:count])

    task = GANTask(generator, discriminator, tx_g, tx_d, latent_dim=latent_dim, real_label=float(cfg.train.real_label),
                   generator_ema_decay=float(cfg.train.generator_ema_decay), judge=scores, sample=sample,
                   image_shape=image_shape, plot_images=cfg.plot_images, steps_per_epoch=steps)
    # A run starts from init(PRNGKey(seed)) (an ensemble's first member too): the generator training begins with.
    untrained = jax.jit(task.init)(jax.random.PRNGKey(cfg.seed))  # compiled: op by op it takes seconds
    untrained_score, untrained_distance = scores(untrained.generator.variables()["params"])
    task.references = {
        "digit_score_real": digit_score(jax.nn.softmax(test_logits)), "digit_score_untrained": untrained_score,
        "frechet_distance_real": frechet_distance(np.asarray(judge_jit(jnp.asarray(real_subset))[0]), test_features),
        "frechet_distance_untrained": untrained_distance,
    }
    splits = data.Splits(
        train=data.Examples(x=x_train), test=data.Examples(x=x_test),
        info=pixels_lib.dataset_info(cfg, len(x_train), len(x_test), num_pixels, image_shape, cfg.data.name),
    )

    g_count = state_lib.param_count(jax.eval_shape(lambda: generator.init(jax.random.PRNGKey(0), jnp.zeros((1, latent_dim))))["params"])
    d_count = state_lib.param_count(jax.eval_shape(lambda x: discriminator.init(jax.random.PRNGKey(0), x), x_train[:1])["params"])
    g_widths = "-".join(map(str, (latent_dim, *cfg.model.generator_hidden, num_pixels)))
    d_widths = "-".join(map(str, (num_pixels, *cfg.model.discriminator_hidden, 1)))
    members = f"an ensemble of {cfg.ensemble.size} GANs: " if cfg.ensemble.size > 1 else ""
    description = (
        f"{cfg.data.name}: {len(x_train)} train images of {'x'.join(map(str, image_shape))} pixels, labels unused by the GAN; "
        f"{members}generator {g_widths} ({g_count:,} parameters), discriminator {d_widths} ({d_count:,} parameters); "
        f"{cfg.optimizer.name} lr {cfg.optimizer.learning_rate:g} / {cfg.discriminator_optimizer.name} lr "
        f"{cfg.discriminator_optimizer.learning_rate:g}; {cfg.train.epochs} epochs of {steps} steps at batch size "
        f"{cfg.train.batch_size}\n"
        f"judge: a {num_pixels}-64-{num_classes} digit classifier trained on the train split's labels "
        f"(test accuracy {judge_accuracy:.3f}), used only to score generated digits"
        + (" (the first member's)" if members else "")
    )

    def headline(summary: dict) -> str:
        return (f"digit score {summary['eval_digit_score']:.2f} (real test images {summary['eval_digit_score_real']:.2f}, "
                f"untrained generator {summary['eval_digit_score_untrained']:.2f}); Fréchet distance "
                f"{summary['eval_frechet_distance']:.2f} (real train images {summary['eval_frechet_distance_real']:.2f}, "
                f"untrained generator {summary['eval_frechet_distance_untrained']:.2f}), on {n} generated digits")

    return tasks.Built(task=task, splits=splits, description=description, select="loss", headline=headline)


def gan_params(state: GANState) -> dict:
    """Both players' parameters (and the generator's average, when kept): what a run's digest covers."""
    out = {"generator": state.generator.params, "discriminator": state.discriminator.params}
    if state.generator.ema_params is not None:
        out["generator_ema"] = state.generator.ema_params
    return out
