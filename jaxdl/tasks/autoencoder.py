"""An autoencoder: learning from unlabelled images by squeezing each through a small code and back.

The encoder maps an image to a `latent_dim`-number code, the decoder maps
the code back to an image, and training minimises the difference between
an image and its reconstruction (the pixels' binary cross-entropy). No label
is used: the training data is the images alone. With a 2-D code the test
images can be drawn as points, coloured by their (unused) labels, to see
whether the code separates the digits.

The reference point is PCA with the same number of components: the best any
*linear* encoder and decoder can do. An autoencoder whose test error is
below PCA's has learned something a linear code cannot.
"""

import os
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxdl import activations, optim, plots, state as state_lib
from jaxdl.errors import InputError
from jaxdl.tasks import runner


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
    cfg = runner.base_config("autoencoder")
    cfg.model.hidden = (128, 64)
    cfg.model.latent_dim = 2
    cfg.model.activation = "relu"
    cfg.train.epochs = 150
    cfg.train.eval_every_epochs = 25
    cfg.optimizer.name = "adam"
    cfg.optimizer.learning_rate = 2e-3
    cfg.plot_images = 12  # originals and reconstructions drawn at each evaluation
    return cfg


def reconstruction_loss(model: Autoencoder, params, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Each image's mean binary cross-entropy between its pixels and their reconstruction, and that reconstruction."""
    z = model.apply({"params": params}, x, logits=True)
    return optax.sigmoid_binary_cross_entropy(z, x).mean(axis=-1), jax.nn.sigmoid(z)


def make_train_step(model: Autoencoder):
    """The pure step: one adam update on the batch's mean reconstruction loss. The batch holds images only."""

    def train_step(state: state_lib.TrainState, batch: dict):
        def objective(params):
            loss, reconstruction = reconstruction_loss(model, params, batch["x"])
            return loss.mean(), reconstruction

        (loss, reconstruction), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
        mse = jnp.mean(jnp.square(reconstruction - batch["x"]))
        return state.apply_gradients(grads, state.model_state), {"loss": loss, "mse": mse}

    return train_step


def pca_error(x_train: np.ndarray, x_test: np.ndarray, components: int) -> float:
    """The test images' mean squared pixel error after PCA (fitted on train) with `components` components."""
    mean = x_train.mean(axis=0)
    _, _, basis = np.linalg.svd(x_train - mean, full_matrices=False)
    basis = basis[:components]
    rebuilt = (x_test - mean) @ basis.T @ basis + mean
    return float(np.mean(np.square(rebuilt - x_test)))


def check(cfg: ml_collections.ConfigDict) -> None:
    """Checks the model settings, naming the bad one."""
    hidden = tuple(cfg.model.hidden)
    if not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in hidden):
        raise InputError(f"model.hidden={hidden!r}: expected positive integer layer widths, e.g. (128, 64)")
    runner.check_positive_int(cfg.model.latent_dim, "model.latent_dim")
    activations.get(cfg.model.activation, argument="model.activation")
    if not isinstance(cfg.plot_images, int) or cfg.plot_images < 0:
        raise InputError(f"plot_images={cfg.plot_images!r}: expected a whole number of images, 0 or more")


def build(cfg: ml_collections.ConfigDict, pixels=None) -> runner.Task:
    """The autoencoder task of a config.

    Args:
      cfg: the config (`default_config()` and its overrides).
      pixels: (train images, test images, test labels, image shape) to use
        instead of loading `data.name` (for tests).
    """
    check(cfg)
    x_train, x_test, y_test, image_shape = runner.load_pixels(cfg) if pixels is None else pixels
    model = Autoencoder(num_pixels=x_train.shape[1], hidden=tuple(cfg.model.hidden), latent_dim=cfg.model.latent_dim,
                        activation=cfg.model.activation)
    steps = cfg.train.epochs * (len(x_train) // max(cfg.train.batch_size, 1))
    tx = optim.build(dict(cfg.optimizer), total_steps=steps)
    pca = pca_error(x_train, x_test, cfg.model.latent_dim)
    mean_image = float(np.mean(np.square(x_train.mean(axis=0) - x_test)))
    evaluate_jit = jax.jit(lambda params, x: reconstruction_loss(model, params, x))
    encode_jit = jax.jit(lambda params, x: model.apply({"params": params}, x, method=Autoencoder.encode))

    def init(rng):
        return state_lib.create(model, tx, rng=rng, input_shape=(x_train.shape[1],))

    def evaluate(state):
        loss, reconstruction = evaluate_jit(state.params, x_test)
        return {"loss": float(loss.mean()), "mse": float(np.mean(np.square(np.asarray(reconstruction) - x_test))),
                "pca_mse": pca, "mean_image_mse": mean_image}

    def report(state, epoch, workdir):
        if workdir is None or not cfg.plot_images:
            return {}
        shown = x_test[: cfg.plot_images]
        rebuilt = np.asarray(evaluate_jit(state.params, shown)[1])
        directory = os.path.join(workdir, plots.DIRECTORY)
        pictures = plots.image_grid(
            np.concatenate([shown, rebuilt]).reshape(-1, *image_shape), os.path.join(directory, "reconstructions.png"),
            columns=len(shown), row_titles=("original", "rebuilt"), title=f"test images and their reconstructions, epoch {epoch}",
        )
        codes = np.asarray(encode_jit(state.params, x_test))
        if codes.shape[1] > 2:  # draw the code's two main directions
            centred = codes - codes.mean(axis=0)
            codes = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
        latent = plots.scatter_by_label(
            codes, y_test, os.path.join(directory, "latent_space.png"),
            title=f"test images' codes, coloured by the labels training never saw (epoch {epoch})",
        )
        return {"reconstructions_png": pictures, "latent_png": latent}

    def headline(summary):
        return (f"test reconstruction error (mean squared, pixels in [0, 1]) {summary['eval_mse']:.4f}; "
                f"PCA with {cfg.model.latent_dim} components {summary['eval_pca_mse']:.4f}; "
                f"the mean image {summary['eval_mean_image_mse']:.4f} ({len(x_test)} {cfg.data.name} test images)")

    widths = "-".join(map(str, (x_train.shape[1], *cfg.model.hidden, cfg.model.latent_dim, *reversed(cfg.model.hidden), x_train.shape[1])))
    count = state_lib.param_count(jax.eval_shape(model.init, jax.random.PRNGKey(0), x_train[:1])["params"])
    description = (f"{cfg.data.name}: {len(x_train)} train / {len(x_test)} test images of {'x'.join(map(str, image_shape))} "
                   f"pixels, labels unused; Autoencoder {widths} ({count:,} parameters); {cfg.optimizer.name}, "
                   "pixel binary cross-entropy")
    return runner.Task(
        description=description, train={"x": x_train}, init=init, train_step=make_train_step(model),
        evaluate=evaluate, params=lambda state: state.params, headline=headline, report=report,
    )
