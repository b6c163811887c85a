"""Save a trained model, load it anywhere: `jaxdl.save(state, path)` and `jaxdl.load(path_or_workdir)`.

A saved model is a directory of two files, readable without jaxdl's
training data, config or code beyond the model's class:

- `model.json`: the model's definition (its Linen class by import path and
  the fields it was built with; see `jaxdl.definition`), its output head,
  one example's input shape, the training data's input scaling, the class
  names, the EMA decay, the ensemble size, and the SHA-256 of the weights;
- `weights.msgpack`: the parameters, the model's other collections (batch
  statistics) and the EMA parameters, as flax msgpack (no pickle).

A run's workdir (from `jaxdl train` or `fit(..., workdir=...)`) holds the
same `model.json`; `load(workdir)` takes the weights from its latest (or
best) intact checkpoint, reading the checkpoint's arrays without needing
the model or optimizer to restore into, and writes nothing there.
The state that `load` returns predicts and evaluates on raw inputs (the
saved scaling is applied) and can be fine-tuned: `jaxdl.fit(state, ...)`.
"""

import json
import os
import shutil
import tempfile

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from jaxdl import checkpoint, data, definition, ensemble, modules, parallel
from jaxdl.errors import InputError
from jaxdl.state import TrainState, params_sha256
from jaxdl.version import __version__
from jaxdl.writers import write_bytes, write_json

FORMAT = "jaxdl.model"
VERSION = 1
SPEC = "model.json"
WEIGHTS = "weights.msgpack"
WHICH = ("latest", "best")


def _check_state(state, argument: str = "state") -> None:
    if not isinstance(state, TrainState) or not isinstance(state.model, modules.Model):
        raise InputError(f"{argument}={type(state).__name__}: expected the TrainState of a model, as jaxdl.fit or "
                         "jaxdl.load returns (a Task of your own saves its state through its workdir's checkpoints)")


def spec(state: TrainState) -> dict:
    """What `model.json` holds for a state: everything but the weights."""
    _check_state(state)
    model = state.model
    described = {"kind": model.kind, "name": model.name}
    if model.kind == "linen":
        try:
            described["definition"] = definition.describe(model.module)
        except definition.Undescribable as err:
            described["why_not"] = str(err)
    else:
        described["why_not"] = "an NNX module keeps no record of its constructor's arguments"
    return {
        "format": FORMAT, "version": VERSION, "jaxdl": __version__,
        "model": described,
        "head": state.head,
        "input_shape": list(state.input_shape),
        "inputs": None if state.inputs is None else state.inputs.to_dict(),
        "class_names": list(state.class_names),
        "ema_decay": state.ema_decay,
        "members": ensemble.size(state),
    }


def _weights(state: TrainState) -> dict:
    state = jax.device_get(parallel.local(state))
    weights = {"params": state.params, "model_state": state.model_state, "step": state.step}
    if state.ema_params is not None:
        weights["ema_params"] = state.ema_params
    return weights


def _is_saved(path: str) -> bool:
    return os.path.isfile(os.path.join(path, SPEC)) and os.path.isfile(os.path.join(path, WEIGHTS))


def save(state: TrainState, path: str) -> str:
    """Saves a trained model as a directory that `jaxdl.load` reads in any process, without the training data.

    An existing saved model at `path` is replaced as a whole (the new one is
    written beside it and renamed over it); anything else there is refused.

    Returns:
      The path.

    Raises:
      InputError: for a state that is not a model's, or a `path` that holds
        something other than a saved model.
    """
    _check_state(state)
    path = os.fspath(path)
    if os.path.exists(path) and not (os.path.isdir(path) and (_is_saved(path) or not os.listdir(path))):
        raise InputError(f"path={path!r} exists and is not a saved jaxdl model; choose another path "
                         "(a saved model is replaced as a whole, anything else is kept)")
    weights = _weights(state)
    described = {**spec(state), "weights_sha256": params_sha256(weights)}
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(dir=parent, prefix=".saving-")
    try:
        write_bytes(os.path.join(staging, WEIGHTS), flax.serialization.msgpack_serialize(weights))
        write_json(os.path.join(staging, SPEC), described)
        old = None
        if os.path.exists(path):
            old = tempfile.mkdtemp(dir=parent, prefix=".replaced-")
            os.rmdir(old)
            os.rename(path, old)
        os.rename(staging, path)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return path


def load(path: str, *, model=None, which: str = "latest", argument: str = "path") -> TrainState:
    """A trained model from a saved model's directory or from a run's workdir (its latest or best intact checkpoint).

    Args:
      path: what `jaxdl.save` wrote, or a workdir of `jaxdl train` or
        `jaxdl.fit(..., workdir=...)` (a supervised run).
      model: the Flax module to load the weights into, for a model whose
        definition could not be saved (an NNX module, a Linen class defined
        in a notebook or holding a lambda): the same architecture as trained.
      which: for a workdir, "latest" (the state training ended with) or
        "best" (by the run's `checkpoint.best_metric`).
      argument: what messages call `path` (the command line: "--workdir").

    Returns:
      A `TrainState` for `jaxdl.predict`, `jaxdl.evaluate` (both take raw
      inputs: the saved scaling is applied) and `jaxdl.fit` (fine-tuning; its
      optimizer starts afresh). It has no optimizer state.

    Raises:
      InputError: when `path` holds no saved model or supervised run, every
        checkpoint is damaged, the weights do not match their digest, or the
        model does not fit the weights.
    """
    path = os.fspath(path)
    if which not in WHICH:
        raise InputError(f"which={which!r}: expected one of: {', '.join(WHICH)}")
    if _is_saved(path):
        described = _read_spec(os.path.join(path, SPEC), path, argument)
        with open(os.path.join(path, WEIGHTS), "rb") as f:
            try:
                weights = flax.serialization.msgpack_restore(f.read())
            except Exception as err:  # noqa: BLE001 -- any unreadable file is damage
                raise InputError(f"{argument}={path!r}: {WEIGHTS} cannot be read ({type(err).__name__}: {err})") from None
        if params_sha256(weights) != described.get("weights_sha256"):
            raise InputError(f"{argument}={path!r}: the weights do not match the digest saved with them (damaged or changed)")
        chose = "saved model"
    elif os.path.isfile(os.path.join(path, "config.json")):
        described = _read_spec(os.path.join(path, SPEC), path, argument)
        weights, chose = _from_workdir(path, which, argument, classifier=described["head"] != "identity")
    else:
        raise InputError(f"{argument}={path!r} holds neither a saved model ({SPEC} and {WEIGHTS}) nor a run's workdir "
                         "(config.json)")
    return _state(described, weights, model=model, where=f"{path!r} ({chose})")


def _read_spec(spec_path: str, path: str, argument: str) -> dict:
    if not os.path.isfile(spec_path):
        with open(os.path.join(path, "config.json")) as f:
            task = json.load(f).get("task")
        if task == "supervised":
            raise InputError(f"{argument}={path!r} holds a run without {SPEC} (made before jaxdl wrote one): run its "
                             f"command again with --workdir {path}; it resumes at the end and writes {SPEC}")
        raise InputError(f"{argument}={path!r} holds a run of task {task!r}: loading a model to predict with it (jaxdl.load, "
                         f"jaxdl predict) is for supervised models' runs; its figures: jaxdl eval --workdir {path}")
    with open(spec_path) as f:
        try:
            described = json.load(f)
        except json.JSONDecodeError as err:
            raise InputError(f"{argument}={path!r}: {SPEC} is not valid JSON ({err})") from None
    if described.get("format") != FORMAT or described.get("version", 0) > VERSION:
        raise InputError(f"{argument}={path!r}: {SPEC} is not a jaxdl model of a version this jaxdl ({__version__}) reads")
    return described


def _from_workdir(workdir: str, which: str, argument: str, *, classifier: bool) -> tuple[dict, str]:
    """The weights of a workdir's latest or best intact checkpoint, read without writing anything there."""
    if not os.path.isdir(os.path.join(workdir, checkpoint.DIRECTORY)):
        raise InputError(f"{argument}={workdir!r} holds no checkpoints (was the run made with checkpoints off?)")
    with open(os.path.join(workdir, "config.json")) as f:
        cfg = json.load(f)
    best_metric = cfg.get("checkpoint", {}).get("best_metric", "auto")
    if best_metric == "auto":  # as a supervised run picks it: accuracy for classifiers, loss otherwise
        best_metric = "accuracy" if classifier else "loss"
    checkpointer = checkpoint.Checkpointer(workdir, read_only=True, best_metric=f"eval_{best_metric}")
    try:
        steps = list(reversed(checkpointer.steps()))
        chose = "latest checkpoint"
        if which == "best":
            best = checkpointer.best_step()
            if best is not None:
                steps = [best] + [s for s in steps if s != best]
                chose = f"best checkpoint by {checkpointer.best_metric}"
        for step in steps:
            try:
                payload, _ = checkpointer.restore_arrays(step)
            except checkpoint.DamagedCheckpoint as err:
                import warnings

                warnings.warn(f"checkpoint at step {step} in {workdir} is damaged: {err}; trying the previous one",
                              stacklevel=3)
                continue
            state = payload["state"]
            weights = {"params": state["params"], "model_state": state.get("model_state", {}), "step": state["step"]}
            if "ema_params" in state:
                weights["ema_params"] = state["ema_params"]
            return jax.device_get(weights), f"{chose}, step {int(np.max(state['step']))}"
    finally:
        checkpointer.close()
    raise InputError(f"{argument}={workdir!r}: no intact checkpoint to load")


def _state(described: dict, weights: dict, *, model, where: str) -> TrainState:
    saved_model = described["model"]
    if model is None:
        if "definition" not in saved_model:
            raise InputError(f"the model in {where} ({saved_model['name']}) has no saved definition "
                             f"({saved_model['why_not']}); pass it: jaxdl.load(path, model=...)")
        model = definition.build(saved_model["definition"])
    wrapped = modules.wrap(model)
    input_shape = tuple(described["input_shape"])
    members = described.get("members", 0)
    expected = jax.eval_shape(lambda: wrapped.init(jax.random.PRNGKey(0), jnp.zeros((1, *input_shape), jnp.float32)))
    expected = {"params": expected["params"], "model_state": {k: v for k, v in expected.items() if k != "params"}}
    found = {"params": weights["params"], "model_state": weights.get("model_state") or {}}
    if members:
        found = jax.tree.map(lambda a: a[0], found)
    try:
        checkpoint.check_structure(checkpoint.shapes(found), checkpoint.shapes(expected))
    except checkpoint.StructureMismatch as err:
        raise InputError(f"the model does not fit the weights in {where}: {str(err).split('. Restore')[0]}") from None
    inputs = described.get("inputs")
    as_array = lambda tree: jax.tree.map(jnp.asarray, tree)  # noqa: E731
    # A checkpoint leaves out empty collections (an NNX module's empty "state"): put them back from the model's own.
    model_state = _fill(expected["model_state"], weights.get("model_state") or {})
    rng = jax.random.PRNGKey(0)
    if members:
        rng = jnp.stack([rng] * members)
    return TrainState(
        step=jnp.asarray(weights["step"]),
        params=as_array(weights["params"]),
        opt_state=None,
        rng=rng,
        model_state=as_array(model_state),
        tx=None,
        model=wrapped,
        head=described["head"],
        input_shape=input_shape,
        ema_params=as_array(weights["ema_params"]) if "ema_params" in weights else None,
        ema_decay=float(described.get("ema_decay", 0.0)),
        inputs=None if inputs is None else data.Inputs.from_dict(inputs),
        class_names=tuple(described.get("class_names", ())),
    )


def _fill(expected, found):
    if isinstance(expected, dict):
        return {k: _fill(v, (found or {}).get(k, {} if isinstance(v, dict) else None)) for k, v in expected.items()}
    return found


def describes(state) -> bool:
    """Whether `state` is a model's (a `TrainState` with a `modules.Model`), which `save` and `model.json` describe."""
    return isinstance(state, TrainState) and isinstance(state.model, modules.Model)
