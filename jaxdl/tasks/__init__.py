"""The built-in tasks, and what building one from a config gives the trainer.

Every task module has `default_config()` (the shared sections of
`config.base_config` plus its own keys) and `build(cfg) -> Built`: the Task
(`jaxdl.task`), its data splits, and how to describe and report it. A
config picks its task with its `task` key; `jaxdl.run` trains every task the
same way.
"""

import dataclasses
from collections.abc import Callable

import ml_collections

from jaxdl import config as config_lib, data, parallel
from jaxdl.errors import InputError
from jaxdl.task import Task

NAMES = config_lib.TASKS


@dataclasses.dataclass(frozen=True)
class Built:
    """A task built from a config, with its data.

    Attributes:
      task: the Task.
      splits: train / validation / test splits (in-memory `data.Examples` or
        `data.ArrayDataset`, or file-backed sources), the host transform of
        their batches, and the fitted scaler and dataset info where there is one.
      description: printed before training (data, model, parameters).
      select: the figure that `ensemble.select="auto"` and
        `checkpoint.best_metric="auto"` mean, e.g. "accuracy" or "loss".
      headline: summary -> the result line the command prints.
    """

    task: Task
    splits: data.Splits
    description: str
    select: str = "loss"
    headline: Callable[[dict], str] | None = None


def module(name: str):
    """The module of task `name`: built in, or a researcher's task file (see `config.task_module`).

    Raises:
      InputError: for an unknown task, listing the known ones.
    """
    return config_lib.task_module(name)


def build(cfg: ml_collections.ConfigDict) -> Built:
    """The config's task, built (and its own settings checked) with its data."""
    return module(cfg.task).build(cfg)


def check_positive_int(value, name: str) -> int:
    """`value` as an int, or an InputError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name}={value!r}: expected a positive integer")
    return value


def steps_per_epoch(cfg: ml_collections.ConfigDict, num_examples: int) -> int:
    """Steps in one epoch of `num_examples` at the config's batch size, over this run's processes.

    Raises:
      InputError: for a batch size larger than the split, or one that does
        not divide over the processes.
    """
    data.check_batch_size(cfg.train.batch_size, num_examples, argument="train.batch_size")
    shard_count = parallel.process_shard()[1]
    if cfg.train.batch_size % shard_count:
        raise InputError(f"train.batch_size={cfg.train.batch_size} does not divide over the {shard_count} processes "
                         f"of this run; expected a multiple of {shard_count}")
    return data.steps_per_epoch(num_examples, cfg.train.batch_size // shard_count, shard_count=shard_count,
                                drop_remainder=cfg.train.drop_remainder)
