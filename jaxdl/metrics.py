"""Metrics: per-batch totals that add up on the device, and the figures computed from them.

A step returns *totals*, a flat dict of sums and counts, never averages, so
that batches, fused steps, epochs, devices and ensemble members merge by one
rule (`merge`: addition, and the minimum for the first non-finite step), and
the padded rows of a last partial batch (mask 0) count for nothing. `means`
turns every `<name>_sum` into `<name>` = sum / count, for any task; `compute`
adds precision and recall for classifiers. AUC needs every score, so an eval
step can return per-example arrays under `COLLECTED`, which evaluation
concatenates, and `roc_auc` works on those.

(`clu.metrics` offers the same idea as classes; a flat dict of sums keeps the
merge one line, the same inside `lax.scan`, pmap and vmap, and JSON-ready.)
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.losses import Loss
from jaxdl.parallel import collectives

# A train step's totals also carry the first step (counting from 1) whose figures were not
# finite, or NO_STEP; merged by minimum, not by sum. The trainer adds it (`with_nonfinite`).
NONFINITE = "nonfinite_step"
NO_STEP = 2**31 - 1
# An eval step may return per-example arrays under this key (scores and labels for
# AUC, say): they are concatenated over the batches, not summed.
COLLECTED = "collected"


# Figures whose names end so are errors (lower is better); any other figure is a score.
LOWER_IS_BETTER = ("loss", "mae", "mse", "error", "distance", "bits_per_char", "bits_per_byte", "perplexity")


def lower_is_better(name: str) -> bool:
    """Whether a figure named `name` ("eval_loss", "eval_frechet_distance", ...) improves by going down."""
    return name.endswith(LOWER_IS_BETTER)


def merge(a: dict, b: dict) -> dict:
    """Adds two sets of totals (the first non-finite step: the earlier of the two)."""
    return {k: (jnp.minimum if k == NONFINITE else jnp.add)(a[k], b[k]) for k in a}


def reduce_over_devices(totals: dict) -> dict:
    """Inside a step under pmap: one device's totals of its slice become the whole batch's (sums; min for NONFINITE)."""
    axis = collectives.batch_axis()
    if axis is None:
        return totals
    return {k: (jax.lax.pmin if k == NONFINITE else jax.lax.psum)(v, axis) for k, v in totals.items()}


def with_nonfinite(totals: dict, step: jax.Array) -> dict:
    """Adds `NONFINITE` to a train step's totals: `step + 1` when any floating-point figure is nan or inf."""
    floats = [jnp.all(jnp.isfinite(v)) for v in totals.values() if jnp.issubdtype(jnp.result_type(v), jnp.inexact)]
    finite = jnp.all(jnp.stack(floats)) if floats else jnp.asarray(True)
    return {**totals, NONFINITE: jnp.where(finite, NO_STEP, jnp.asarray(step) + 1).astype(jnp.int32)}


def zeros_like(spec: dict) -> dict[str, np.ndarray]:
    """Empty totals shaped like `spec` (e.g. `jax.eval_shape` of a step's totals), as host arrays.

    Host numpy zeros, not jnp.zeros: passing them to a compiled step costs a
    copy, where creating device zeros would run op-by-op computations.
    """
    return {
        k: np.full(v.shape, NO_STEP, np.int32) if k == NONFINITE else np.zeros(v.shape, v.dtype)
        for k, v in spec.items()
    }


def first_nonfinite_step(totals: dict) -> int | None:
    """The first step whose loss was not finite, from totals fetched to the host; None if there was none."""
    if NONFINITE not in totals:
        return None
    step = int(np.min(totals[NONFINITE]))
    return None if step >= NO_STEP - 1 else step


def means(totals: dict) -> dict:
    """The figures of totals fetched to the host: every `<name>_sum` divided by `count` becomes `<name>`.

    Scalar totals give floats; an ensemble's (one per member) give arrays.
    Totals without a `count` are reported as they are (sums).
    """
    t = {k: np.asarray(v, np.float64) for k, v in totals.items() if k not in (NONFINITE, COLLECTED)}
    count = np.maximum(t["count"], 1.0) if "count" in t else None
    out = {}
    for key, value in t.items():
        if key == "count":
            continue
        if key.endswith("_sum") and count is not None:
            out[key[: -len("_sum")]] = value / count
        else:
            out[key] = value
    return {k: float(v) if np.ndim(v) == 0 else v for k, v in out.items()}


def is_binary(loss: Loss, num_outputs: int) -> bool:
    """Binary metrics apply to a sigmoid unit and to a softmax over exactly two classes."""
    return loss.kind == "binary" or (loss.kind == "multiclass" and num_outputs == 2)


def predictions(loss: Loss, logits: jax.Array) -> tuple[jax.Array, jax.Array | None]:
    """Predicted class per example, and the positive-class score for binary tasks.

    Returns:
      (predicted labels, scores) where scores is P(class 1) for binary tasks
      and None otherwise.
    """
    if loss.kind == "binary":
        z = logits[..., 0]
        return (z > 0).astype(jnp.int32), jax.nn.sigmoid(z)
    if loss.kind == "multiclass":
        pred = jnp.argmax(logits, axis=-1)
        scores = jax.nn.softmax(logits, axis=-1)[..., 1] if logits.shape[-1] == 2 else None
        return pred, scores
    return None, None


def batch_totals(
    loss: Loss, logits: jax.Array, outputs: jax.Array, labels: jax.Array, mask: jax.Array, per_example_loss: jax.Array
) -> dict[str, jax.Array]:
    """Totals of one batch; rows with mask 0 (padding) contribute nothing.

    Args:
      loss: the loss being trained, which fixes the task.
      logits: the output layer's pre-activations, (B, units).
      outputs: the output layer's activations, (B, units).
      labels: (B,) class labels, or regression targets.
      mask: (B,) 1 for real examples, 0 for padding.
      per_example_loss: (B,) loss of each example.
    """
    mask = mask.astype(jnp.float32)
    totals = {"loss_sum": jnp.sum(per_example_loss * mask), "count": jnp.sum(mask)}
    if loss.kind == "regression":
        err = jnp.abs(outputs - labels.reshape(outputs.shape).astype(outputs.dtype))
        totals["mae_sum"] = jnp.sum(err.reshape(err.shape[0], -1).mean(axis=-1) * mask)
        return totals
    if loss.kind == "custom":  # a user's loss: nothing more is known of what the outputs mean
        return totals
    pred, _ = predictions(loss, logits)
    if labels.ndim == logits.ndim:  # one-hot label rows
        labels = jnp.argmax(labels, axis=-1)
    labels = labels.astype(jnp.int32)

    def count(condition):
        return jnp.sum(jnp.where(condition, mask, 0.0))

    totals["accuracy_sum"] = count(pred == labels)
    if is_binary(loss, logits.shape[-1]):
        totals["true_pos"] = count((pred == 1) & (labels == 1))
        totals["false_pos"] = count((pred == 1) & (labels == 0))
        totals["false_neg"] = count((pred == 0) & (labels == 1))
    return totals


def compute(totals: dict) -> dict:
    """Figures from a classifier's or regressor's totals fetched to the host: loss, accuracy, precision, recall, mae.

    Precision (recall) is 0 when nothing was predicted (is) positive, as in
    scikit-learn's `zero_division=0`. Scalar totals give floats; an
    ensemble's totals (one per member) give one figure per member, as arrays.
    """
    out = means({k: v for k, v in totals.items() if k not in ("true_pos", "false_pos", "false_neg")})
    if "true_pos" in totals:
        t = {k: np.asarray(totals[k], np.float64) for k in ("true_pos", "false_pos", "false_neg")}
        precision = _ratio(t["true_pos"], t["true_pos"] + t["false_pos"])
        recall = _ratio(t["true_pos"], t["true_pos"] + t["false_neg"])
        out.update({k: float(v) if np.ndim(v) == 0 else v for k, v in (("precision", precision), ("recall", recall))})
    return out


def _ratio(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    return np.divide(part, whole, out=np.zeros_like(part), where=whole > 0)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Exact area under the ROC curve (the Mann-Whitney statistic, ties count half).

    Returns NaN when the labels hold only one class, where AUC is undefined.
    """
    scores = np.asarray(scores, np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Average 1-based rank of each score, ties sharing the mean of their ranks.
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse]
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
