"""Tasks other than supervised learning: each a module with `default_config()` and `build(cfg) -> runner.Task`.

A config chooses its task with its `task` key ("supervised", the default, runs
through `jaxdl.run`); `jaxdl train` sends the others here.
"""

import importlib

import ml_collections

from jaxdl.errors import InputError
from jaxdl.tasks import runner

NAMES = ("autoencoder", "language_model", "gan")


def module(name: str):
    """The module of task `name`.

    Raises:
      InputError: for an unknown task, listing the known ones.
    """
    if name not in NAMES:
        raise InputError(f"task={name!r} is not a known task; expected one of: supervised, {', '.join(NAMES)}")
    return importlib.import_module(f"jaxdl.tasks.{name}")


def default_config(name: str) -> ml_collections.ConfigDict:
    """The defaults of task `name`: the shared settings plus its own."""
    return module(name).default_config()


def train_and_evaluate(cfg: ml_collections.ConfigDict, workdir: str | None, **options) -> dict:
    """Builds the config's task (checking its settings first) and trains it; see `runner.train_and_evaluate`."""
    task = module(cfg.task).build(cfg)
    return runner.train_and_evaluate(cfg, workdir, task, **options)
