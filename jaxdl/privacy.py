"""Per-example gradients (vmap across the examples of a batch) and DP-SGD.

DP-SGD (Abadi et al., 2016) bounds how much any one example can move the
model: each example's gradient is clipped to an L2 norm of at most
`clip_norm`, the clipped gradients are summed, Gaussian noise with standard
deviation `noise_multiplier * clip_norm` is added to the sum, and the result
is divided by the batch size.

What jaxdl does not do: privacy accounting. It reports no (epsilon, delta).
Its batches come from a seeded shuffle without replacement (fixed-size
batches), not from the Poisson subsampling that the usual accountants
(for example Google's `dp_accounting` RDP accountant, with sampling rate
batch_size / examples, `noise_multiplier` and the number of steps) assume,
so a figure from such an accountant is an approximation for jaxdl's runs,
not a guarantee. Padding rows (mask 0) contribute nothing, and the noise is
drawn from `fold_in(rng, step)`, so a resumed run adds the same noise.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxdl.errors import InputError


@dataclasses.dataclass(frozen=True)
class Privacy:
    """DP-SGD settings: clip each example's gradient to `clip_norm`, add noise of std `noise_multiplier * clip_norm`."""

    clip_norm: float
    noise_multiplier: float = 0.0

    def __post_init__(self):
        for name in ("clip_norm", "noise_multiplier"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
                raise InputError(f"privacy.{name}={value!r}: expected a finite number >= 0")
        if self.clip_norm == 0:
            raise InputError("privacy.clip_norm=0: expected a number > 0 (DP-SGD clips every example's gradient to it)")


def per_example_grads(example_loss: Callable, params, batch: dict, rng: jax.Array):
    """The gradient of every example's loss, computed for all examples at once with `jax.vmap`.

    Args:
      example_loss: (params, x, y, rng) -> (loss of that one example, aux).
      params: the parameters to differentiate.
      batch: {"x": (B, ...), "y": (B, ...)}.
      rng: folded with each example's index, so examples draw independent
        dropout masks.

    Returns:
      (grads, aux): grads has the structure of `params` with a leading axis
      of size B; aux is each example's aux, stacked.
    """
    rngs = jax.vmap(lambda i: jax.random.fold_in(rng, i))(jnp.arange(batch["x"].shape[0]))
    grad_fn = jax.grad(example_loss, has_aux=True)
    return jax.vmap(grad_fn, in_axes=(None, 0, 0, 0))(params, batch["x"], batch["y"], rngs)


def clip(grads, clip_norm: float):
    """Scales each example's gradient (leading axis) down to an L2 norm of at most `clip_norm`.

    Returns:
      (clipped grads, each example's norm before clipping).
    """
    norms = jax.vmap(optax.tree.norm)(grads)
    factors = jnp.minimum(1.0, clip_norm / jnp.maximum(norms, 1e-12))
    return jax.tree.map(lambda g: g * factors.reshape(-1, *([1] * (g.ndim - 1))).astype(g.dtype), grads), norms


def private_gradient(
    example_loss: Callable,
    params,
    batch: dict,
    *,
    privacy: Privacy,
    rng: jax.Array,
    axis_name: str | None = None,
):
    """The DP-SGD gradient of a batch: clipped per-example gradients, summed, noised, averaged.

    Under a named axis (pmap, shard_map) the clipped sums of all devices are
    added before the noise, which is then drawn once for the global batch
    (every device draws the same numbers from the same key).

    Returns:
      (grads, aux) with aux stacked per example, as in `per_example_grads`.
    """
    example_rng, noise_rng = jax.random.split(rng)
    grads, aux = per_example_grads(example_loss, params, batch, example_rng)
    clipped, _ = clip(grads, privacy.clip_norm)
    mask = batch["mask"]
    total = jax.tree.map(lambda g: jnp.tensordot(mask.astype(g.dtype), g, axes=1), clipped)
    batch_size = jnp.asarray(mask.shape[0], jnp.float32)
    if axis_name is not None:
        total = jax.lax.psum(total, axis_name)
        batch_size = jax.lax.psum(batch_size, axis_name)
    leaves, treedef = jax.tree.flatten(total)
    keys = jax.random.split(noise_rng, len(leaves))
    std = privacy.noise_multiplier * privacy.clip_norm
    noisy = [leaf + std * jax.random.normal(key, leaf.shape, leaf.dtype) for leaf, key in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, [leaf / batch_size for leaf in noisy]), aux
