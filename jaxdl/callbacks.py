"""Callbacks: steer training from outside the loop, as Keras users do.

A callback sees the training state and the figures at two moments: every
`every_steps` steps (`on_steps`, with the epoch's running train figures) and
after every evaluation (`on_eval`, with the epoch's record). It acts through
a `Control`: replace the state (restore the best parameters, change the
learning rate) or stop the run. Callbacks run on the host between compiled
calls; asking for `every_steps` splits a fused epoch at those steps.
"""

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from jaxdl import metrics, optim
from jaxdl.errors import InputError
from jaxdl.state import TrainState


@dataclasses.dataclass
class Control:
    """What callbacks may change: the state training continues from, and whether it stops."""

    state: TrainState
    stop: bool = False
    reason: str = ""


class Callback:
    """Override `on_steps` and/or `on_eval`; set `every_steps` > 0 to be called every that many steps.

    A callback that keeps state across evaluations (a best value, a patience
    counter, a best state) returns it from `state_dict` (JSON numbers) and
    `saved_arrays` (a pytree, or None): both go into every checkpoint and come
    back through `load_state_dict` on resume, so that a resumed run decides
    exactly as an uninterrupted one.
    """

    every_steps: int = 0
    reason: str | None = None  # why it stopped the run, once it has

    def state_dict(self) -> dict:
        """The callback's own state, as JSON-ready values."""
        return {}

    def saved_arrays(self):
        """Arrays the callback keeps (a pytree of the training state's structure), or None."""
        return None

    def load_state_dict(self, values: dict, arrays) -> None:
        """Restores what `state_dict` and `saved_arrays` returned."""

    def on_steps(self, control: Control, step: int, figures: dict) -> None:
        """Called after global step `step` when it is a multiple of `every_steps`."""

    def on_eval(self, control: Control, record: dict) -> None:
        """Called after each evaluation with the epoch's record (train_*, eval_*, epoch, step).

        A run with nothing to evaluate on calls it after every epoch, with
        the epoch's train_* figures.
        """


def _lowest_is_best(metric: str) -> bool:
    return metrics.lower_is_better(metric)


def _copy(state: TrainState) -> TrainState:
    # The loop donates the state to its next call: keep a copy with buffers of its own.
    return jax.tree.map(lambda leaf: leaf.copy() if hasattr(leaf, "copy") else leaf, state)


class _Monitor:
    """Tracks a metric's best value and how many evaluations have passed without improving on it."""

    def __init__(self, metric: str, min_delta: float):
        self.metric, self.min_delta = metric, min_delta
        self.best, self.since_best = None, 0

    def state_dict(self) -> dict:
        return {"best": self.best, "since_best": self.since_best}

    def load_state_dict(self, values: dict) -> None:
        self.best, self.since_best = values["best"], int(values["since_best"])

    def update(self, record: dict) -> bool:
        """Returns whether `record` improves on the best so far."""
        value = record.get(self.metric)
        if value is None:
            known = sorted(k for k in record if k.startswith(("eval_", "train_")) and np.ndim(record[k]) == 0)
            raise InputError(f"callback metric {self.metric!r} is not in the epoch's record; expected one of: {', '.join(known)}")
        value = float(value)
        sign = 1.0 if _lowest_is_best(self.metric) else -1.0
        improved = self.best is None or (np.isfinite(value) and sign * (self.best - value) > self.min_delta)
        if improved:
            self.best, self.since_best = value, 0
        else:
            self.since_best += 1
        return improved


class EarlyStopping(Callback):
    """Stops when `metric` has not improved for `patience` evaluations; restores the best state by default.

    Args:
      metric: e.g. "eval_loss" (lower is better; also any "...mae") or
        "eval_accuracy" (higher is better).
      patience: evaluations without improvement before stopping.
      min_delta: the least change that counts as an improvement.
      restore_best: continue (and end) with the state of the best evaluation.
    """

    def __init__(self, metric: str = "eval_loss", *, patience: int = 5, min_delta: float = 0.0, restore_best: bool = True):
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise InputError(f"early stopping patience={patience!r}: expected an integer >= 1")
        self.monitor = _Monitor(metric, min_delta)
        self.patience, self.restore_best = patience, restore_best
        self.best_state: TrainState | None = None
        self.best_epoch: int | None = None
        self.stopped_epoch: int | None = None

    def state_dict(self) -> dict:
        return {**self.monitor.state_dict(), "best_epoch": self.best_epoch, "stopped_epoch": self.stopped_epoch,
                "reason": self.reason}

    def saved_arrays(self):
        return self.best_state

    def load_state_dict(self, values: dict, arrays) -> None:
        self.monitor.load_state_dict(values)
        self.best_epoch, self.stopped_epoch, self.reason = values["best_epoch"], values["stopped_epoch"], values["reason"]
        self.best_state = arrays

    def on_eval(self, control: Control, record: dict) -> None:
        if self.monitor.update(record):
            self.best_epoch = record["epoch"]
            if self.restore_best:
                self.best_state = _copy(control.state)
            return
        if self.monitor.since_best >= self.patience:
            self.stopped_epoch = record["epoch"]
            control.stop = True
            control.reason = self.reason = (
                f"early stopping: {self.monitor.metric} has not improved on {self.monitor.best:.6g} (epoch "
                f"{self.best_epoch}) for {self.patience} evaluations"
                + ("; the state of that epoch is restored" if self.restore_best else "")
            )
            if self.restore_best and self.best_state is not None:
                control.state = self.best_state


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by `factor` when `metric` has not improved for `patience` evaluations.

    The optimizer must keep a learning-rate scale in its state
    (`optim.build(..., scalable=True)`, which `fit` and the config do when
    this callback is used). The cut multiplies that scale, so an ensemble's
    members with rates of their own each keep theirs, times the factor; the
    scale lives in the optimizer's state, so it is checkpointed with it.
    """

    def __init__(self, metric: str = "eval_loss", *, factor: float = 0.5, patience: int = 3, min_delta: float = 0.0,
                 min_scale: float = 1e-3):
        if not 0 < factor < 1:
            raise InputError(f"reduce-on-plateau factor={factor!r}: expected a number between 0 and 1")
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise InputError(f"reduce-on-plateau patience={patience!r}: expected an integer >= 1")
        self.monitor = _Monitor(metric, min_delta)
        self.factor, self.patience, self.min_scale = factor, patience, min_scale
        self.scale = 1.0
        self.reductions: list[int] = []  # the epochs where the rate was cut

    def state_dict(self) -> dict:
        return {**self.monitor.state_dict(), "scale": self.scale, "reductions": list(self.reductions)}

    def load_state_dict(self, values: dict, arrays) -> None:
        self.monitor.load_state_dict(values)
        self.scale, self.reductions = float(values["scale"]), list(values["reductions"])

    def on_eval(self, control: Control, record: dict) -> None:
        self.monitor.update(record)
        if self.monitor.since_best >= self.patience and self.scale * self.factor >= self.min_scale:
            if optim.get_scale(control.state) is None:
                raise InputError("reduce-on-plateau needs an optimizer built with optim.build(..., scalable=True)")
            self.scale *= self.factor
            control.state = optim.multiply_scale(control.state, self.factor)
            self.monitor.since_best = 0
            self.reductions.append(record["epoch"])
        record["lr_scale"] = self.scale


class Hook(Callback):
    """Calls `fn(state, step, figures)` every `every_steps` steps and/or after every evaluation.

    `figures` are the epoch's running train figures at a step, or the
    epoch's record at an evaluation. The state must not be kept beyond the
    call without copying it: the loop reuses its buffers.
    """

    def __init__(self, fn: Callable[[TrainState, int, dict], None], *, every_steps: int = 0, at_eval: bool = True):
        if not callable(fn):
            raise InputError(f"hook {fn!r}: expected a function (state, step, figures)")
        self.fn, self.every_steps, self.at_eval = fn, every_steps, at_eval

    def on_steps(self, control: Control, step: int, figures: dict) -> None:
        self.fn(control.state, step, figures)

    def on_eval(self, control: Control, record: dict) -> None:
        if self.at_eval:
            self.fn(control.state, record["step"], record)


def check_usable(callbacks, *, evaluates: bool) -> None:
    """Refuses, before training, a callback that watches eval figures in a run that evaluates nothing.

    Raises:
      InputError: naming the callback and its metric, and what to do.
    """
    for callback in callbacks:
        metric = getattr(getattr(callback, "monitor", None), "metric", None)
        if metric is None:
            continue
        if not metric.startswith(("eval_", "train_")):
            raise InputError(f"{type(callback).__name__}(metric={metric!r}): expected a figure of the epoch's record, "
                             "named eval_<figure> (such as 'eval_loss') or train_<figure> (such as 'train_loss')")
        if metric.startswith("eval_") and not evaluates:
            raise InputError(
                f"{type(callback).__name__}(metric={metric!r}) watches an evaluation figure, but this run has no "
                "validation data to evaluate: pass validation_data= or validation_split= (the command line: a test or "
                "validation split), or watch a training figure such as 'train_loss'")


def load_function(spec: str) -> Callable:
    """The function "path/to/file.py:name" or "package.module:name" names.

    Raises:
      InputError: for a spec without ":", a missing file or module, or a missing name.
    """
    import importlib
    import importlib.util
    import os

    location, sep, name = spec.rpartition(":")
    if not sep or not location or not name:
        raise InputError(f"callbacks.hook={spec!r}: expected 'path/to/file.py:function' or 'module:function'")
    if location.endswith(".py"):
        if not os.path.isfile(location):
            raise InputError(f"callbacks.hook={spec!r}: the file {location!r} does not exist")
        module_spec = importlib.util.spec_from_file_location("jaxdl_hook_" + os.path.basename(location)[:-3], location)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(location)
        except ImportError as err:
            raise InputError(f"callbacks.hook={spec!r}: cannot import {location!r} ({err})") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise InputError(f"callbacks.hook={spec!r}: {location} has no function {name!r}")
    return fn


def from_config(cfg) -> list[Callback]:
    """The callbacks a config's `callbacks` section asks for (checked; none by default)."""
    out: list[Callback] = []
    for key in ("early_stopping_patience", "reduce_lr_patience", "hook_every_steps"):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"callbacks.{key}={value!r}: expected an integer >= 0")
    if cfg.early_stopping_patience:
        out.append(EarlyStopping(
            cfg.early_stopping_metric, patience=cfg.early_stopping_patience,
            min_delta=cfg.early_stopping_min_delta, restore_best=cfg.restore_best,
        ))
    if cfg.reduce_lr_patience:
        out.append(ReduceLROnPlateau(cfg.reduce_lr_metric, factor=cfg.reduce_lr_factor, patience=cfg.reduce_lr_patience))
    if cfg.hook:
        out.append(Hook(load_function(cfg.hook), every_steps=cfg.hook_every_steps))
    elif cfg.hook_every_steps:
        raise InputError("callbacks.hook_every_steps is set but callbacks.hook is not; name the function to call")
    return out
