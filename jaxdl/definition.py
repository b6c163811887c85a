"""A Flax Linen module's definition as JSON: its class, by import path, and the fields it was built with.

A Linen module is a dataclass: `MLP(hidden=(12, 8), num_outputs=1)` is
rebuilt from "jaxdl.models:MLP" and its fields. Field values may be JSON
numbers, strings, booleans and None, tuples and lists, dicts, dtypes,
nested Linen modules, and functions that can be imported by name (such as
`nn.relu`). No pickle: loading imports the class by name and calls it with
those fields. An NNX module has no such description (its constructor's
arguments are not kept): loading one needs the module passed in.
"""

import dataclasses
import importlib

import flax.linen as nn
import numpy as np

from jaxdl.errors import InputError


class Undescribable(Exception):
    """A module (or one of its fields) that cannot be written down as a definition."""


# Where JAX and Flax publish what they define in private modules (jax._src...): names there outlive versions.
PUBLIC = ("jax.nn", "jax.numpy", "flax.linen", "optax")


def _reference(obj) -> str:
    """ "package.module:Qualified.name", checked to import back to the same object (a public name when there is one)."""
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not name or "<" in name:
        raise Undescribable(f"{obj!r} has no importable name")
    if "._" in module:
        for public in PUBLIC:
            if resolve(f"{public}:{name}", check=False) is obj:
                return f"{public}:{name}"
    if module != "__main__" and resolve(f"{module}:{name}", check=False) is not obj:
        raise Undescribable(f"{module}:{name} does not import back to {obj!r}")
    return f"{module}:{name}"


def resolve(reference: str, *, check: bool = True):
    """The object that "package.module:Qualified.name" names.

    Raises:
      InputError (when `check`): when the module or name cannot be found.
    """
    module_name, _, name = reference.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        if not check:
            return None
        raise InputError(f"{reference!r} cannot be imported here ({type(err).__name__}: {err})") from None
    return obj


def _encode(value, where: str):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return {"tuple" if isinstance(value, tuple) else "list": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"dict": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if isinstance(value, nn.Module):
        return {"module": describe(value)}
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"dtype": np.dtype(value).name}
    if hasattr(value, "dtype") and isinstance(value, type):  # jnp.float32 and friends
        return {"dtype": np.dtype(value.dtype).name}
    if callable(value):
        try:
            return {"function": _reference(value)}
        except Undescribable as err:
            raise Undescribable(f"field {where}: {err}") from None
    raise Undescribable(f"field {where} holds a {type(value).__name__}, which a definition cannot hold")


def _decode(value):
    if not isinstance(value, dict):
        return value
    (kind, content), = value.items()
    if kind == "tuple":
        return tuple(_decode(v) for v in content)
    if kind == "list":
        return [_decode(v) for v in content]
    if kind == "dict":
        return {k: _decode(v) for k, v in content.items()}
    if kind == "module":
        return build(content)
    if kind == "dtype":
        import jax.numpy as jnp

        return jnp.dtype(content)
    if kind == "function":
        return resolve(content)
    raise InputError(f"a module definition holds an unknown kind of value {kind!r}")


def describe(module: nn.Module) -> dict:
    """`{"class": "package.module:Name", "fields": {...}}` of a Linen module.

    Raises:
      Undescribable: when the class cannot be imported by name or a field
        holds something a definition cannot (an array, a lambda, ...).
    """
    if not isinstance(module, nn.Module):
        raise Undescribable(f"{type(module).__name__} is not a Flax Linen module")
    fields = {}
    for field in dataclasses.fields(module):
        if field.name in ("parent", "name") or not field.init:
            continue
        fields[field.name] = _encode(getattr(module, field.name), field.name)
    return {"class": _reference(type(module)), "fields": fields}


def build(definition: dict) -> nn.Module:
    """The Linen module a definition describes, built anew.

    Raises:
      InputError: when its class cannot be imported here (for a class
        defined in a script or notebook: run that definition first, or pass
        the module itself), or does not take the saved fields.
    """
    reference = definition["class"]
    cls = resolve(reference, check=False)
    if cls is None:
        where = ("it was defined in a script or notebook (__main__): define it again before loading, or "
                 if reference.startswith("__main__:") else "")
        raise InputError(f"the saved model's class {reference!r} cannot be imported here; {where}pass the module itself: "
                         "jaxdl.load(path, model=MyModel(...))")
    try:
        return cls(**{k: _decode(v) for k, v in definition["fields"].items()})
    except TypeError as err:
        raise InputError(f"the saved model's class {reference!r} does not take its saved fields here ({err}); "
                         "has its definition changed? pass the module itself: jaxdl.load(path, model=...)") from None
