"""The researcher's model as pure functions: any Flax Linen module, or a Flax NNX module kept functional.

A model maps a batch of inputs to the output layer's pre-activation values
(logits, or raw outputs for regression); the loss states the head (sigmoid,
softmax, identity), so a model never applies it in training. `Model` gives
every kind of module the same two pure functions:

    variables = model.init(rng, x)
    outputs, new_model_state = model.apply(variables, x, train=..., rng=...)

- Linen: `module.init` / `module.apply`. Keyword arguments are passed only
  when `__call__` names them: `train` (dropout, batch statistics) and
  `logits=True` (jaxdl's own models, which apply their output activation
  otherwise). A `**kwargs` catch-all gets nothing.
- NNX: `nnx.split` outside the compiled step and `nnx.merge` inside it, so
  the hot path is a plain traced function (no `nnx.jit`, which walks the
  object graph in Python on every call). `train` switches the module with
  `.train()` / `.eval()`; dropout keys come from the step's key
  (`nnx.reseed`), never from state carried in the module. Pass an instance
  (its weights are the starting point) or a factory `rngs -> module` (each
  seed, and each ensemble member, initialises its own weights).
"""

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax

from jaxdl.errors import InputError


def _nnx():
    from flax import nnx  # imported where used: most runs are Linen

    return nnx


def _accepts(fn: Callable, name: str) -> bool:
    """Whether `fn` names a parameter `name` (a `**kwargs` catch-all does not count)."""
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    found = parameters.get(name)
    return found is not None and found.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A module as `init` / `apply` functions; build one with `wrap`."""

    module: Any
    kind: str  # "linen" or "nnx"
    init: Callable[[jax.Array, jax.Array], dict]
    apply: Callable[..., tuple[jax.Array, dict]]
    head: str | None = None  # the output activation a jaxdl model declares (for its default loss)
    factory: bool = False  # an NNX factory rngs -> module: each seed initialises its own weights

    @property
    def name(self) -> str:
        """The module's class name (a factory's function name)."""
        if self.factory:
            return getattr(self.module, "__name__", "factory")
        return type(self.module).__name__


def wrap(module, *, argument: str = "model") -> Model:
    """The pure `Model` of a Linen module, an NNX module, or a factory `rngs -> nnx.Module`.

    Raises:
      InputError: for anything else, saying what is accepted.
    """
    if isinstance(module, nn.Module):
        return _linen(module)
    nnx = _nnx()
    if isinstance(module, nnx.Module):
        return _nnx_model(module, factory=None)
    if callable(module) and not isinstance(module, type):
        return _nnx_model(None, factory=module)
    raise InputError(
        f"{argument}={type(module).__name__}: expected a Flax Linen module (flax.linen.Module), a Flax NNX module "
        "(flax.nnx.Module), or a function rngs -> nnx.Module"
    )


def _linen(module: nn.Module) -> Model:
    call = type(module).__call__
    train_kw, logits_kw = _accepts(call, "train"), _accepts(call, "logits")

    def init(rng, x):
        kwargs = {"train": False} if train_kw else {}
        return dict(module.init(rng, x, **kwargs))

    def apply(variables, x, *, train: bool = False, rng=None, mutable_state: bool = True):
        kwargs = {}
        if train_kw:
            kwargs["train"] = train
        if logits_kw:
            kwargs["logits"] = True
        collections = [k for k in variables if k != "params"]
        mutable = collections if (train and collections and mutable_state) else False
        rngs = {"dropout": rng} if rng is not None else {}
        result = module.apply(variables, x, rngs=rngs, mutable=mutable, **kwargs)
        outputs, updates = result if mutable else (result, {})
        model_state = {k: v for k, v in variables.items() if k != "params"}
        return outputs, {**model_state, **updates}

    return Model(module=module, kind="linen", init=init, apply=apply, head=getattr(module, "output_activation", None))


def _nnx_model(instance, *, factory) -> Model:
    nnx = _nnx()
    template = instance if instance is not None else nnx.eval_shape(lambda: factory(nnx.Rngs(0)))
    graphdef, _, _, _ = nnx.split(template, nnx.Param, nnx.RngState, ...)

    def split_vars(module) -> dict:
        _, params, _, rest = nnx.split(module, nnx.Param, nnx.RngState, ...)
        return {"params": nnx.to_pure_dict(params), "state": nnx.to_pure_dict(rest)}

    if instance is not None:
        start = split_vars(instance)

        def init(rng, x):
            del rng, x  # an instance starts from its own weights
            return jax.tree.map(lambda a: a, start)
    else:

        def init(rng, x):
            del x
            return split_vars(factory(nnx.Rngs(rng)))

    def apply(variables, x, *, train: bool = False, rng=None, mutable_state: bool = True):
        module = nnx.merge(graphdef, _with_values(template, nnx.Param, variables["params"]),
                           _state_of(template, nnx.RngState), _with_values(template, ..., variables["state"]))
        module.train() if train else module.eval()
        if rng is not None:
            nnx.reseed(module, dropout=rng, default=rng)
        outputs = module(x)
        _, _, _, rest = nnx.split(module, nnx.Param, nnx.RngState, ...)
        new_state = nnx.to_pure_dict(rest) if (train and mutable_state) else variables["state"]
        return outputs, {"state": new_state}

    return Model(module=instance if instance is not None else factory, kind="nnx", init=init, apply=apply,
                 factory=instance is None)


def _state_of(template, kind):
    """A fresh copy (new Variable objects, usable inside a trace) of the template's state of one kind."""
    nnx = _nnx()
    _, params, rngs, rest = nnx.split(template, nnx.Param, nnx.RngState, ...)
    chosen = params if kind is nnx.Param else rngs if kind is nnx.RngState else rest
    return jax.tree.map(lambda v: v, chosen)


def _with_values(template, kind, values: dict):
    """The template's state of `kind` with its values replaced by the pure dict `values`."""
    nnx = _nnx()
    state = _state_of(template, kind)
    nnx.replace_by_pure_dict(state, values)
    return state
