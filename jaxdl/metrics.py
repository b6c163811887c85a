"""Metrics: per-batch totals that add up on the device, and the figures computed from them.

A step returns *totals* (sums and counts), never averages, so that batches,
epochs and, later, devices merge by plain addition and the padded rows of a
last partial batch (mask 0) count for nothing. `compute` turns totals into
loss, accuracy and, for binary tasks, precision and recall. AUC needs every
score, so `roc_auc` works on the scores that evaluation collects.
"""

import jax
import jax.numpy as jnp
import numpy as np

from jaxdl.losses import Loss

TOTALS = {
    "binary": ("loss_sum", "count", "correct", "true_pos", "false_pos", "false_neg"),
    "multiclass": ("loss_sum", "count", "correct"),
    "regression": ("loss_sum", "count", "abs_error_sum"),
}


def is_binary(loss: Loss, num_outputs: int) -> bool:
    """Binary metrics apply to a sigmoid unit and to a softmax over exactly two classes."""
    return loss.kind == "binary" or (loss.kind == "multiclass" and num_outputs == 2)


def metric_kind(loss: Loss, num_outputs: int) -> str:
    """Which set of totals a loss and output layer produce."""
    return "binary" if is_binary(loss, num_outputs) else loss.kind


# A train step's totals also carry the first step (counting from 1) whose loss was not
# finite, or NO_STEP; merged by minimum, not by sum.
NONFINITE = "nonfinite_step"
NO_STEP = 2**31 - 1


def zeros(kind: str, shape: tuple[int, ...] = (), *, training: bool = False) -> dict[str, np.ndarray]:
    """Empty totals of a metric kind, as host arrays: scalars, or `shape` (K,) for an ensemble of K.

    `training`: the totals a train step returns, with `NONFINITE`.

    Host numpy zeros, not jnp.zeros: passing them to a compiled step costs a
    copy, where creating device zeros would run op-by-op computations.
    """
    totals = {name: np.zeros(shape, np.float32) for name in TOTALS[kind]}
    if training:
        totals[NONFINITE] = np.full(shape, NO_STEP, np.int32)
    return totals


def merge(a: dict, b: dict) -> dict:
    """Adds two sets of totals (the first non-finite step: the earlier of the two)."""
    return {k: (jnp.minimum if k == NONFINITE else jnp.add)(a[k], b[k]) for k in a}


def first_nonfinite_step(totals: dict) -> int | None:
    """The first step whose loss was not finite, from totals fetched to the host; None if there was none."""
    if NONFINITE not in totals:
        return None
    step = int(np.min(totals[NONFINITE]))
    return None if step >= NO_STEP - 1 else step


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
        totals["abs_error_sum"] = jnp.sum(err.reshape(err.shape[0], -1).mean(axis=-1) * mask)
        return totals
    pred, _ = predictions(loss, logits)
    if labels.ndim == logits.ndim:  # one-hot label rows
        labels = jnp.argmax(labels, axis=-1)
    labels = labels.astype(jnp.int32)

    def count(condition):
        return jnp.sum(jnp.where(condition, mask, 0.0))

    totals["correct"] = count(pred == labels)
    if is_binary(loss, logits.shape[-1]):
        totals["true_pos"] = count((pred == 1) & (labels == 1))
        totals["false_pos"] = count((pred == 1) & (labels == 0))
        totals["false_neg"] = count((pred == 0) & (labels == 1))
    return totals


def compute(totals: dict) -> dict:
    """Figures from totals fetched to the host: loss, accuracy, precision, recall, mae.

    Precision (recall) is 0 when nothing was predicted (is) positive, as in
    scikit-learn's `zero_division=0`. Scalar totals give floats; an
    ensemble's totals (one per member) give one figure per member, as arrays.
    """
    t = {k: np.asarray(v, np.float64) for k, v in totals.items() if k != NONFINITE}
    count = np.maximum(t["count"], 1.0)
    out = {"loss": t["loss_sum"] / count}
    if "correct" in t:
        out["accuracy"] = t["correct"] / count
    if "true_pos" in t:
        predicted_pos = t["true_pos"] + t["false_pos"]
        actual_pos = t["true_pos"] + t["false_neg"]
        out["precision"] = _ratio(t["true_pos"], predicted_pos)
        out["recall"] = _ratio(t["true_pos"], actual_pos)
    if "abs_error_sum" in t:
        out["mae"] = t["abs_error_sum"] / count
    return {k: float(v) if np.ndim(v) == 0 else v for k, v in out.items()}


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
