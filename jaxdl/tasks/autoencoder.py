"""An autoencoder: learning from unlabelled images by squeezing each through a small code and back.

The encoder maps an image to a `latent_dim`-number code, the decoder maps
the code back to an image, and training minimises the difference between
an image and its reconstruction (the pixels' binary cross-entropy). No label
is used: the training split holds the images alone. With a 2-D code the test
images can be drawn as points, coloured by their (unused) labels, to see
whether the code separates the digits.

The reference point is PCA with the same number of components: the best any
*linear* encoder and decoder can do. An autoencoder whose test error is
below PCA's has learned something a linear code cannot.

`AutoencoderTask` is a `jaxdl.task.Task`: the one loop trains it as it
trains every task (ensembles, pmap, meshes, callbacks, checkpoints).
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxdl import activations, metrics, parallel, plots, state as state_lib, task as task_lib
from jaxdl.errors import InputError
from jaxdl.tasks import pixels as pixels_lib


class Autoencoder(nn.Module):
    """An MLP encoder to a `latent_dim` code and a mirrored MLP decoder back to `num_pixels` sigmoid outputs.

    Attributes:
      num_pixels: the length of a flattened image.
      hidden: the encoder's hidden widths; the decoder uses them reversed.
      latent_dim: the size of the code.
      activation: the hidden layers' activation.
    """

    num_pixels: int
    hidden: Sequence[int] = (128, 64)
    latent_dim: int = 2
    activation: str = "relu"

    def setup(self):
        self.encoder = [nn.Dense(w, name=f"encoder_{i}") for i, w in enumerate(self.hidden)]
        self.code = nn.Dense(self.latent_dim, name="code")
        self.decoder = [nn.Dense(w, name=f"decoder_{i}") for i, w in enumerate(reversed(self.hidden))]
        self.pixels = nn.Dense(self.num_pixels, name="pixels")

    def encode(self, x: jax.Array) -> jax.Array:
        """Images (N, num_pixels) -> codes (N, latent_dim)."""
        act = activations.get(self.activation)
        for layer in self.encoder:
            x = act(layer(x))
        return self.code(x)

    def decode(self, code: jax.Array, *, logits: bool = False) -> jax.Array:
        """Codes -> images' pixels in [0, 1] (or their logits)."""
        act = activations.get(self.activation)
        x = code
        for layer in self.decoder:
            x = act(layer(x))
        z = self.pixels(x)
        return z if logits else jax.nn.sigmoid(z)

    def __call__(self, x: jax.Array, *, train: bool = False, logits: bool = False) -> jax.Array:
        del train  # no dropout or batch statistics
        return self.decode(self.encode(x.reshape(x.shape[0], -1)), logits=logits)


def default_config() -> ml_collections.ConfigDict:
    """An autoencoder with a 2-D code on digits: 64-128-64-2-64-128-64, adam, 150 epochs of batch 32."""
    from jaxdl import config as config_lib

    cfg = config_lib.base_config("autoencoder")
    cfg.data.name = "digits"
    cfg.model.hidden = (128, 64)
    cfg.model.latent_dim = 2
    cfg.model.activation = "relu"
    cfg.train.epochs = 150
    cfg.train.batch_size = 32
    cfg.train.eval_every_epochs = 25
    cfg.checkpoint.every_epochs = 10
    cfg.optimizer.name = "adam"
    cfg.optimizer.learning_rate = 2e-3
    cfg.plot_images = 12  # originals and reconstructions drawn at each evaluation
    return cfg


def reconstruction_loss(model: Autoencoder, params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Each image's mean binary cross-entropy between its pixels and their reconstruction, and that reconstruction."""
    z = model.apply({"params": params}, x, logits=True)
    return optax.sigmoid_binary_cross_entropy(z, x).mean(axis=-1), jax.nn.sigmoid(z)


def pca_error(x_train: np.ndarray, x_test: np.ndarray, components: int) -> float:
    """The test images' mean squared pixel error after PCA (fitted on train) with `components` components."""
    mean = x_train.mean(axis=0)
    _, _, basis = np.linalg.svd(x_train - mean, full_matrices=False)
    basis = basis[:components]
    rebuilt = (x_test - mean) @ basis.T @ basis + mean
    return float(np.mean(np.square(rebuilt - x_test)))


class AutoencoderTask(task_lib.Task):
    """Minimise the pixels' binary cross-entropy between images and their reconstructions; the batch is `x` and `mask`.

    Args:
      model: the `Autoencoder`.
      tx: the optax optimizer.
      references: constant figures added to every evaluation's (e.g. the
        PCA and mean-image errors on the test images).
      x_test, y_test: the test images and their labels, for the pictures
        (the labels only colour the codes; training never sees a label).
      image_shape: one image's shape, for drawing.
      plot_images: how many test images (and their reconstructions) to draw.
      steps_per_epoch: to name the epoch in the pictures' titles.
    """

    name = "autoencoder"

    def __init__(self, model: Autoencoder, tx: optax.GradientTransformation, *, references: dict | None = None,
                 x_test: np.ndarray | None = None, y_test: np.ndarray | None = None,
                 image_shape: tuple[int, ...] = (), plot_images: int = 0, steps_per_epoch: int = 1):
        self.model, self.tx = model, tx
        self.references = dict(references or {})
        self.x_test, self.y_test = x_test, y_test
        self.image_shape, self.plot_images = tuple(image_shape), plot_images
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self._rebuild = jax.jit(lambda params, x: reconstruction_loss(model, params, x)[1])
        self._encode = jax.jit(lambda params, x: model.apply({"params": params}, x, method=Autoencoder.encode))

    def init(self, rng: jax.Array) -> state_lib.TrainState:
        return state_lib.create(self.model, self.tx, rng=rng, input_shape=(self.model.num_pixels,))

    def train_step(self, state: state_lib.TrainState, batch: dict):
        """One update on the mean reconstruction loss over the batch's real rows (over all devices' rows under pmap)."""
        mask = batch["mask"].astype(jnp.float32)
        real = parallel.psum(jnp.sum(mask))

        def objective(params):
            per_example, reconstruction = reconstruction_loss(self.model, params, batch["x"])
            return jnp.sum(per_example * mask) / jnp.maximum(real, 1.0), (per_example, reconstruction)

        (_, (per_example, reconstruction)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        grads = parallel.psum(grads)
        return state.apply_gradients(grads, state.model_state), _totals(batch, per_example, reconstruction)

    def eval_step(self, state: state_lib.TrainState, batch: dict) -> dict:
        per_example, reconstruction = reconstruction_loss(self.model, state.params, batch["x"])
        return _totals(batch, per_example, reconstruction)

    def figures(self, totals: dict) -> dict:
        """loss and mse (means over the images), and the constant references beside them."""
        return {**metrics.means(totals), **self.references}

    def report(self, state: state_lib.TrainState, step: int, writer) -> dict:
        """Draws plots/reconstructions.png and plots/latent_space.png (nothing without a workdir); no extra figures."""
        pictures = writer.path(plots.DIRECTORY, "reconstructions.png") if self.plot_images else None
        if pictures is None or self.x_test is None:
            return {}
        epoch = int(step) // self.steps_per_epoch
        shown = self.x_test[: self.plot_images]
        rebuilt = np.asarray(self._rebuild(state.params, shown))
        plots.image_grid(
            np.concatenate([shown, rebuilt]).reshape(-1, *self.image_shape), pictures, columns=len(shown),
            row_titles=("original", "rebuilt"), title=f"test images and their reconstructions, epoch {epoch}",
        )
        writer.image(pictures, tag="autoencoder/reconstructions")
        if self.y_test is not None:
            codes = np.asarray(self._encode(state.params, self.x_test))
            if codes.shape[1] > 2:  # draw the code's two main directions
                centred = codes - codes.mean(axis=0)
                codes = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
            latent = plots.scatter_by_label(
                codes, self.y_test, writer.path(plots.DIRECTORY, "latent_space.png"),
                title=f"test images' codes, coloured by the labels training never saw (epoch {epoch})",
            )
            writer.image(latent, tag="autoencoder/latent_space")
        # The pictures' paths are not returned: the record's figures are numbers (checkpoints keep them).
        return {}

    def export(self, state: state_lib.TrainState):
        return state.params

    def describe(self) -> str:
        widths = (self.model.num_pixels, *self.model.hidden, self.model.latent_dim, *reversed(self.model.hidden),
                  self.model.num_pixels)
        return f"Autoencoder {'-'.join(map(str, widths))}"


def _totals(batch: dict, per_example: jax.Array, reconstruction: jax.Array) -> dict:
    """The batch's sums over its real rows: loss (pixel cross-entropy), mse (squared pixel error), count."""
    mask = batch["mask"].astype(jnp.float32)
    mse = jnp.mean(jnp.square(reconstruction - batch["x"]).reshape(reconstruction.shape[0], -1), axis=-1)
    return {"loss_sum": jnp.sum(per_example * mask), "mse_sum": jnp.sum(mse * mask), "count": jnp.sum(mask)}


def check(cfg: ml_collections.ConfigDict) -> None:
    """Checks the model settings, naming the bad one."""
    from jaxdl import tasks

    hidden = tuple(cfg.model.hidden)
    if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in hidden):
        raise InputError(f"model.hidden={hidden!r}: expected positive integer layer widths, e.g. (128, 64)")
    tasks.check_positive_int(cfg.model.latent_dim, "model.latent_dim")
    activations.get(cfg.model.activation, argument="model.activation")
    pixels_lib.check_plot_images(cfg.plot_images)


def build(cfg: ml_collections.ConfigDict, pixels=None):
    """The autoencoder task of a config, with its data: a `tasks.Built`.

    Args:
      cfg: the config (`default_config()` and its overrides).
      pixels: (train images, test images, test labels, image shape) to use
        instead of loading `data.name` (for tests).

    Raises:
      InputError: naming the first bad setting, its value and what was expected.
    """
    from jaxdl import data, optim, tasks

    check(cfg)
    x_train, x_test, y_test, image_shape = pixels_lib.load_pixels(cfg) if pixels is None else pixels
    x_train, x_test = np.asarray(x_train, np.float32), np.asarray(x_test, np.float32)
    steps = tasks.steps_per_epoch(cfg, len(x_train))
    model = Autoencoder(num_pixels=x_train.shape[1], hidden=tuple(cfg.model.hidden), latent_dim=cfg.model.latent_dim,
                        activation=cfg.model.activation)
    tx = optim.from_config(cfg, total_steps=steps * cfg.train.epochs)
    references = {"pca_mse": pca_error(x_train, x_test, cfg.model.latent_dim),
                  "mean_image_mse": float(np.mean(np.square(x_train.mean(axis=0) - x_test)))}
    task = AutoencoderTask(model, tx, references=references, x_test=x_test, y_test=np.asarray(y_test),
                           image_shape=image_shape, plot_images=cfg.plot_images, steps_per_epoch=steps)
    # The training split is the images alone: the step cannot read a label.
    splits = data.Splits(
        train=data.Examples(x=x_train), test=data.Examples(x=x_test),
        info=pixels_lib.dataset_info(cfg, len(x_train), len(x_test), x_train.shape[1], image_shape, cfg.data.name),
    )
    count = state_lib.param_count(jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x_train[:1])["params"])
    members = f"an ensemble of {cfg.ensemble.size} " if cfg.ensemble.size > 1 else ""
    description = (
        f"{cfg.data.name}: {len(x_train)} train / {len(x_test)} test images of {'x'.join(map(str, image_shape))} "
        f"pixels, labels unused; {members}{task.describe()} ({count:,} parameters{' each' if members else ''}); "
        f"{cfg.optimizer.name}, pixel binary cross-entropy, {cfg.train.epochs} epochs of {steps} steps at batch "
        f"size {cfg.train.batch_size}"
    )
    latent_dim, dataset, test_count = cfg.model.latent_dim, cfg.data.name, len(x_test)

    def headline(summary: dict) -> str:
        return (f"test reconstruction error (mean squared, pixels in [0, 1]) {summary['eval_mse']:.4f}; "
                f"PCA with {latent_dim} components {summary['eval_pca_mse']:.4f}; "
                f"the mean image {summary['eval_mean_image_mse']:.4f} ({test_count} {dataset} test images)")

    return tasks.Built(task=task, splits=splits, description=description, select="loss", headline=headline)
