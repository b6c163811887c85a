"""The Task protocol: what every kind of training gives the trainer, and the checks made on it before compiling.

A Task is five pure pieces and two host-side ones:

    init(rng) -> state                             pure; `jax.eval_shape`-able
    train_step(state, batch) -> (state, totals)    pure; no jit, pmap or device code
    eval_step(state, batch) -> totals              pure
    figures(totals) -> {name: value}               host: totals -> reported figures
    report(state, step, writer) -> {name: value}   host: pictures, text, extra figures
    export(state) -> params                        what the digest, best member and inference use
    describe() -> str                              one or more lines printed before training

A state is any pytree with a `step` attribute (the number of updates
applied): `jaxdl.TrainState`, or a `flax.struct` of your own. A batch is a
dict of arrays with the examples along the first axis, plus `mask` (1 for a
real example, 0 for a row that only pads the last batch of an epoch). Totals
are a flat dict of arrays that add up over batches: sums and a `count`, so
that `figures` can divide (see `jaxdl.metrics`). Whatever a step sums over
the batch it passes through `jaxdl.parallel.psum`, which sums over the
devices under `pmap` and is the identity everywhere else.

The trainer never looks inside a state or a batch: the same Task trains on one
device, under pmap or a mesh (with FSDP), as a vmapped ensemble, fused with
`lax.scan`, checkpointed and resumed exactly.
"""

import weakref
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jaxdl import compile_time, metrics
from jaxdl.errors import InputError

State = Any
Batch = dict[str, Any]


class Task:
    """Subclass this for your own kind of training; override the methods that have no default.

    `init`, `train_step` and `eval_step` must be pure functions of their
    arguments (randomness from `jax.random.fold_in(state.rng, state.step)` or
    the like, never from Python state), so that they can be traced once and
    compiled, vmapped and sharded.
    """

    name = "task"

    def init(self, rng: jax.Array) -> State:
        """The initial state from a PRNG key."""
        raise NotImplementedError(f"{type(self).__name__}.init")

    def train_step(self, state: State, batch: Batch) -> tuple[State, dict]:
        """One update: the new state and the batch's totals (sums and a `count`)."""
        raise NotImplementedError(f"{type(self).__name__}.train_step")

    def eval_step(self, state: State, batch: Batch) -> dict:
        """The batch's totals on held-out data (no update)."""
        raise NotImplementedError(f"{type(self).__name__}.eval_step")

    def figures(self, totals: dict) -> dict:
        """Reported figures from totals fetched to the host: by default every `<name>_sum` / `count`."""
        return metrics.means(totals)

    def report(self, state: State, step: int, writer) -> dict:
        """Called on the host after each evaluation with one model's state: draw or print, return extra figures.

        `writer` is a `jaxdl.writers.ReportWriter`: `writer.path(name)` is a
        file in the run's workdir (None without one), `writer.text(...)`
        prints and logs text.
        """
        del state, step, writer
        return {}

    def export(self, state: State):
        """The parameters a run's digest and its best-member file hold (default: `state.params`)."""
        return state.params

    def describe(self) -> str:
        """What is trained, printed before training."""
        return type(self).__name__


def step_of(state: State):
    """The state's update counter (`state.step`), or an InputError saying that a state needs one."""
    try:
        return state.step
    except AttributeError:
        raise InputError(
            f"the task's state ({type(state).__name__}) has no `step` attribute; expected a pytree with `step`, "
            "the number of updates applied (jaxdl.TrainState, or a flax.struct of your own)"
        ) from None


_ABSTRACT_STATES = weakref.WeakKeyDictionary()  # task -> its abstract state: traced once per task, not per check


def abstract_state(task: Task) -> State:
    """The task's initial state as shapes and dtypes (`jax.eval_shape`: nothing is computed or compiled)."""
    try:
        return _ABSTRACT_STATES[task]
    except (KeyError, TypeError):  # TypeError: a task that cannot be weakly referenced or hashed is traced each time
        pass
    with compile_time.checking():
        state = jax.eval_shape(lambda: task.init(jax.random.PRNGKey(0)))
    try:
        _ABSTRACT_STATES[task] = state
    except TypeError:
        pass
    return state


def _shapes(tree) -> dict[str, tuple]:
    return {
        jax.tree_util.keystr(path): (tuple(np.shape(leaf)), str(getattr(leaf, "dtype", type(leaf).__name__)))
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    }


def check(task: Task, batch: Batch, *, eval_batch: Batch | None = None, argument: str = "task") -> tuple[State, dict]:
    """Traces a task's init and steps abstractly (`jax.eval_shape`: nothing is computed or compiled) and checks them.

    Args:
      task: the task.
      batch: a training batch, or its `jax.ShapeDtypeStruct`s.
      eval_batch: an evaluation batch (default: `batch`).

    Returns:
      (abstract state, abstract training totals).

    Raises:
      InputError: when the state has no `step`, when `train_step` returns a
        state of another structure, shape or dtype than it was given, or
        totals that are not a flat dict of arrays; when a step fails to trace
        (the error is named with the step).
    """
    with compile_time.checking():
        return _check(task, batch, eval_batch=eval_batch, argument=argument)


def _check(task: Task, batch: Batch, *, eval_batch: Batch | None = None, argument: str = "task") -> tuple[State, dict]:
    name = type(task).__name__
    try:
        state = abstract_state(task)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 -- the user's code; name where it failed
        raise InputError(f"{argument}: {name}.init(rng) fails: {type(err).__name__}: {err}") from err
    step_of(state)
    try:
        new_state, totals = jax.eval_shape(task.train_step, state, batch)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001
        raise InputError(f"{argument}: {name}.train_step(state, batch) fails on a batch of "
                         f"{_batch_text(batch)}: {type(err).__name__}: {err}") from err
    before, after = _shapes(state), _shapes(new_state)
    if jax.tree.structure(state) != jax.tree.structure(new_state) or before != after:
        differ = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
        where = differ[0] if differ else "its tree structure"
        raise InputError(
            f"{argument}: {name}.train_step returns a state that differs from the one it was given at {where}: "
            f"given {before.get(where, 'absent')}, returned {after.get(where, 'absent')}; a step must return a "
            "state of the same structure, shapes and dtypes (e.g. state.replace(...) or state.apply_gradients(...))"
        )
    _check_totals(totals, f"{name}.train_step", argument)
    try:
        eval_totals = jax.eval_shape(task.eval_step, state, batch if eval_batch is None else eval_batch)
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001
        raise InputError(f"{argument}: {name}.eval_step(state, batch) fails: {type(err).__name__}: {err}") from err
    _check_totals({k: v for k, v in eval_totals.items() if k != metrics.COLLECTED}, f"{name}.eval_step", argument)
    return state, totals


def _batch_text(batch: Batch) -> str:
    return ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in batch.items())


def _check_totals(totals, where: str, argument: str) -> None:
    if not isinstance(totals, dict) or not all(isinstance(k, str) for k in totals):
        raise InputError(f"{argument}: {where} returns totals of type {type(totals).__name__}; expected a dict "
                         "of named sums, such as {'loss_sum': ..., 'count': ...}")
    for key, value in totals.items():
        if not hasattr(value, "shape") or np.shape(value) != ():
            raise InputError(f"{argument}: {where} returns total {key!r} of shape {np.shape(value)}; expected a scalar "
                             "sum over the batch (add per-example values up with jnp.sum)")


def checked_train_step(task: Task) -> Callable:
    """The task's train step with `metrics.NONFINITE` added to its totals (the first step whose figures are nan/inf)."""

    def train_step(state, batch):
        new_state, totals = task.train_step(state, batch)
        return new_state, metrics.with_nonfinite(totals, step_of(state))

    return train_step
