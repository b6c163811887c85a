"""Checkpoints through orbax-checkpoint: save, keep, verify, restore, and stop cleanly on SIGTERM.

A checkpoint at global step S holds:

- `state`: the whole `TrainState` (step, params, opt_state, rng,
  model_state) and the metric totals of the epoch so far, as arrays
  (`ocp.args.StandardSave`: tensorstore files, no pickle);
- `meta`: JSON (`ocp.args.JsonSave`): the position in the data (epoch and
  step within it: the data pipeline's iterator state), the resolved config,
  the manifest (versions, devices, seed) and a fingerprint of every saved
  array, checked when it is restored.

orbax writes each checkpoint to a temporary directory and renames it when
complete, so a save that is cut off is never restored. A checkpoint whose
files are damaged (truncated, changed) fails to restore or fails its
fingerprint; `restore_latest` then warns and falls back to the previous one.
Restoring into a model of another structure fails with the first differing
key path and both shapes.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence

import flax.serialization
import jax
import numpy as np

from jaxdl import metrics as metrics_lib, parallel
from jaxdl.callbacks import Callback
from jaxdl.errors import InputError, NonFiniteError
from jaxdl.state import TrainState
from jaxdl.writers import named_os_errors

def _orbax():
    """orbax.checkpoint, imported on first use: importing jaxdl does not pay for it (0.1 s)."""
    import orbax.checkpoint as ocp

    return ocp


DIRECTORY = "checkpoints"
DAMAGED = "damaged-checkpoints"


class StructureMismatch(InputError):
    """The checkpoint holds a model or optimizer of another structure than the one it is restored into."""


class DamagedCheckpoint(Exception):
    """A checkpoint's files could not be read back, or do not match their fingerprint."""


@dataclasses.dataclass(frozen=True)
class Position:
    """Where training stands: the next step to run is `step` (from 0) of `epoch` (from 1)."""

    epoch: int = 1
    step: int = 0

    def to_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step}


def state_tree(state) -> dict:
    """The arrays of any task's state as a plain nested dict (static fields such as the optimizer are not saved).

    Empty nodes (None, empty dicts) are left out: they hold nothing to save.
    """
    return _prune(flax.serialization.to_state_dict(state))


def _prune(tree):
    if isinstance(tree, dict):
        kept = {k: _prune(v) for k, v in tree.items()}
        return {k: v for k, v in kept.items() if v is not None and not (isinstance(v, dict) and not v)}
    return tree


def from_tree(state, tree: dict):
    """`state` with the arrays of a restored `state_tree` put back (the pruned empty nodes kept as they were)."""
    full = flax.serialization.to_state_dict(state)

    def fill(target, source):
        if isinstance(target, dict):
            return {k: fill(v, source[k]) if k in source else v for k, v in target.items()}
        return source

    return flax.serialization.from_state_dict(state, fill(full, tree))


def _path_name(path) -> str:
    parts = []
    for key in path:
        for attribute in ("key", "name", "idx"):
            if hasattr(key, attribute):
                parts.append(str(getattr(key, attribute)))
                break
    return "/".join(parts)


def shapes(tree) -> dict[str, tuple]:
    """Each array's shape by its key path ("params/hidden_0/kernel"), for `check_structure`."""
    return {_path_name(path): tuple(np.shape(leaf)) for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def check_structure(saved: dict[str, tuple], target: dict[str, tuple]) -> None:
    """Fails on the first key path whose presence or shape differs between a checkpoint and a target.

    Raises:
      StructureMismatch: naming the path and both shapes.
    """
    for name in sorted(set(saved) | set(target)):
        have, want = saved.get(name), target.get(name)
        if have != want:
            have_text = "absent" if have is None else f"shape {have}"
            want_text = "absent" if want is None else f"shape {want}"
            raise StructureMismatch(
                f"the checkpoint does not fit this model: at {name!r} the checkpoint has {have_text}, "
                f"the model has {want_text}. Restore it with the config it was saved with, or start over "
                "(--overwrite)"
            )


def check_links(workdir: str) -> None:
    """Refuses symbolic links where checkpoints are read, moved or deleted: `checkpoints/`, its entries, `damaged-checkpoints`.

    A linked step directory would be restored from wherever it points, and
    cleaning it up would delete through the link; a linked
    `damaged-checkpoints` would move checkpoints out of the workdir.

    Raises:
      InputError: naming the link, where it points, and what to do.
    """
    directory = os.path.join(workdir, DIRECTORY)
    paths = [directory, os.path.join(workdir, DAMAGED)]
    if os.path.isdir(directory) and not os.path.islink(directory):
        paths += [os.path.join(directory, name) for name in sorted(os.listdir(directory))]
    for path in paths:
        if os.path.islink(path):
            raise InputError(
                f"{path} is a symbolic link (to {os.readlink(path)}); jaxdl does not read, move or delete checkpoints "
                "through links: put the directory itself there (copy it in), or remove the link")


@contextlib.contextmanager
def _quiet_absl(quiet: bool):
    import logging

    logger = logging.getLogger("absl")
    level = logger.level
    if quiet:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class Checkpointer:
    """An orbax `CheckpointManager` for a run's workdir, with jaxdl's keep policy and checks.

    Args:
      workdir: the run's directory; checkpoints go to `workdir/checkpoints`.
      keep: how many of the latest checkpoints to keep.
      keep_best: how many more to keep, the best by `best_metric`.
      best_metric: a metric of the evaluations, such as "eval_accuracy"
        (highest is best) or "eval_loss" (lowest is best, as for any name
        ending in loss or mae).
      async_save: write in the background; `save` returns once the arrays
        are copied from the devices.
      read_only: for inference: nothing in the workdir is created, moved or
        deleted (a damaged checkpoint is skipped, not set aside).
    """

    def __init__(self, workdir: str, *, keep: int = 2, keep_best: int = 1, best_metric: str = "eval_accuracy",
                 async_save: bool = True, read_only: bool = False):
        self.directory = os.path.abspath(os.path.join(workdir, DIRECTORY))
        lowest_is_best = metrics_lib.lower_is_better(best_metric)
        keep_policies = [_orbax().checkpoint_managers.LatestN(n=keep)]
        if keep_best:
            keep_policies.append(_orbax().checkpoint_managers.BestN(
                get_metric_fn=lambda metrics: metrics[best_metric], reverse=lowest_is_best, n=keep_best,
                keep_checkpoints_without_metrics=False,
            ))
        self.best_metric, self.read_only = best_metric, read_only
        check_links(workdir)
        with _quiet_absl(read_only):  # orbax logs that a read-only manager will not save: that is the point
            self.manager = self._manager(keep_policies, async_save, read_only)

    def _manager(self, keep_policies, async_save: bool, read_only: bool):
        ocp = _orbax()
        return ocp.CheckpointManager(
            self.directory,
            item_handlers={"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()},
            options=ocp.CheckpointManagerOptions(
                preservation_policy=None if read_only else ocp.checkpoint_managers.AnyPreservationPolicy(keep_policies),
                enable_async_checkpointing=async_save and not read_only,
                cleanup_tmp_directories=not read_only,  # a save that was cut off leaves nothing behind
                read_only=read_only, create=not read_only, save_interval_steps=0 if read_only else 1,
            ),
        )

    def steps(self) -> list[int]:
        """The steps of the checkpoints on disk, oldest first."""
        return sorted(self.manager.all_steps())

    def save(self, state, totals: dict, position: Position, *, meta: dict, metrics: dict | None = None,
             callbacks: Sequence = ()) -> None:
        """Starts saving a checkpoint at the state's step (asynchronously if so configured).

        `callbacks`: their state goes with the checkpoint (numbers in the
        JSON part, arrays such as early stopping's best state beside the
        training state), so that a resumed run continues them exactly.
        """
        payload = {"state": state_tree(state), "totals": totals}
        callbacks = _stateful(callbacks)
        kept = {str(i): state_tree(c.saved_arrays()) for i, c in enumerate(callbacks) if c.saved_arrays() is not None}
        if kept:
            payload["callbacks"] = kept
        metrics = {k: float(v) for k, v in (metrics or {}).items() if v is not None and np.isfinite(v)} or None
        step = int(np.max(parallel.fetch(state.step)))
        meta = {**meta, "position": position.to_dict(), "metrics": metrics, "fingerprint": parallel.fingerprint(payload),
                "callbacks": [{"kind": type(c).__name__, **c.state_dict()} for c in callbacks], "step": step}
        meta["integrity"] = _integrity(meta)
        with self._named_errors():
            self.manager.save(
                step,
                args=_orbax().args.Composite(state=_orbax().args.StandardSave(payload), meta=_orbax().args.JsonSave(meta)),
                metrics=metrics,
                force=True,
            )

    def wait(self) -> None:
        """Blocks until every save under way is written and committed."""
        with self._named_errors():
            self.manager.wait_until_finished()

    def _named_errors(self):
        """An OS error of orbax's (a full disk, a read-only one) named by the checkpoints' directory when it has no file."""
        return named_os_errors(self.directory)

    def reached_preemption(self, step: int) -> bool:
        """On a multi-host run, whether the hosts agreed to stop at this step (orbax's preemption sync point)."""
        return jax.process_count() > 1 and self.manager.reached_preemption(step)

    def meta(self, step: int) -> dict:
        """The JSON part of a checkpoint."""
        return self.manager.restore(step, args=_orbax().args.Composite(meta=_orbax().args.JsonRestore()))["meta"]

    def restore(self, step: int, state, totals: dict, *, callbacks: Sequence = ()) -> tuple[object, dict, dict]:
        """Restores checkpoint `step` into the structure (and placement) of `state` and `totals`; and the callbacks' state.

        Raises:
          StructureMismatch: when the saved arrays do not fit the target.
          DamagedCheckpoint: when the files cannot be read or fail their fingerprint.
        """
        target = {"state": state_tree(state), "totals": totals}
        saved = self._saved(step)
        if "callbacks" in saved:  # e.g. early stopping's best state: the training state's structure
            target["callbacks"] = {key: state_tree(state) for key in saved["callbacks"]}
        check_structure(shapes(saved), shapes(target))
        payload, meta = self._read(step, jax.tree.map(_orbax().utils.to_shape_dtype_struct, target))
        _restore_callbacks(callbacks, meta.get("callbacks") or [], payload.get("callbacks") or {}, state)
        return from_tree(state, payload["state"]), payload["totals"], meta

    def restore_arrays(self, step: int) -> tuple[dict, dict]:
        """Checkpoint `step`'s saved state as plain arrays (no model or optimizer needed to restore it), and its meta.

        The arrays are checked against their fingerprint as `restore` does:
        `payload["state"]` is the state's tree (`params`, `opt_state`,
        `model_state`, `step`, `rng`, ...), on the first device.

        Raises:
          DamagedCheckpoint: when the files cannot be read or fail their fingerprint.
        """
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(tuple(m.shape), m.dtype, sharding=device),
                                self._saved(step))
        return self._read(step, abstract)

    def _saved(self, step: int):
        """The tree of array metadata (shapes, dtypes) that checkpoint `step` holds."""
        try:
            saved = self.manager.item_metadata(step)["state"]
        except Exception as err:  # noqa: BLE001 -- any failure to read is damage
            raise DamagedCheckpoint(f"its metadata cannot be read ({type(err).__name__}: {err})") from err
        if saved is None:
            raise DamagedCheckpoint("it has no saved arrays")
        return saved

    def _read(self, step: int, abstract) -> tuple[dict, dict]:
        """Checkpoint `step`'s arrays restored as `abstract` says, checked against their fingerprint; and its meta."""
        try:
            restored = self.manager.restore(
                step, args=_orbax().args.Composite(state=_orbax().args.StandardRestore(abstract), meta=_orbax().args.JsonRestore())
            )
        except Exception as err:  # noqa: BLE001 -- truncated or unreadable files
            raise DamagedCheckpoint(f"its files cannot be read ({type(err).__name__}: {str(err)[:300]})") from err
        payload, meta = restored["state"], restored["meta"]
        if meta is None or parallel.fingerprint(payload) != meta.get("fingerprint"):
            raise DamagedCheckpoint("its arrays do not match the fingerprint saved with them")
        if "integrity" in meta:  # checkpoints from before jaxdl 0.2 have the arrays' fingerprint only
            if meta["integrity"] != _integrity(meta):
                raise DamagedCheckpoint("its position, callbacks' state or other metadata were changed after it was "
                                        "saved (they do not match the digest saved with them)")
            if meta.get("step") != step:
                raise DamagedCheckpoint(f"its metadata is for step {meta.get('step')}, but it is stored as step {step}")
        return payload, meta

    def best_step(self) -> int | None:
        """The step of the best checkpoint by `best_metric` among those evaluated, or None."""
        lowest_is_best = metrics_lib.lower_is_better(self.best_metric)
        scored = []
        for step in self.steps():
            try:
                value = (self.meta(step).get("metrics") or {}).get(self.best_metric)
            except Exception:  # noqa: BLE001 -- a damaged checkpoint is not a candidate
                continue
            if value is not None:
                scored.append((-value if lowest_is_best else value, step))
        return max(scored)[1] if scored else None

    def restore_latest(self, state, totals: dict, *, callbacks: Sequence = ()) -> tuple[object, dict, dict] | None:
        """Restores the newest checkpoint that is intact, warning about (and skipping) damaged ones.

        Returns:
          (state, totals, meta), or None when there is no intact checkpoint.
        """
        for step in reversed(self.steps()):
            try:
                return self.restore(step, state, totals, callbacks=callbacks)
            except DamagedCheckpoint as err:
                if self.read_only:
                    warnings.warn(f"checkpoint at step {step} in {self.directory} is damaged: {err}; "
                                  "falling back to the previous one", stacklevel=2)
                    continue
                aside = self._set_aside(step)
                warnings.warn(f"checkpoint at step {step} in {self.directory} is damaged: {err}; moved to {aside}; "
                              "falling back to the previous one", stacklevel=2)
        return None

    def _set_aside(self, step: int) -> str:
        """Moves a damaged checkpoint out of the way (kept for inspection), so that its step can be saved again."""
        aside = os.path.join(os.path.dirname(self.directory), DAMAGED, f"{step}-{int(time.time())}")
        if jax.process_index() == 0:
            os.makedirs(os.path.dirname(aside), exist_ok=True)
            os.rename(os.path.join(self.directory, str(step)), aside)
        self.manager.reload()
        return aside

    def close(self) -> None:
        with self._named_errors():
            self.manager.wait_until_finished()
            self.manager.close()


def _integrity(meta: dict) -> str:
    """SHA-256 of a checkpoint's metadata (all of it but this digest), as JSON would read it back."""
    canonical = json.loads(json.dumps({k: v for k, v in meta.items() if k != "integrity"}))
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _stateful(callbacks: Sequence) -> list:
    """The callbacks that keep state of their own (early stopping, reduce-on-plateau, ...), in order."""
    return [c for c in callbacks if type(c).state_dict is not Callback.state_dict]


def _restore_callbacks(callbacks: Sequence, saved: list, arrays: dict, state) -> None:
    """Gives each stateful callback back the state saved with the checkpoint (matched by position and kind).

    Raises:
      InputError: when the run's stateful callbacks are not the ones the checkpoint was saved with.
    """
    callbacks = _stateful(callbacks)
    kinds = [type(c).__name__ for c in callbacks]
    if [s.get("kind") for s in saved] != kinds:
        raise InputError(
            f"the checkpoint was saved with callbacks {[s.get('kind') for s in saved]}, this run has {kinds}; "
            "resume with the same callbacks (their state is part of the run), or start over"
        )
    for i, (callback, values) in enumerate(zip(callbacks, saved)):
        tree = arrays.get(str(i))
        callback.load_state_dict({k: v for k, v in values.items() if k != "kind"},
                                 None if tree is None else from_tree(state, tree))


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (SIGINT) stopped a run after saving a checkpoint at `step`: rerunning the same command continues it."""

    def __init__(self, step: int, workdir: str | None = None):
        super().__init__(f"interrupted at step {step}; its checkpoint is saved"
                         + (f" in {workdir}: run the same command (or fit call) again to continue" if workdir else ""))
        self.step, self.workdir = step, workdir


class StopSignals:
    """SIGTERM, or a first Ctrl-C, asks a run to stop at its next call boundary and save; a second Ctrl-C quits at once.

    Used as a context manager around training (in the main thread; elsewhere
    it does nothing). `requested` turns True on SIGTERM, and on the first
    SIGINT when `save_on_interrupt` (a run that checkpoints); `interrupted`
    says it was a SIGINT. Inside `protect()` (a checkpoint being written), a
    second SIGINT is held back and raised as KeyboardInterrupt once the save
    has finished, and further SIGTERMs change nothing.
    """

    def __init__(self, *, save_on_interrupt: bool = False):
        self.requested = False
        self.interrupted = False
        self._save_on_interrupt = save_on_interrupt
        self._held_interrupt = False
        self._protecting = False
        self._previous = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_term)
            self._previous[signal.SIGINT] = signal.signal(signal.SIGINT, self._on_int)
        return self

    def __exit__(self, *exc) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _on_term(self, number, frame) -> None:
        self.requested = True

    def _on_int(self, number, frame) -> None:
        if self._save_on_interrupt and not self.interrupted:
            self.requested = self.interrupted = True
            print("\ninterrupted: saving a checkpoint at the next step boundary, then stopping "
                  "(Ctrl-C again to quit at once, without it)", file=sys.stderr, flush=True)
            return
        if self._protecting:
            self._held_interrupt = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def protect(self):
        """Holds SIGINT back until the block finishes (a checkpoint being written)."""
        self._protecting = True
        try:
            yield
        finally:
            self._protecting = False
        if self._held_interrupt:
            self._held_interrupt = False
            raise KeyboardInterrupt


def _git_commit(path: str) -> dict | None:
    """The git commit (and whether the tree has changes) of the checkout holding `path`, if it is in one."""
    import subprocess

    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    try:
        commit = subprocess.run(["git", "-C", directory, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", directory, "status", "--porcelain"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip()), "directory": directory}


def manifest(cfg_seed: int, *, experiment: str | None = None, command: list[str] | None = None) -> dict:
    """What produced a run: library versions, devices, the seed, the command line and the experiment's git commit."""
    import importlib.metadata

    import flax
    import jaxlib
    import optax

    from jaxdl.version import __version__

    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "versions": {
            "jaxdl": __version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__,
            "optax": optax.__version__, "orbax_checkpoint": _orbax().__version__,
            "tensorflow_datasets": version("tensorflow-datasets"), "grain": version("grain"),
            "python": sys.version.split()[0],
        },
        "devices": parallel.device_summary(),
        "seed": cfg_seed,
        "command": command if command is not None else [os.path.basename(sys.argv[0]), *sys.argv[1:]],
        "experiment": experiment,
        "git": _git_commit(experiment or os.getcwd()),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


class Schedule:
    """When a run saves, and whether it must stop: the training loop's view of checkpointing.

    Saves fall on call boundaries: every `every_steps` global steps, every
    `every_epochs` epochs, when `every_seconds` have passed since the last
    save, at the end of the run, and when the run is asked to stop (SIGTERM
    on one host; orbax's preemption sync point on several).

    Args:
      checkpointer: where checkpoints go.
      signals: the run's `StopSignals`.
      steps_per_epoch: steps in each epoch (to turn positions into steps).
      meta: JSON saved with every checkpoint (config, manifest).
    """

    def __init__(self, checkpointer: Checkpointer, signals: StopSignals, *, steps_per_epoch: int, meta: dict,
                 every_steps: int = 0, every_epochs: int = 0, every_seconds: float = 0.0, callbacks: Sequence = ()):
        self.checkpointer = checkpointer
        self.callbacks = list(callbacks)
        self.signals = signals
        self.steps_per_epoch = steps_per_epoch
        self.meta = meta
        self.every_steps, self.every_epochs, self.every_seconds = every_steps, every_epochs, every_seconds
        self._last_save = time.monotonic()

    def _global(self, position: Position) -> int:
        return (position.epoch - 1) * self.steps_per_epoch + position.step

    def _time_due(self) -> bool:
        # Hosts' clocks differ, and every host must stop at the same boundaries (the saves are
        # collective): on several hosts, saves fall on step and epoch boundaries only.
        if not self.every_seconds or jax.process_count() > 1:
            return False
        return time.monotonic() - self._last_save >= self.every_seconds

    def pause_requested(self) -> bool:
        """Asked by the feed after each call: stop here to save (time is up) or to stop (SIGTERM)."""
        return (jax.process_count() == 1 and self.signals.requested) or self._time_due()

    def at_boundary(self, state: TrainState, totals: dict, position: Position, *, record: dict | None = None,
                    last: bool = False) -> bool:
        """Saves if a save is due at `position`; returns True when the run must stop now (saved and written)."""
        step = self._global(position)
        if jax.process_count() > 1:
            stop = self.checkpointer.reached_preemption(step)
        else:
            stop = self.signals.requested
        epoch_end = position.step == 0
        due = (
            last or stop or self._time_due()
            or (self.every_steps and step % self.every_steps == 0)
            or (epoch_end and self.every_epochs and (position.epoch - 1) % self.every_epochs == 0)
        )
        if due:
            if not parallel.all_finite(state_tree(state)):
                raise NonFiniteError(
                    f"the parameters at step {step} are not finite (nan or inf); training stopped, and they were not "
                    "saved. Try a lower learning rate or gradient clipping (optimizer.grad_clip_norm)"
                )
            metrics = {k: v for k, v in (record or {}).items()
                       if k.startswith("eval_") and isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
            with self.signals.protect():  # a SIGINT now would otherwise cut the save short
                self.checkpointer.save(state, totals, position, meta=self.meta, metrics=metrics, callbacks=self.callbacks)
                if stop or last:
                    self.checkpointer.wait()
            self._last_save = time.monotonic()
        return stop
