"""Pure train and eval steps: (state, batch) -> (state, metrics).

No jit, pmap or device code here: `parallel.py` compiles these and decides
where they run. A batch is a dict of arrays: `x` (B, ...), `y` (B, ...) and
`mask` (B,), which is 0 on rows that only pad a last partial batch.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxdl import activations, metrics
from jaxdl.losses import Loss
from jaxdl.state import TrainState

Batch = dict[str, jax.Array]


def _masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    mask = mask.astype(values.dtype)
    return jnp.sum(values * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def make_train_step(loss: Loss, *, axis_name: str | None = None) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """Builds the pure training step for `loss`.

    Args:
      loss: the loss to minimise.
      axis_name: when the step runs under a named mapped axis (pmap,
        shard_map), gradients and metric totals are summed across it.

    Returns:
      train_step(state, batch) -> (new state, metric totals of the batch).
    """

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, dict]:
        head = activations.get(state.model.output_activation)
        rng = jax.random.fold_in(state.rng, state.step)
        mutable = list(state.model_state) or False

        def objective(params):
            result = state.model.apply(
                {"params": params, **state.model_state},
                batch["x"],
                train=True,
                logits=True,
                rngs={"dropout": rng},
                mutable=mutable,
            )
            logits, model_state = result if mutable else (result, state.model_state)
            per_example = loss.per_example(logits, batch["y"], head)
            return _masked_mean(per_example, batch["mask"]), (logits, per_example, model_state)

        # Backpropagation: the gradient of the mean loss with respect to every
        # weight and bias, in one reverse pass through the network.
        (_, (logits, per_example, model_state)), grads = jax.value_and_grad(objective, has_aux=True)(
            state.params
        )
        totals = metrics.batch_totals(loss, logits, head(logits), batch["y"], batch["mask"], per_example)
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
            totals = jax.lax.psum(totals, axis_name)
        return state.apply_gradients(grads, model_state), totals

    return train_step


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
