"""Pure train and eval steps: (state, batch) -> (state, metrics).

No jit, pmap or device code here: `parallel.py` compiles these and decides
where they run. A batch is a dict of arrays: `x` (B, ...), `y` (B, ...) and
`mask` (B,), which is 0 on rows that only pad a last partial batch.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxdl import activations, metrics, privacy as privacy_lib
from jaxdl.losses import Loss
from jaxdl.state import TrainState

Batch = dict[str, jax.Array]


def make_train_step(
    loss: Loss,
    *,
    axis_name: str | None = None,
    privacy: privacy_lib.Privacy | None = None,
    accumulate: int = 1,
    compute_dtype=None,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """Builds the pure training step for `loss`.

    Args:
      loss: the loss to minimise.
      axis_name: when the step runs under a named mapped axis (pmap,
        shard_map), gradients and metric totals are summed across it.
      privacy: DP-SGD: clip each example's gradient and add noise (see
        `jaxdl.privacy`). Needs a model without mutable state.
      accumulate: split each batch into this many micro-batches, run them one
        after another and apply the summed gradient once: the update of the
        whole batch, with the memory of a micro-batch.
      compute_dtype: e.g. jnp.bfloat16: run the model in this precision
        (parameters and inputs cast on the way in, logits cast back to
        float32); parameters, gradients and the update stay float32.

    Returns:
      train_step(state, batch) -> (new state, metric totals of the batch).
      The totals include `metrics.NONFINITE`: the step's number (counting
      from 1) when its loss is not finite.
    """

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
        head = activations.get(state.model.output_activation)
        rng = jax.random.fold_in(state.rng, state.step)
        if privacy is not None:
            grads, logits, per_example = _private_gradient(state, batch, loss, head, rng, privacy, axis_name)
            model_state = state.model_state
        else:
            real = jnp.sum(batch["mask"].astype(jnp.float32))
            real = real if axis_name is None else jax.lax.psum(real, axis_name)
            if accumulate > 1:
                grads, logits, per_example, model_state = _accumulated_gradient(
                    state, batch, loss, head, rng, real, accumulate, compute_dtype
                )
            else:
                grads, logits, per_example, model_state = _gradient(
                    state, state.model_state, batch, loss, head, rng, real, compute_dtype
                )
            if axis_name is not None:
                grads = jax.lax.psum(grads, axis_name)
                model_state = jax.lax.pmean(model_state, axis_name)  # e.g. batch statistics: the same on every device
        totals = metrics.batch_totals(loss, logits, head(logits), batch["y"], batch["mask"], per_example)
        totals[metrics.NONFINITE] = jnp.where(
            jnp.isfinite(totals["loss_sum"]), metrics.NO_STEP, state.step + 1
        ).astype(jnp.int32)
        if axis_name is not None:
            totals = {k: (jax.lax.pmin if k == metrics.NONFINITE else jax.lax.psum)(v, axis_name) for k, v in totals.items()}
        return state.apply_gradients(grads, model_state), totals

    return train_step


def _gradient(state: TrainState, model_state: dict, batch: Batch, loss: Loss, head, rng, real, compute_dtype):
    """The gradient of the batch's loss sum over its real rows divided by `real`, and what the metrics need.

    `real` counts the real rows of the whole global batch: under a named axis
    each device holds part of it, and the devices' gradients are then summed.
    (Averaging the devices' own means would weigh rows unequally when padding
    leaves devices with different numbers of real rows.) With micro-batches,
    each is one call, and their gradients are summed likewise.
    """
    mutable = list(model_state) or False
    x = batch["x"] if compute_dtype is None else batch["x"].astype(compute_dtype)

    def objective(params):
        if compute_dtype is not None:
            params = jax.tree.map(lambda p: p.astype(compute_dtype), params)
        result = state.model.apply(
            {"params": params, **model_state}, x, train=True, logits=True, rngs={"dropout": rng}, mutable=mutable,
        )
        logits, new_model_state = result if mutable else (result, model_state)
        logits = logits.astype(jnp.float32)
        per_example = loss.per_example(logits, batch["y"], head)
        mean = jnp.sum(per_example * batch["mask"].astype(per_example.dtype)) / jnp.maximum(real, 1.0)
        return mean, (logits, per_example, new_model_state)

    # Backpropagation: the gradient of the mean loss with respect to every
    # weight and bias, in one reverse pass through the network.
    (_, (logits, per_example, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(state.params)
    return grads, logits, per_example, model_state


def _accumulated_gradient(state: TrainState, batch: Batch, loss: Loss, head, rng, real, count: int, compute_dtype):
    """`_gradient` over `count` micro-batches in a `lax.scan`, the gradients summed: the whole batch's gradient."""
    size = batch["x"].shape[0]
    if size % count:
        raise ValueError(f"a batch of {size} does not split into {count} micro-batches")
    micro = jax.tree.map(lambda a: a.reshape(count, size // count, *a.shape[1:]), batch)

    def body(carry, inputs):
        grads, model_state = carry
        index, micro_batch = inputs
        g, logits, per_example, model_state = _gradient(
            state, model_state, micro_batch, loss, head, jax.random.fold_in(rng, index), real, compute_dtype
        )
        return (jax.tree.map(jnp.add, grads, g), model_state), (logits, per_example)

    zeros = jax.tree.map(jnp.zeros_like, state.params)
    (grads, model_state), (logits, per_example) = jax.lax.scan(
        body, (zeros, state.model_state), (jnp.arange(count), micro)
    )
    return grads, logits.reshape(size, *logits.shape[2:]), per_example.reshape(size), model_state


def example_loss_fn(state: TrainState, loss: Loss) -> Callable:
    """The loss of one example: (params, x, y, rng) -> (loss, logits), for per-example gradients."""
    head = activations.get(state.model.output_activation)

    def example_loss(params, x, y, rng):
        logits = state.model.apply(
            {"params": params, **state.model_state}, x[None], train=True, logits=True, rngs={"dropout": rng}
        )
        return loss.per_example(logits, y[None], head)[0], logits[0]

    return example_loss


def _private_gradient(state: TrainState, batch: Batch, loss: Loss, head, rng, privacy, axis_name):
    grads, logits = privacy_lib.private_gradient(
        example_loss_fn(state, loss), state.params, batch, privacy=privacy, rng=rng, axis_name=axis_name
    )
    return grads, logits, loss.per_example(logits, batch["y"], head)


def per_example_grads(loss: Loss) -> Callable[[TrainState, Batch], tuple]:
    """Builds per_example_grads(state, batch) -> (gradients with a leading batch axis, per-example losses).

    Each example's gradient of its own loss, all computed in one vmapped
    program; averaged over the real rows (mask 1), they equal the batch
    gradient.
    """

    def grads_of_examples(state: TrainState, batch: Batch):
        if state.model_state:
            raise ValueError("per-example gradients need a model without mutable state (such as batch statistics)")
        rng = jax.random.fold_in(state.rng, state.step)
        grads, logits = privacy_lib.per_example_grads(example_loss_fn(state, loss), state.params, batch, rng)
        return grads, loss.per_example(logits, batch["y"], activations.get(state.model.output_activation))

    return grads_of_examples


def make_eval_step(loss: Loss, *, axis_name: str | None = None) -> Callable[[TrainState, Batch], tuple[dict, jax.Array]]:
    """Builds the pure evaluation step for `loss`.

    Returns:
      eval_step(state, batch) -> (metric totals, scores), where scores are the
      positive-class probabilities for binary tasks (for AUC) and the output
      activations otherwise.
    """

    def eval_step(state: TrainState, batch: Batch) -> tuple[dict, jax.Array]:
        head = activations.get(state.model.output_activation)
        logits = state.model.apply(state.variables(), batch["x"], train=False, logits=True)
        outputs = head(logits)
        per_example = loss.per_example(logits, batch["y"], head)
        totals = metrics.batch_totals(loss, logits, outputs, batch["y"], batch["mask"], per_example)
        if axis_name is not None:
            totals = jax.lax.psum(totals, axis_name)
        _, scores = metrics.predictions(loss, logits)
        return totals, outputs if scores is None else scores

    return eval_step


def make_predict_step() -> Callable[[TrainState, jax.Array], jax.Array]:
    """Builds predict(state, x) -> the output layer's activations (probabilities for classifiers)."""

    def predict_step(state: TrainState, x: jax.Array) -> jax.Array:
        return state.model.apply(state.variables(), x, train=False)

    return predict_step
