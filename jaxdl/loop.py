"""The training loop, the only one: epochs of compiled steps, evaluation, callbacks, checkpoints.

It trains any `jaxdl.task.Task`. The loop moves batches and numbers around;
the arithmetic happens in the task's steps, compiled by `jaxdl.parallel`
and fed by `jaxdl.feed`. Metric totals stay on the device during an epoch
and are fetched once at its end (or at a callback's or checkpoint's step).
"""

import time
from collections.abc import Callable, Sequence

import jax
import numpy as np

from jaxdl import ensemble, metrics, parallel
from jaxdl.callbacks import Callback, Control
from jaxdl.checkpoint import Position, Schedule
from jaxdl.data import batching
from jaxdl.errors import InputError, NonFiniteError
from jaxdl.task import Task
from jaxdl.writers import Progress


class History:
    """A run's per-epoch figures, as Keras's `History`: `history.history["eval_loss"]` lists one value per epoch.

    - `history.history`: a dict of lists, one entry per epoch (None where
      an epoch has no such figure, e.g. eval figures between evaluations);
      `history["eval_loss"]` is the same list, and `"eval_loss" in history`
      asks whether the run has that figure. A missing name raises KeyError
      listing the names there are.
    - `for record in history`, `history[-1]`, `history.last`: the epochs'
      records (dicts), oldest first. `len(history)`: the number of epochs.
    - `history.stopped_at`: the global step where a stop request (SIGTERM)
      ended training early; `history.stop_reason`: why a callback (early
      stopping) ended it before its last epoch.

    A run resumed from its workdir holds every epoch of the run, the ones
    before the resume included.
    """

    def __init__(self, records=(), *, stopped_at: int | None = None, stop_reason: str | None = None):
        self.records: list[dict] = list(records)
        self.stopped_at = stopped_at
        self.stop_reason = stop_reason

    def keys(self) -> list[str]:
        """The figures' names, in the order they first appear."""
        return list(dict.fromkeys(key for record in self.records for key in record))

    @property
    def history(self) -> dict[str, list]:
        """Every figure's values, one per epoch: Keras's `History.history`."""
        return {key: [record.get(key) for record in self.records] for key in self.keys()}

    @property
    def epoch(self) -> list[int]:
        """The epochs' numbers (from 1), as Keras's `History.epoch` (which counts from 0)."""
        return [record["epoch"] for record in self.records]

    @property
    def last(self) -> dict:
        """The final epoch's record."""
        if not self.records:
            raise IndexError("the history is empty: no epoch was trained in this call (a finished run's workdir, rerun?)")
        return self.records[-1]

    def __getitem__(self, key):
        if isinstance(key, (int, slice)):
            return self.records[key]
        if key not in self:
            raise KeyError(f"{key!r} is not a figure of this run; it has: {', '.join(self.keys()) or 'none (no epochs)'}")
        return [record.get(key) for record in self.records]

    def __contains__(self, key) -> bool:
        return any(key in record for record in self.records)

    def __iter__(self):
        return iter(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        if not self.records:
            return "History(no epochs)"
        last = self.records[-1]
        shown = ", ".join(f"{k}={v:.4g}" for k, v in last.items()
                          if k.startswith(("train_", "eval_")) and k != "train_seconds" and isinstance(v, (int, float)))
        ended = ""
        if self.stopped_at is not None:
            ended = f", stopped at step {self.stopped_at}"
        elif self.stop_reason:
            ended = ", stopped early"
        return f"History({len(self.records)} epochs{ended}; last: {shown})"


class Evaluator:
    """Evaluates a state on a dataset with a task's eval step, compiled once and reused across calls.

    An ensemble's members are evaluated together (the eval step vmapped over
    them), each figure coming back once per member.
    """

    def __init__(self, task: Task, *, batch_size: int = 1024, transform: Callable | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"eval batch_size={batch_size!r}: expected a positive integer")
        self._task = task
        self._batch_size = batch_size
        self._transform = transform
        self._compiled = {}
        self._zeros = {}  # empty totals by the shapes of (state, batch): traced once, not at every evaluation

    def _eval_step(self, members: bool) -> tuple[Callable, Callable]:
        if members not in self._compiled:
            eval_step = jax.vmap(self._task.eval_step, in_axes=(0, None)) if members else self._task.eval_step
            self._compiled[members] = (eval_step, parallel.compile_eval_step(eval_step))
        return self._compiled[members]

    def __call__(self, state, data) -> dict:
        """The task's figures on `data`: floats for one model, arrays of one value per member for an ensemble."""
        state = parallel.local(state)  # a multi-host run's state: every process evaluates its own copy
        members = ensemble.size(state)
        eval_step, compiled = self._eval_step(bool(members))
        totals, collected = None, []
        for batch in batching.eval_batches(data, self._batch_size, transform=self._transform):
            if totals is None:
                key = str(jax.tree.map(lambda a: (a.shape, str(a.dtype)), (state, batch)))
                if key not in self._zeros:
                    with parallel.checking():
                        spec = dict(jax.eval_shape(eval_step, state, batch))
                    spec.pop(metrics.COLLECTED, None)
                    self._zeros[key] = metrics.zeros_like(spec)
                totals = self._zeros[key]
            totals, batch_collected = compiled(state, totals, batch)
            collected.append(batch_collected)
        totals, collected = parallel.fetch((totals, collected))
        totals = dict(totals)
        if collected and collected[0]:
            axis = 1 if members else 0  # the examples' axis
            totals[metrics.COLLECTED] = {k: np.concatenate([c[k] for c in collected], axis=axis) for k in collected[0]}
        return self._task.figures(totals)


def zero_totals(train_step: Callable, state, batch) -> dict:
    """Empty totals of `train_step` (host arrays): scalars for one model, one per member for an ensemble.

    `batch` may be abstract (`jax.ShapeDtypeStruct`s); nothing is computed.
    """
    return metrics.zeros_like(jax.eval_shape(train_step, state, batch)[1])


class NonFiniteLoss(NonFiniteError):
    """The training loss became nan or inf; the run stopped without saving those parameters."""


def _check_finite(totals: dict, epoch: int) -> None:
    step = metrics.first_nonfinite_step(totals)
    if step is None:
        return
    member = ""
    if np.ndim(totals[metrics.NONFINITE]):
        member = f" in ensemble member {int(np.argmin(totals[metrics.NONFINITE]))}"
    raise NonFiniteLoss(
        f"the training loss became non-finite (nan or inf) at step {step} (epoch {epoch}){member}; training stopped, "
        "and no checkpoint of these parameters was written. Try a lower learning rate, gradient clipping "
        "(optimizer.grad_clip_norm), or check the inputs for nan/inf"
    )


def _next_stop(epoch: int, step: int, steps_per_epoch: int, every: list[int]) -> int:
    """The step of the epoch at which the next of several every-N-steps events falls (else its end)."""
    done = (epoch - 1) * steps_per_epoch + step
    stops = [((done // n + 1) * n) - (epoch - 1) * steps_per_epoch for n in every if n]
    return min([steps_per_epoch, *stops])


def train(
    state,
    feed,
    *,
    zeros: dict,
    epochs: int,
    eval_data=None,
    eval_every_epochs: int = 1,
    evaluator: Evaluator | None = None,
    report: Callable | None = None,
    progress: Progress | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    start: Position | None = None,
    start_totals: dict | None = None,
    checkpoints: Schedule | None = None,
    callbacks: Sequence[Callback] = (),
    stop_on_nan: bool = True,
) -> tuple[object, History]:
    """Trains for `epochs` passes over the data that `feed` serves.

    Args:
      state: the initial state; it is donated to the first step, so use the
        returned state from then on.
      feed: a `feed.HostFeed` or `feed.ResidentFeed` (see `feed.make`).
      zeros: empty metric totals of the feed's step (`zero_totals`).
      epochs: passes over the data.
      eval_data: evaluated every `eval_every_epochs` epochs and after the
        last, by `evaluator`.
      evaluator: the task's `Evaluator`.
      report: (state, step) -> extra figures, called after each evaluation
        (the task's pictures, text and figures that are not batch sums).
      progress: the console display, if any.
      on_epoch: called with each epoch's record.
      start: where a resumed run continues (default: the first step).
      start_totals: the metric totals of the epoch `start` is in, so far.
      checkpoints: when to save and whether to stop (`checkpoint.Schedule`).
      callbacks: `jaxdl.callbacks` objects, called every N steps and after
        every evaluation (after every epoch when there is no `eval_data`);
        they may stop the run or change its state.
      stop_on_nan: raise `NonFiniteLoss` (naming the step) as soon as the
        loss is seen to be nan or inf: at the end of each epoch, and before
        any checkpoint, so that none holds non-finite parameters.

    Returns:
      The final state and the per-epoch history (of the epochs run here).
      `history.stopped_at` is set when a stop request ended training early;
      `history.stop_reason` says why a callback stopped it.
    """
    if eval_data is not None and evaluator is None:
        raise ValueError("eval_data without an evaluator")
    history = History()
    steps_per_epoch = feed.steps_per_epoch
    start = start or Position()
    every = [c.every_steps for c in callbacks if c.every_steps]
    for epoch in range(start.epoch, epochs + 1):
        begin, compiled_before = time.perf_counter(), parallel.compile_seconds()
        step, totals = 0, zeros
        if epoch == start.epoch and start.step:
            step, totals = start.step, start_totals
        while step < steps_per_epoch:
            stop = _next_stop(epoch, step, steps_per_epoch, every + ([checkpoints.every_steps] if checkpoints else []))
            interrupt = checkpoints.pause_requested if checkpoints else None
            state, totals, step = feed.run_steps(state, totals, epoch, step, stop, interrupt=interrupt)
            if step == steps_per_epoch:
                break
            done = (epoch - 1) * steps_per_epoch + step
            due = [c for c in callbacks if c.every_steps and done % c.every_steps == 0]
            if due or checkpoints is not None:
                fetched = parallel.fetch_totals(totals)  # waits: only at these boundaries
                if stop_on_nan:
                    _check_finite(fetched, epoch)
                control = Control(state)
                for callback in due:
                    callback.on_steps(control, done, ensemble.summarise(metrics.means(fetched)))
                state = control.state
                if checkpoints is not None and checkpoints.at_boundary(state, totals, Position(epoch, step)):
                    history.stopped_at = done
                    return state, history
        fetched = parallel.fetch_totals(totals)  # waits for the epoch
        if stop_on_nan:
            _check_finite(fetched, epoch)
        train_metrics = ensemble.summarise(metrics.means(fetched))
        seconds = time.perf_counter() - begin
        compiling = parallel.compile_seconds() - compiled_before
        record = {
            "epoch": epoch,
            "step": epoch * steps_per_epoch,
            **{f"train_{k}": v for k, v in train_metrics.items()},
            "epoch_seconds": seconds,
            "compile_seconds": compiling,
            "train_seconds": max(seconds - compiling, 0.0),  # training time excluding compiles
            "steps_per_second": steps_per_epoch / max(seconds - compiling, 1e-9),
        }
        control = Control(state)
        evaluated = eval_data is not None and (epoch % eval_every_epochs == 0 or epoch == epochs)
        if evaluated:
            record.update({f"eval_{k}": v for k, v in ensemble.summarise(evaluator(state, eval_data)).items()})
            if report is not None:
                record.update({f"eval_{k}": v for k, v in (report(state, epoch * steps_per_epoch) or {}).items()})
        if evaluated or eval_data is None:  # with nothing to evaluate on, the callbacks see every epoch's train figures
            for callback in callbacks:
                callback.on_eval(control, record)
        history.records.append(record)
        if progress is not None:
            progress.epoch(record)
            if control.stop:
                progress.message(control.reason)
        if on_epoch is not None:
            on_epoch(record)
        last = epoch == epochs or control.stop
        # The callbacks' changes (a cut learning rate, the best state restored) take effect before
        # the save: the checkpoint holds the state training continues from, with the callbacks' own.
        state = control.state
        if control.stop:
            history.stop_reason = control.reason
        if checkpoints is not None:
            at_end = Position(epochs + 1, 0) if control.stop else Position(epoch + 1, 0)
            if checkpoints.at_boundary(state, zeros, at_end, record=record, last=last):
                if epoch < epochs and not control.stop:
                    history.stopped_at = epoch * steps_per_epoch
                    return state, history
        if control.stop:
            history.stop_reason = control.reason
            break
    return state, history


def predict(state, x: np.ndarray, *, predict_step: Callable, batch_size: int = 1024) -> np.ndarray:
    """`predict_step(state, x)` over `x` in padded batches (one compile).

    For an ensemble: every member's outputs, (members, examples, outputs).
    """
    state = parallel.local(state)
    members = ensemble.size(state)
    compiled = parallel.compile_predict_step(jax.vmap(predict_step, in_axes=(0, None)) if members else predict_step)
    batch_size = min(batch_size, len(x))
    outputs = []
    for start in range(0, len(x), batch_size):
        chunk = x[start : start + batch_size]
        padded = np.concatenate([chunk, np.repeat(chunk[:1], batch_size - len(chunk), axis=0)])
        outputs.append(parallel.fetch(compiled(state, padded))[..., : len(chunk), :])
    return np.concatenate(outputs, axis=-2)
