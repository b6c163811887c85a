"""jaxdl: train neural networks the JAX way, from Python or the `jaxdl` command."""

from jaxdl.version import __version__

from jaxdl import callbacks, ensemble
from jaxdl.callbacks import Callback, EarlyStopping, Hook, ReduceLROnPlateau
from jaxdl.api import evaluate, fit, predict
from jaxdl.config import default_config
from jaxdl.errors import InputError
from jaxdl.loop import History
from jaxdl.models import CNN, MLP
from jaxdl.privacy import Privacy
from jaxdl.run import train_and_evaluate
from jaxdl.saving import load, save
from jaxdl.state import TrainState, params_sha256
from jaxdl.task import Task
from jaxdl.parallel import pmean, psum

__all__ = [
    "CNN",
    "Callback",
    "Task",
    "pmean",
    "psum",
    "EarlyStopping",
    "Hook",
    "ReduceLROnPlateau",
    "MLP",
    "Privacy",
    "History",
    "InputError",
    "TrainState",
    "__version__",
    "callbacks",
    "default_config",
    "ensemble",
    "evaluate",
    "fit",
    "params_sha256",
    "predict",
    "load",
    "save",
    "train_and_evaluate",
]
