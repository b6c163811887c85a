"""A Keras-like summary of a Flax model: its layers, their output shapes and parameter counts.

Nothing is computed on real data and no parameter is allocated: the model is
initialised under `jax.eval_shape` and traced once with `jax.make_jaxpr`, with
a symbolic batch dimension, so the table shows the batch as `None` like Keras
does and costs the same for a 12-8-1 MLP as for a large CNN.

The rows are the input, every Flax submodule that the model calls (in the order
of the calls, nested ones named by path, e.g. `block_0/conv`), and the
parameter-free layers that the model applies as plain functions and that can be
recognised in the traced computation: pooling (`nn.max_pool`, `nn.avg_pool`)
and flattening `(batch, ...) -> (batch, n)`. Activation functions are part of
the layer before them, as in Keras's `Dense(12, activation="relu")`.
"""

import dataclasses
import inspect
import re
from collections.abc import Iterator, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from jax import lax

from jaxdl.errors import InputError

# A dimension of an output shape: an int, None for the batch, or a string for an
# expression of the batch size (e.g. "2*batch" after a concatenation).
Dim = int | str | None
Shape = tuple[Dim, ...]

BATCH = "batch"  # the name of the symbolic batch dimension in the trace
BIAS_NAMES = ("bias",)  # Flax names every bias "bias" (Dense, Conv, norms, ...)
_MARKER = "jaxdl_summary_call_"
_MARKER_RE = re.compile(_MARKER + r"(\d+)")
_COUNTS = ("weights", "biases", "state", "param_bytes", "state_bytes")


@dataclasses.dataclass(frozen=True)
class Row:
    """One layer of a summary.

    Attributes:
      name: the layer's name: its module path joined with "/", "input", or the
        name given to a recognised function ("max_pool", "flatten", ...).
      type: the module's class name ("Dense", "Conv", ...), "Input", or the
        recognised function ("MaxPool", "AvgPool", "Flatten", ...).
      output_shapes: the shape of each array the layer returns, the batch
        dimension shown as None.
      weights: trainable entries that are not biases (kernels, embeddings,
        normalisation scales).
      biases: trainable bias entries.
      state: non-trainable entries (other collections than "params", e.g.
        batch statistics).
      param_bytes: bytes of the trainable entries, at their own dtypes.
      state_bytes: bytes of the non-trainable entries.
    """

    name: str
    type: str
    output_shapes: tuple[Shape, ...]
    weights: int = 0
    biases: int = 0
    state: int = 0
    param_bytes: int = 0
    state_bytes: int = 0

    @property
    def output_shape(self) -> Shape:
        """The shape of the layer's one output array; ValueError for a layer with several."""
        if len(self.output_shapes) != 1:
            raise ValueError(f"layer {self.name!r} returns {len(self.output_shapes)} arrays; see output_shapes")
        return self.output_shapes[0]

    @property
    def trainable(self) -> int:
        """Trainable entries: weights + biases."""
        return self.weights + self.biases

    @property
    def params(self) -> int:
        """Every entry the layer holds, trainable or not: Keras's "Param #"."""
        return self.weights + self.biases + self.state


@dataclasses.dataclass(frozen=True)
class Summary:
    """The layers of a model and their totals.

    Attributes:
      model_name: the model's class name.
      rows: the layers, input first, in the order the model calls them.
      batch_size: None when the batch dimension was traced symbolically (the
        usual case); the concrete size used when the model needed one.
    """

    model_name: str
    rows: tuple[Row, ...]
    batch_size: int | None = None

    @property
    def total_weights(self) -> int:
        return sum(r.weights for r in self.rows)

    @property
    def total_biases(self) -> int:
        return sum(r.biases for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable for r in self.rows)

    @property
    def non_trainable_params(self) -> int:
        return sum(r.state for r in self.rows)

    @property
    def total_params(self) -> int:
        """Every entry of every variable collection, as Keras's "Total params"."""
        return self.trainable_params + self.non_trainable_params

    @property
    def trainable_bytes(self) -> int:
        return sum(r.param_bytes for r in self.rows)

    @property
    def non_trainable_bytes(self) -> int:
        return sum(r.state_bytes for r in self.rows)

    @property
    def total_bytes(self) -> int:
        return self.trainable_bytes + self.non_trainable_bytes

    def table(self) -> str:
        """Renders the summary as a Keras-like fixed-width text table.

        Returns:
          The table: a header, one line per layer, and the totals
          ("Total params: 485 (1.89 KB)", trainable, non-trainable, weights and
          biases). A "State" column appears only for models with non-trainable
          variables.
        """
        columns = ["Weights", "Biases"] + (["State"] if self.non_trainable_params else []) + ["Param #"]
        lines = []
        for r in self.rows:
            counts = [r.weights, r.biases] + ([r.state] if self.non_trainable_params else []) + [r.params]
            lines.append((f"{r.name} ({r.type})", _format_shapes(r.output_shapes), [f"{c:,}" for c in counts]))
        name_width = max([28] + [len(n) for n, _, _ in lines]) + 2
        shape_width = max([22] + [len(s) for _, s, _ in lines]) + 2
        count_width = max([9] + [len(c) for _, _, cs in lines for c in cs]) + 2

        def line(name: str, shape: str, counts: list[str]) -> str:
            numbers = "".join(c.rjust(count_width) for c in counts)
            return (" " + name.ljust(name_width) + shape.ljust(shape_width) + numbers).rstrip()

        width = 1 + name_width + shape_width + count_width * len(columns)
        out = [f'Model: "{self.model_name}"', "_" * width, line("Layer (type)", "Output Shape", columns), "=" * width]
        out += [line(*parts) for parts in lines]
        out += [
            "=" * width,
            f"Total params: {self.total_params:,} ({_readable_bytes(self.total_bytes)})",
            f"Trainable params: {self.trainable_params:,} ({_readable_bytes(self.trainable_bytes)})",
            f"Non-trainable params: {self.non_trainable_params:,} ({_readable_bytes(self.non_trainable_bytes)})",
            f"Weights: {self.total_weights:,}, biases: {self.total_biases:,}",
            "_" * width,
        ]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()


def summarize(
    model: nn.Module,
    input_shape: tuple[int, ...],
    *,
    dtype: Any = jnp.float32,
    call_kwargs: Mapping[str, Any] | None = None,
) -> Summary:
    """Summarises a Flax Linen model's layers for inputs of shape `(batch, *input_shape)`.

    Args:
      model: an unbound Flax Linen module, called as `model.apply(variables, x,
        **call_kwargs)`.
      input_shape: the shape of one example, without the batch dimension, e.g.
        (30,) for 30 features or (28, 28, 1) for an image.
      dtype: the dtype of the inputs (e.g. jnp.int32 for token ids).
      call_kwargs: keyword arguments for `init` and `apply`; by default
        `train=False` when the model's `__call__` takes `train`.

    Returns:
      The summary: rows per layer and totals; `.table()` renders it.

    Raises:
      InputError: for a model that is not a Flax Linen module, a bad
        `input_shape`, or a model that cannot take inputs of that shape.
    """
    if not isinstance(model, nn.Module):
        raise InputError(f"model={type(model).__name__}: expected a Flax Linen module (flax.linen.Module)")
    input_shape = _check_input_shape(input_shape)
    if call_kwargs is None:
        call_kwargs = {"train": False} if "train" in _call_parameters(model) else {}
    try:
        # A symbolic batch shows as None and proves that no layer depends on the batch size.
        x = jax.ShapeDtypeStruct(jax.export.symbolic_shape(", ".join([BATCH, *map(str, input_shape)])), dtype)
        return _summarize(model, x, dict(call_kwargs), batch_size=None)
    except Exception:  # noqa: BLE001 - some models branch on the batch size; retry with a concrete one
        pass
    x = jax.ShapeDtypeStruct((1, *input_shape), dtype)
    try:
        return _summarize(model, x, dict(call_kwargs), batch_size=1)
    except Exception as e:
        raise InputError(
            f"input_shape={input_shape!r}: {type(model).__name__} failed on inputs of shape "
            f"(batch, {', '.join(map(str, input_shape))}): {type(e).__name__}: {e}"
        ) from e


def _call_parameters(model: nn.Module) -> tuple[str, ...]:
    """The names of the parameters of `model.__call__`, () when they cannot be read."""
    try:
        return tuple(inspect.signature(model.__call__).parameters)
    except (AttributeError, TypeError, ValueError):
        return ()


def _check_input_shape(input_shape: Any) -> tuple[int, ...]:
    """Returns `input_shape` as a tuple, or raises InputError naming it."""
    ok = isinstance(input_shape, (tuple, list)) and all(
        isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in input_shape
    )
    if not ok:
        raise InputError(
            f"input_shape={input_shape!r}: expected a tuple of positive integers, the shape of one "
            "example without the batch dimension, e.g. (30,) or (28, 28, 1)"
        )
    return tuple(int(d) for d in input_shape)


def _summarize(model: nn.Module, x: jax.ShapeDtypeStruct, call_kwargs: dict, *, batch_size: int | None) -> Summary:
    """Traces `model` on the abstract input `x` and builds its summary."""
    rngs = lambda: {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}  # noqa: E731
    variables = jax.eval_shape(lambda x: model.init(rngs(), x, **call_kwargs), x)
    calls: list[tuple[str, ...]] = []  # module path of each intercepted call, by call index
    outputs: dict[tuple[str, ...], tuple[Shape, ...]] = {}  # first output shapes of each module
    types: dict[tuple[str, ...], str] = {}

    def interceptor(next_fun, args, kwargs, context):
        if context.method_name == "setup":
            return next_fun(*args, **kwargs)
        path = tuple(context.module.path)
        calls.append(path)
        # Every op traced inside this call carries the marker in its name stack, so
        # the ops outside every child module can be told apart; the iota gives each
        # call at least one op, which places calls that compute nothing (an inactive
        # Dropout) in order.
        with jax.named_scope(f"{_MARKER}{len(calls) - 1}"):
            lax.iota(np.int32, 1)
            out = next_fun(*args, **kwargs)
        if path not in outputs:
            outputs[path] = tuple(_shape(leaf.shape) for leaf in jax.tree.leaves(out) if hasattr(leaf, "shape"))
            types[path] = type(context.module).__name__
        return out

    with nn.intercept_methods(interceptor):
        jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, rngs=rngs(), **call_kwargs))(variables, x)

    counts = _variable_counts(variables)
    root = ()
    containers = {p[:i] for p in outputs for i in range(len(p))}
    rows = [Row("input", "Input", (_shape(x.shape),))]
    emitted: set[tuple[str, ...]] = set()
    for call, eqn, next_eqn in _owned_eqns(jaxpr.jaxpr):
        path = calls[call] if call is not None else root
        if path not in emitted:
            emitted.add(path)
            # A module that calls others is shown through them (its name prefixes
            # theirs), and by its own row only for variables it holds itself.
            if path not in containers or path in counts:
                rows.append(_module_row(path, types.get(path, "?"), outputs.get(path, ()), counts.get(path)))
        if path in containers:
            layer = _recognise(eqn, next_eqn)
            if layer is not None:
                name, kind, shape = layer
                name = _unique(name, {r.name for r in rows} | {"/".join(p) for p in outputs})
                rows.append(Row(name, kind, (_shape(shape),)))
    # Variables of modules that were never called (e.g. created in setup and read
    # directly) still count, so the totals always equal the model's variables.
    for path in sorted(counts.keys() - emitted):
        rows.append(_module_row(path, types.get(path, "?"), outputs.get(path, ()), counts[path]))
    return Summary(type(model).__name__, tuple(rows), batch_size)


def _owned_eqns(jaxpr, owner: int | None = None) -> Iterator[tuple[int | None, Any, Any]]:
    """Yields (index of the innermost module call, eqn, next eqn) over a jaxpr and the jaxprs it calls."""
    eqns = jaxpr.eqns
    for i, eqn in enumerate(eqns):
        found = _MARKER_RE.findall(str(eqn.source_info.name_stack))
        call = int(found[-1]) if found else owner
        yield call, eqn, eqns[i + 1] if i + 1 < len(eqns) else None
        for sub in _called_jaxprs(eqn.params):
            yield from _owned_eqns(sub, call)


def _called_jaxprs(params: Mapping[str, Any]) -> Iterator[Any]:
    """The jaxprs an eqn calls (jit, custom_jvp, remat, scan and loop bodies); cond's branches are left out."""
    for value in params.values():
        if hasattr(value, "eqns"):
            yield value
        elif hasattr(getattr(value, "jaxpr", None), "eqns"):
            yield value.jaxpr


def _recognise(eqn, next_eqn) -> tuple[str, str, tuple] | None:
    """Names a parameter-free layer applied as a function: (name, type, output shape), or None."""
    prim = eqn.primitive.name
    out = eqn.outvars[0].aval.shape if eqn.outvars else ()
    if prim == "reduce_window_max":
        return "max_pool", "MaxPool", out
    if prim == "reduce_window_min":
        return "min_pool", "MinPool", out
    if prim == "reduce_window_sum":
        # nn.avg_pool is a sum pool followed by a division by the window size.
        averaged = next_eqn is not None and next_eqn.primitive.name == "div" and next_eqn.invars[0] is eqn.outvars[0]
        return ("avg_pool", "AvgPool", out) if averaged else ("sum_pool", "SumPool", out)
    if prim == "reduce_window":
        return "pool", "Pool", out
    if prim == "reshape":
        before = eqn.invars[0].aval.shape
        if len(before) > 2 and len(out) == 2 and _same_dim(before[0], out[0]):
            return "flatten", "Flatten", out
    return None


def _same_dim(a, b) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - symbolic dimensions may refuse to compare
        return False


def _variable_counts(variables: Mapping[str, Any]) -> dict[tuple[str, ...], dict[str, int]]:
    """Counts the entries of every variable by the module path that owns it.

    Returns:
      Per module path that owns variables: its weights, biases, state,
      param_bytes and state_bytes (the count fields of `Row`).
    """
    counts: dict[tuple[str, ...], dict[str, int]] = {}
    for collection, tree in nn.meta.unbox(dict(variables)).items():
        if collection == "intermediates":  # sown values, not variables of the model
            continue
        for key, leaf in traverse_util.flatten_dict(dict(tree)).items():
            size = int(np.prod(leaf.shape, dtype=np.int64))
            nbytes = size * np.dtype(leaf.dtype).itemsize
            c = counts.setdefault(tuple(key[:-1]), dict.fromkeys(_COUNTS, 0))
            if collection != "params":
                c["state"] += size
                c["state_bytes"] += nbytes
            else:
                c["biases" if key[-1] in BIAS_NAMES else "weights"] += size
                c["param_bytes"] += nbytes
    return counts


def _module_row(path: tuple[str, ...], kind: str, shapes: tuple[Shape, ...], counts: Mapping[str, int] | None) -> Row:
    """The row of the module at `path`, with the counts of the variables it owns itself."""
    name = "/".join(path) if path else _snake(kind)
    return Row(name, kind, shapes, **(counts or {}))


def _shape(shape: tuple) -> Shape:
    """A traced shape with the batch dimension as None and other symbolic dimensions as strings."""
    return tuple(int(d) if isinstance(d, (int, np.integer)) else (None if str(d) == BATCH else str(d)) for d in shape)


def _format_shapes(shapes: tuple[Shape, ...]) -> str:
    return str(shapes[0]) if len(shapes) == 1 else "[" + ", ".join(map(str, shapes)) + "]"


def _readable_bytes(n: float) -> str:
    """Bytes in binary units with two decimals, as Keras prints them: 1940 -> "1.89 KB"."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024:
            return f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} PB"


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or `name_1`, `name_2`, ... like Keras, whichever is not taken yet."""
    candidate, i = name, 0
    while candidate in taken:
        i += 1
        candidate = f"{name}_{i}"
    return candidate


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
