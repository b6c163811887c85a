"""Configs: the defaults, loading experiment files, command-line overrides and their checks.

A config is an `ml_collections.ConfigDict`. An experiment file in
`experiments/` defines `get_config()` (or `get_config(arg)`) returning one;
it is laid over `default_config()`, so a file names only what it changes and
a misspelt key fails instead of being ignored.
"""

import ast
import difflib
import importlib.util
import os
import sys
from collections.abc import Iterable

import ml_collections
from ml_collections import config_dict

from jaxdl import optim
from jaxdl.errors import InputError


def base_config(task: str) -> ml_collections.ConfigDict:
    """The sections every task shares: data, train, optimizer, parallel, ensemble, callbacks, checkpoints, logging.

    Each task's `default_config()` adds its own `model` keys (and others) to
    these, so every task gets every feature: ensembles, pmap and meshes,
    callbacks, mid-epoch checkpoints and exact resume.
    """
    cfg = ml_collections.ConfigDict()
    cfg.task = task  # supervised (jaxdl.tasks.supervised), autoencoder, language_model, gan
    cfg.seed = 0
    cfg.compile_cache = "auto"  # where compiled programs are kept: auto (~/.cache/jaxdl/jax), a path, or "off"

    cfg.data = ml_collections.ConfigDict()
    cfg.data.name = "breast_cancer"
    cfg.data.data_dir = config_dict.placeholder(str)
    cfg.data.test_fraction = 0.2
    cfg.data.split_seed = 0  # fixes the train/test split independently of `seed`
    cfg.data.pipeline = "auto"  # auto, device (split held on the device), host (grain)
    cfg.data.device_max_mb = 256  # auto: the device path for splits up to this size
    cfg.data.workers = 0  # host pipeline: worker processes (0: threads in this process)

    cfg.model = ml_collections.ConfigDict()

    cfg.train = ml_collections.ConfigDict()
    cfg.train.epochs = 150
    cfg.train.batch_size = 10
    cfg.train.shuffle = True
    cfg.train.drop_remainder = False  # False: pad the last batch and mask it out
    cfg.train.steps_per_call = "auto"  # steps fused per compiled call: N, epoch, auto (epoch on the device path)
    cfg.train.eval_every_epochs = 1
    cfg.train.eval_batch_size = 1024
    cfg.train.stop_on_nan = True  # stop, naming the step, when the loss becomes nan or inf

    cfg.callbacks = ml_collections.ConfigDict()
    cfg.callbacks.early_stopping_patience = 0  # > 0: stop after this many evaluations without improvement
    cfg.callbacks.early_stopping_metric = "eval_loss"
    cfg.callbacks.early_stopping_min_delta = 0.0
    cfg.callbacks.restore_best = True  # early stopping ends with the best evaluation's state
    cfg.callbacks.reduce_lr_patience = 0  # > 0: cut the learning rate after this many evaluations without improvement
    cfg.callbacks.reduce_lr_metric = "eval_loss"
    cfg.callbacks.reduce_lr_factor = 0.5
    cfg.callbacks.hook = config_dict.placeholder(str)  # "file.py:function" or "module:function", called as fn(state, step, figures)
    cfg.callbacks.hook_every_steps = 0  # also call the hook every N steps (it is always called after evaluations)

    cfg.logging = ml_collections.ConfigDict()
    cfg.logging.tensorboard = True  # event files in WORKDIR/tensorboard
    cfg.logging.plots = True  # learning curves in WORKDIR/plots
    cfg.logging.every_steps = 0  # > 0: also write the epoch's running train figures to TensorBoard every N steps

    cfg.optimizer = ml_collections.ConfigDict(
        {k: config_dict.placeholder(float) if v is None else v for k, v in optim.DEFAULTS.items()}
    )

    # Where steps run: auto (a mesh over all devices when there are several and the batch
    # divides over them, else one device), single, pmap, mesh.
    cfg.parallel = "auto"
    cfg.mesh = ml_collections.ConfigDict()
    cfg.mesh.fsdp = 1  # devices along the mesh axis that shards parameters and optimizer state

    cfg.ensemble = ml_collections.ConfigDict()
    cfg.ensemble.size = 1  # > 1: train this many models at once (vmap); member k uses seed + k
    cfg.ensemble.learning_rate = ()  # one per member; () = optimizer.learning_rate for all
    cfg.ensemble.weight_decay = ()  # one per member (adamw); () = optimizer.weight_decay for all
    cfg.ensemble.select = "auto"  # metric that picks the best member: auto (the task's own), or loss, accuracy, ...

    cfg.checkpoint = ml_collections.ConfigDict()
    cfg.checkpoint.enabled = True  # orbax checkpoints in WORKDIR/checkpoints; rerunning resumes
    cfg.checkpoint.every_steps = 0  # save every N global steps (0: off)
    cfg.checkpoint.every_epochs = 0  # save every N epochs (0: off)
    cfg.checkpoint.every_seconds = 60.0  # save when this long has passed since the last save (0: off)
    cfg.checkpoint.keep = 2  # the latest K checkpoints ...
    cfg.checkpoint.keep_best = 1  # ... plus the best M by best_metric
    cfg.checkpoint.best_metric = "auto"  # auto (the task's own), or loss, accuracy, auc, ...
    cfg.checkpoint.async_save = True  # write in the background while training goes on

    cfg.distributed = ml_collections.ConfigDict()
    cfg.distributed.enabled = False  # join a multi-host run with jax.distributed.initialize()
    cfg.distributed.coordinator = config_dict.placeholder(str)  # HOST:PORT of process 0; None: from the environment (TPU pods)
    cfg.distributed.num_processes = config_dict.placeholder(int)
    cfg.distributed.process_id = config_dict.placeholder(int)
    return cfg


# The choices of the shared sections (their modules take them from here).
PIPELINES = ("auto", "device", "host")
PARALLEL = ("auto", "single", "pmap", "mesh")
SUPERVISED_SELECT = ("auto", "loss", "accuracy", "auc", "precision", "recall", "mae")


# Step counts, seeds and sizes live in int32 on the device: every integer setting must fit one.
INT_MAX = 2**31 - 1


def check_int(value, name: str, minimum: int, maximum: int = INT_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InputError(f"{name}={value!r}: expected an integer from {minimum} to {maximum}")
    return value


def check_number(value, name: str, minimum: float = 0.0) -> float:
    """A finite number >= minimum (not nan, not inf, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not minimum <= value < float("inf"):
        raise InputError(f"{name}={value!r}: expected a finite number >= {minimum}")
    return float(value)


def check_bool(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise InputError(f"{name}={value!r}: expected true or false")
    return value


def check(cfg: ml_collections.ConfigDict, *, names: dict[str, str] | None = None) -> None:
    """Checks the sections every task shares (train, data pipeline, parallel, ensemble, callbacks, checkpoints, logging).

    Raises:
      InputError: naming the first bad setting, its value and what was expected.

    `names`: what to call a key in messages (`jaxdl.fit` names its own
    arguments: "epochs", not "train.epochs").
    """
    names = names or {}

    def n(key: str) -> str:
        return names.get(key, key)

    check_int(cfg.seed, n("seed"), 0)
    check_int(cfg.ensemble.size, n("ensemble.size"), 1)
    if cfg.seed + cfg.ensemble.size - 1 > INT_MAX:  # member k is seeded seed + k
        raise InputError(f"{n('seed')}={cfg.seed}: with {cfg.ensemble.size} ensemble members the seeds run to "
                         f"{cfg.seed + cfg.ensemble.size - 1}; expected them to fit {INT_MAX}")
    check_int(cfg.data.split_seed, n("data.split_seed"), 0)
    check_int(cfg.train.epochs, n("train.epochs"), 1)
    check_int(cfg.train.eval_every_epochs, n("train.eval_every_epochs"), 1)
    check_int(cfg.train.eval_batch_size, n("train.eval_batch_size"), 1)
    check_int(cfg.train.batch_size, n("train.batch_size"), 1)
    check_bool(cfg.train.shuffle, n("train.shuffle"))
    check_bool(cfg.train.drop_remainder, n("train.drop_remainder"))
    check_bool(cfg.train.stop_on_nan, n("train.stop_on_nan"))
    check_int(cfg.data.device_max_mb, n("data.device_max_mb"), 0)
    check_int(cfg.data.workers, n("data.workers"), 0)
    per_call = cfg.train.steps_per_call
    if per_call not in ("auto", "epoch") and (isinstance(per_call, bool) or not str(per_call).strip().isdigit()
                                              or int(per_call) < 1):
        raise InputError(f"{n('train.steps_per_call')}={per_call!r}: expected a positive integer, 'epoch' or 'auto'")
    if cfg.data.pipeline not in PIPELINES:
        raise InputError(f"{n('data.pipeline')}={cfg.data.pipeline!r} is not known; expected one of: {', '.join(PIPELINES)}")
    if cfg.parallel not in PARALLEL:
        raise InputError(f"{n('parallel')}={cfg.parallel!r} is not known; expected one of: {', '.join(PARALLEL)}")
    check_int(cfg.ensemble.size, n("ensemble.size"), 1)
    check_int(cfg.logging.every_steps, n("logging.every_steps"), 0)
    check_bool(cfg.checkpoint.enabled, n("checkpoint.enabled"))
    check_bool(cfg.checkpoint.async_save, n("checkpoint.async_save"))
    for key in ("every_steps", "every_epochs", "keep_best"):
        check_int(cfg.checkpoint[key], n(f"checkpoint.{key}"), 0)
    check_int(cfg.checkpoint.keep, n("checkpoint.keep"), 1)
    check_number(cfg.checkpoint.every_seconds, n("checkpoint.every_seconds"))
    for key in ("early_stopping_min_delta",):
        check_number(cfg.callbacks[key], n(f"callbacks.{key}"))
    if cfg.task == "supervised":
        for key, value in (("ensemble.select", cfg.ensemble.select), ("checkpoint.best_metric", cfg.checkpoint.best_metric)):
            if value not in SUPERVISED_SELECT:
                raise InputError(f"{n(key)}={value!r} is not known; expected one of: {', '.join(SUPERVISED_SELECT)}")
    for key in ("early_stopping_patience", "reduce_lr_patience", "hook_every_steps"):
        check_int(cfg.callbacks[key], n(f"callbacks.{key}"), 0)
    factor = cfg.callbacks.reduce_lr_factor
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
        raise InputError(f"{n('callbacks.reduce_lr_factor')}={factor!r}: expected a number between 0 and 1")
    if cfg.callbacks.hook_every_steps and not cfg.callbacks.hook:
        raise InputError("callbacks.hook_every_steps is set but callbacks.hook is not; name the function to call")


def default_config() -> ml_collections.ConfigDict:
    """The tutorial's run: a 12-8-1 network, adam, binary cross-entropy, 150 epochs, batch 10."""
    return defaults_for("supervised")


def _split_spec(spec: str) -> tuple[str, str | None]:
    """Splits "PATH[:ARG]"; a colon belongs to the path when the whole spec is a file."""
    if os.path.isfile(spec) or ":" not in spec:
        return spec, None
    path, arg = spec.rsplit(":", 1)
    return path, arg


def load(spec: str | None = None) -> ml_collections.ConfigDict:
    """Loads a config from "PATH[:ARG]", laid over the defaults; None gives the defaults.

    Raises:
      InputError: when the file does not exist, has no `get_config`, or sets
        keys the defaults do not have.
    """
    if spec is None:
        return default_config()
    path, arg = _split_spec(spec)
    if not os.path.isfile(path):
        raise InputError(f"--config={spec!r}: the config file {path!r} does not exist")
    module_name = "jaxdl_experiment_" + os.path.splitext(os.path.basename(path))[0]
    module_spec = importlib.util.spec_from_file_location(module_name, path)
    if module_spec is None or not path.endswith(".py"):
        raise InputError(f"--config={spec!r}: expected a Python file (.py) defining get_config()")
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except SyntaxError as err:
        raise InputError(f"--config={spec!r}: {path} line {err.lineno}: syntax error: {err.msg}") from None
    except Exception as err:  # noqa: BLE001 -- the experiment file's own code
        raise InputError(f"--config={spec!r}: running {path} raised {type(err).__name__}: {err}") from None
    if not hasattr(module, "get_config"):
        raise InputError(f"--config={spec!r}: {path} defines no get_config() function")
    try:
        loaded = module.get_config(arg) if arg is not None else module.get_config()
    except Exception as err:  # noqa: BLE001 -- the experiment file's own code
        where = f"get_config({arg!r})" if arg is not None else "get_config()"
        raise InputError(f"--config={spec!r}: {path}'s {where} raised {type(err).__name__}: {err}") from None
    task = loaded.get("task", "supervised")
    if isinstance(task, str) and task.endswith(".py") and not os.path.isabs(task):
        # A task file named in a config file is found beside that config file.
        task = os.path.join(os.path.dirname(os.path.abspath(path)), task)
        loaded["task"] = task
    cfg = defaults_for(task)
    _lay_over(cfg, loaded, prefix="")
    return cfg


TASKS = ("supervised", "autoencoder", "language_model", "gan")


def task_module(task: str):
    """The module of a task: a built-in one by name, or a researcher's Python file (`task="path/to/task.py"`).

    A task's module defines `default_config()` (built on `base_config`) and
    `build(cfg) -> jaxdl.tasks.Built`, as the built-in ones in `jaxdl/tasks/` do.

    Raises:
      InputError: for an unknown name, a missing file, or a file without those two functions.
    """
    if task in TASKS:
        # Looked up by name: each task module builds its defaults on `base_config`.
        return importlib.import_module(f"jaxdl.tasks.{task}")
    if not isinstance(task, str) or not task.endswith(".py"):
        raise InputError(f"task={task!r} is not a known task; expected one of: {', '.join(TASKS)}, "
                         "or the path of a Python file defining default_config() and build(cfg)")
    path = os.path.abspath(task)
    if not os.path.isfile(path):
        raise InputError(f"task={task!r}: no such file; expected a Python file defining default_config() and build(cfg)")
    name = "jaxdl_task_" + os.path.splitext(os.path.basename(path))[0]
    module = sys.modules.get(name)
    if module is None or getattr(module, "__file__", None) != path:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # once per process: its classes stay the same objects
        spec.loader.exec_module(module)
    missing = [f for f in ("default_config", "build") if not callable(getattr(module, f, None))]
    if missing:
        raise InputError(f"task={task!r}: {path} defines no {' or '.join(missing)}(); a task file defines "
                         "default_config() (on jaxdl.config.base_config) and build(cfg) -> jaxdl.tasks.Built")
    return module


def defaults_for(task: str) -> ml_collections.ConfigDict:
    """The default config of a task: the shared sections (`base_config`) and the task's own keys.

    Raises:
      InputError: for an unknown task, listing the known ones.
    """
    cfg = task_module(task).default_config()
    if cfg.task != task:
        cfg.task = task  # a task file's absolute path, so that a resumed run finds it
    return cfg


def from_dict(values: dict) -> ml_collections.ConfigDict:
    """A config from a resolved config's dict (a run's config.json), laid over the defaults."""
    cfg = defaults_for(values.get("task", "supervised"))
    _lay_over(cfg, values, prefix="")
    return cfg


def _lay_over(base: ml_collections.ConfigDict, top, *, prefix: str) -> None:
    for key, value in top.items():
        name = prefix + key
        if key not in base:
            known = [prefix + k for k in flat_keys(base)]
            raise InputError(f"config key {name!r} is not known{_suggest(name, known)}")
        if isinstance(base[key], ml_collections.ConfigDict):
            _lay_over(base[key], value, prefix=name + ".")
        else:
            _assign(base, key, value, name=name)


def flat_keys(cfg) -> list[str]:
    """All leaf keys of a config, dotted: ["seed", "data.name", ...]."""
    keys = []
    for key, value in cfg.items():
        if isinstance(value, (ml_collections.ConfigDict, dict)):
            keys += [f"{key}.{sub}" for sub in flat_keys(value)]
        else:
            keys.append(key)
    return keys


# Common names for keys that difflib would not find.
_ALIASES = {"lr": "learning_rate", "bs": "batch_size", "num_epochs": "epochs", "dataset": "name", "layers": "hidden"}


def _suggest(key: str, known: Iterable[str]) -> str:
    known = list(known)
    leaf = key.rsplit(".", 1)[-1]
    leaf = _ALIASES.get(leaf, leaf)
    section = key.rsplit(".", 1)[0] if "." in key else ""
    close = [k for k in known if k.rsplit(".", 1)[-1] == leaf]
    close.sort(key=lambda k: not k.startswith(section + "."))  # the same section's key first
    close += [k for k in difflib.get_close_matches(key, known, n=3, cutoff=0.6) if k not in close]
    return f"; did you mean {' or '.join(repr(c) for c in close[:3])}?" if close else ""


def _is_activation(name: str) -> bool:
    """Whether a dotted key is a model section's activation ("model.mlp.activation"), which may list one per layer."""
    parts = name.split(".")
    return parts[0] == "model" and parts[-1] == "activation" and len(parts) in (2, 3)


def _activation_list(value) -> str:
    """One activation name per layer, as the config keeps them: "relu,tanh" from "relu, tanh", "(relu, tanh)" or a tuple."""
    parts = value if isinstance(value, (tuple, list)) else value.strip().strip("()[]").split(",")
    return ",".join(str(p).strip().strip("'\"") for p in parts)


def _assign(section: ml_collections.ConfigDict, key: str, value, *, name: str) -> None:
    if _is_activation(name) and isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        value = _activation_list(value)  # a config file's ("relu", "tanh"): the key holds a string
    try:
        section[key] = value
    except TypeError:
        expected = section.get_ref(key).get_type().__name__
        raise InputError(f"config key {name!r}={value!r}: expected a value of type {expected}") from None


def _parse(text: str, current, field_type: type | None, *, name: str):
    """Turns an override's text into a value of the type its default has."""
    kind = field_type if current is None else type(current)
    if text.lower() in ("none", "null") and current is None:
        return None
    if kind in (tuple, list) and not text.strip():  # `--config.model.mlp.hidden=`: a slip more likely than a wish
        example = f" such as {','.join(map(str, current))}" if current else ""
        raise InputError(f"--config.{name}={text!r}: the value is empty; expected a comma-separated list{example}; "
                         f"for an empty tuple write --config.{name}='()'")
    try:
        if kind is bool:
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError(text)
        if kind in (int, float):
            return kind(text)
        if kind in (tuple, list):
            stripped = text.strip()
            if stripped in ("()", "[]"):
                return ()
            # "(64, 32)", "[64, 32]" or "64,32"; items take the type of the default's items.
            items = ast.literal_eval(stripped) if stripped[0] in "([" else [i.strip() for i in stripped.split(",")]
            items = items if isinstance(items, (tuple, list)) else (items,)
            element = type(current[0]) if current else None
            return tuple(
                _parse(str(i), None, element, name=name) if element and not isinstance(i, element)
                else _literal(i) for i in items
            )
        if kind is str:
            return _activation_list(text) if _is_activation(name) and "," in text else text
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        expected = kind.__name__ if kind else "a Python literal"
        raise InputError(f"--config.{name}={text!r}: expected {expected}") from None


def _literal(item):
    """A number written as text ("0.003") becomes that number; other items stay as they are."""
    if isinstance(item, str):
        try:
            value = ast.literal_eval(item)
        except (ValueError, SyntaxError):
            return item
        return value if isinstance(value, (int, float)) else item
    return item


# Keys that change how a run is computed or reported but not what it computes: a
# resumed run may change them. Every other key changes the result.
RESULT_NEUTRAL = (
    "compile_cache", "data.data_dir", "data.workers", "data.pipeline", "data.device_max_mb",
    "data.in_memory_max_mb", "train.steps_per_call", "train.eval_every_epochs", "train.eval_batch_size",
    "checkpoint.", "distributed.", "logging.", "train.stop_on_nan", "callbacks.hook",
)


def result_changes(saved: dict, current: dict) -> list[tuple[str, object, object]]:
    """Keys whose values differ between two configs (as dicts) and change a run's result.

    Returns:
      (dotted key, saved value, current value) for each, sorted by key.
    """
    def flat(tree, prefix=""):
        out = {}
        for key, value in tree.items():
            if isinstance(value, dict):
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[prefix + key] = list(value) if isinstance(value, tuple) else value
        return out

    old, new = flat(saved), flat(current)
    changed = []
    for key in sorted(set(old) | set(new)):
        if key.startswith(RESULT_NEUTRAL) or key in RESULT_NEUTRAL:
            continue
        if old.get(key) != new.get(key):
            changed.append((key, old.get(key), new.get(key)))
    return changed


def apply_overrides(cfg: ml_collections.ConfigDict, overrides: Iterable[tuple[str, str]]) -> None:
    """Applies command-line overrides (dotted key, text value) in place.

    Raises:
      InputError: for an unknown key (with "did you mean"), or a value that
        does not parse as its key's type.
    """
    known = flat_keys(cfg)
    for key, text in overrides:
        if key == "task" and text != cfg.task:
            raise InputError(
                f"--config.task={text!r}: a task is chosen by its config file, not overridden "
                f"(this config's task is {cfg.task!r}); e.g. --config experiments/digits_autoencoder.py"
            )
        if key not in known:
            raise InputError(f"--config.{key}: no such config key{_suggest(key, known)}")
        *parents, leaf = key.split(".")
        section = cfg
        for part in parents:
            section = section[part]
        value = _parse(text, section[leaf], section.get_ref(leaf).get_type(), name=key)
        _assign(section, leaf, value, name=key)
