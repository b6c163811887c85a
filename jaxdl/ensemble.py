"""Ensembles: K models trained at once, in one compiled program, with `jax.vmap`.

An ensemble's state is an ordinary one whose every leaf has a leading
member axis of size K (`parallel.init_state` vmaps a Task's `init` over the
members' keys). Member k is the model that a single run with seed
`seed + k` would train: it starts from that seed's weights, draws that
seed's dropout masks and reads the data in that seed's order. Members may
also differ in learning rate and weight decay (`set_hyperparams`). The
vmapped steps here are pure; `jaxdl.parallel` compiles and places them
(under a mesh, the member axis is split across the devices).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import metrics
from jaxdl.errors import InputError

# Hyperparameters a member can have of its own, and the injected optax
# hyperparameter (see `optim.build(per_member=True)`) that carries each.
MEMBER_HYPERPARAMS = {"learning_rate": "step_size", "weight_decay": "weight_decay"}


def seeds(seed: int, size: int) -> np.ndarray:
    """The members' seeds: seed, seed + 1, ..., seed + size - 1."""
    return np.arange(seed, seed + size, dtype=np.int32)


def size(state) -> int:
    """The number of members of an ensemble state; 0 for a single model's state."""
    return int(state.step.shape[0]) if np.ndim(state.step) else 0


def member(state, index: int):
    """Member `index` of an ensemble, as an ordinary single-model state."""
    count = size(state)
    if not 0 <= index < count:
        raise InputError(f"member index {index!r}: expected 0 to {count - 1} for an ensemble of {count}")
    return jax.tree.map(lambda leaf: leaf[index], state)


def set_hyperparams(state, **values):
    """Gives each member its own value of hyperparameters built into its optimizer(s).

    Args:
      state: an ensemble state (any task's) whose optimizers were built with
        `optim.build(..., per_member=True)`.
      **values: "step_size" (each member's learning rate over the configured
        one; see `MEMBER_HYPERPARAMS`) and/or "weight_decay" (adamw): one value per member.
    """
    count = size(state)
    found = set()

    def replace(node):
        if not isinstance(node, optax.InjectStatefulHyperparamsState):
            return node
        hyperparams = dict(node.hyperparams)
        for name, value in values.items():
            if name in hyperparams:
                hyperparams[name] = jnp.asarray(value, hyperparams[name].dtype).reshape(count)
                found.add(name)
        return node._replace(hyperparams=hyperparams)

    state = jax.tree.map(replace, state, is_leaf=lambda node: isinstance(node, optax.InjectStatefulHyperparamsState))
    missing = set(values) - found
    if missing:
        raise ValueError(f"the optimizer has no per-member {sorted(missing)}; build it with optim.build(per_member=True)")
    return state


def summarise(figures: dict) -> dict:
    """Flattens per-member figures for a record: each name's mean, and `<name>_members` with every value."""
    out = {}
    for name, value in figures.items():
        if np.ndim(value):
            values = np.asarray(value, np.float64)
            out[name] = float(np.mean(values))
            out[f"{name}_members"] = values.tolist()
        else:
            out[name] = value
    return out


def best(record: dict, metric: str) -> int:
    """The index of the best member by `metric` (e.g. "eval_accuracy"; for losses and errors, lowest is best).

    Raises:
      InputError: when the record has no per-member values of `metric`.
    """
    values = record.get(f"{metric}_members")
    if values is None:
        known = sorted(k[: -len("_members")] for k in record if k.endswith("_members"))
        raise InputError(f"ensemble.select={metric!r}: no such per-member metric; expected one of: {', '.join(known)}")
    values = np.asarray(values, np.float64)
    lowest_is_best = metrics.lower_is_better(metric)
    values = np.where(np.isnan(values), np.inf if lowest_is_best else -np.inf, values)
    return int(np.argmin(values) if lowest_is_best else np.argmax(values))
