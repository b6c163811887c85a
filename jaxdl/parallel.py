"""Where and how steps run: the only module that compiles steps or knows about devices.

For now everything runs on one device with `jax.jit`. Data-parallel pmap,
mesh sharding, vmapped ensembles and multi-step fusion grow here, around the
same pure steps from `step.py`.
"""

import functools
import os
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxdl import metrics, state as state_lib


# Compiled once per (model, input shape) in a process: repeated `fit` calls reuse it.
_compiled_init = jax.jit(state_lib.init_variables, static_argnums=(0, 2))


def create_state(
    model: nn.Module, tx: optax.GradientTransformation, *, rng: jax.Array, input_shape: tuple[int, ...]
) -> state_lib.TrainState:
    """Initialises a `TrainState`, the model's initialisation compiled as one program.

    Run op by op, initialisation compiles each of its dozens of small
    operations separately (about 1.5 s for the tutorial's network on a CPU).
    """
    return state_lib.create(model, tx, rng=rng, input_shape=input_shape, init=_compiled_init)


def compile_train_step(train_step: Callable) -> Callable:
    """Jit-compiles a train step that also adds its metric totals to running totals.

    Keeping the sum on the device means the host fetches metrics once per
    epoch, not once per step. The state and the running totals are donated:
    their buffers are reused for the outputs, so the caller must use the
    returned ones.

    Returns:
      step(state, totals, batch) -> (state, totals).
    """

    def step_and_accumulate(state, totals, batch):
        state, batch_totals = train_step(state, batch)
        return state, metrics.merge(totals, batch_totals)

    return jax.jit(step_and_accumulate, donate_argnums=(0, 1))


def _scan_steps(train_step: Callable, state, totals, batches):
    """Runs `train_step` over the leading axis of `batches` with `lax.scan`, summing the totals."""

    def body(carry, batch):
        state, totals = carry
        state, batch_totals = train_step(state, batch)
        return (state, metrics.merge(totals, batch_totals)), None

    (state, totals), _ = jax.lax.scan(body, (state, totals), batches)
    return state, totals


def compile_train_steps(train_step: Callable) -> Callable:
    """Jit-compiles K train steps in one call over host batches stacked on a leading axis of size K.

    Returns:
      steps(state, totals, batches) -> (state, totals). One compile per K.
    """
    return jax.jit(functools.partial(_scan_steps, train_step), donate_argnums=(0, 1))


def compile_resident_train_steps(train_step: Callable) -> Callable:
    """Jit-compiles `count` train steps in one call, their batches gathered on the device.

    Returns:
      steps(state, totals, arrays, indices, mask, start, count) -> (state, totals),
      where `arrays` holds the whole split ({"x", "y"}) on the device,
      `indices` and `mask` (steps, batch) are the epoch's plan, and the call
      runs plan rows `start` to `start + count`. `count` is static: one
      compile per distinct count (an epoch's last, shorter call is a second).
    """

    def gather_and_scan(state, totals, arrays, indices, mask, start, count):
        if count == 1:  # no loop: see `loops_are_slow`
            rows = jax.lax.dynamic_index_in_dim(indices, start, keepdims=False)
            batch = {
                "x": jnp.take(arrays["x"], rows, axis=0),
                "y": jnp.take(arrays["y"], rows, axis=0),
                "mask": jax.lax.dynamic_index_in_dim(mask, start, keepdims=False),
            }
            state, batch_totals = train_step(state, batch)
            return state, metrics.merge(totals, batch_totals)
        rows = jax.lax.dynamic_slice_in_dim(indices, start, count)
        batches = {
            "x": jnp.take(arrays["x"], rows, axis=0),  # (count, batch, ...)
            "y": jnp.take(arrays["y"], rows, axis=0),
            "mask": jax.lax.dynamic_slice_in_dim(mask, start, count),
        }
        return _scan_steps(train_step, state, totals, batches)

    return jax.jit(gather_and_scan, donate_argnums=(0, 1), static_argnames=("count",))


def compile_resident_epoch(train_step: Callable, plan: Callable) -> Callable:
    """Jit-compiles a whole epoch on a device-resident split: its plan and all its steps, one call.

    Returns:
      epoch(state, totals, arrays, seed, epoch) -> (state, totals).
    """

    def run_epoch(state, totals, arrays, seed, epoch):
        indices, mask = plan(seed, epoch)
        batches = {"x": jnp.take(arrays["x"], indices, axis=0), "y": jnp.take(arrays["y"], indices, axis=0), "mask": mask}
        return _scan_steps(train_step, state, totals, batches)

    return jax.jit(run_epoch, donate_argnums=(0, 1))


def loops_are_slow(model, input_shape: tuple[int, ...]) -> bool:
    """Whether fusing steps into a `lax.scan` loop would slow this model down on this backend.

    XLA's CPU backend runs convolutions inside a loop far slower than outside
    one: a small CNN trained 161 examples/s in a scan against 1,230 with one
    call per step (jax 0.10.2, 2 cores). Dense layers are not affected.
    """
    if jax.default_backend() != "cpu":
        return False
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, *input_shape), jnp.float32))
    jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x))(variables, jnp.zeros((1, *input_shape), jnp.float32))
    return "conv_general_dilated" in str(jaxpr)


def compile_epoch_plan(plan: Callable) -> Callable:
    """Jit-compiles plan(seed, epoch) -> (indices, mask), so each epoch's order is computed on the device."""
    return jax.jit(plan)


def to_device(tree):
    """Copies a pytree of host arrays to the default device once, to stay there."""
    return jax.device_put(tree)


def compile_eval_step(eval_step: Callable) -> Callable:
    """Jit-compiles an eval step that adds its totals to running totals.

    Returns:
      step(state, totals, batch) -> (totals, scores of the batch).
    """

    def step_and_accumulate(state, totals, batch):
        batch_totals, scores = eval_step(state, batch)
        return metrics.merge(totals, batch_totals), scores

    return jax.jit(step_and_accumulate, donate_argnums=(1,))


def compile_predict_step(predict_step: Callable) -> Callable:
    """Jit-compiles predict(state, x)."""
    return jax.jit(predict_step)


@jax.jit
def _pack(totals: dict) -> jax.Array:
    return jnp.stack([jnp.asarray(value, jnp.float32) for value in jax.tree.leaves(totals)])


def fetch_totals(totals: dict) -> dict[str, float]:
    """Copies metric totals to the host as one array: one transfer instead of one per metric.

    Per epoch of the tutorial's run this saves ~150 us of ~700 us.
    """
    return dict(zip(sorted(totals), np.asarray(_pack(totals)).tolist()))


def fetch(tree):
    """Copies a pytree of device arrays to host numpy arrays (waits for them)."""
    return jax.tree.map(np.asarray, jax.device_get(tree))


# Tracing, lowering and compiling (or fetching from the persistent cache): what a
# compile costs. Summed process-wide by a listener registered once, at import.
_COMPILE_EVENTS = frozenset({
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
})
_compile_total = [0.0]


def _on_duration(name: str, seconds: float, **kwargs) -> None:
    if name in _COMPILE_EVENTS:
        _compile_total[0] += seconds


jax.monitoring.register_event_duration_secs_listener(_on_duration)


def compile_seconds() -> float:
    """Seconds this process has spent compiling so far; take differences to time a stretch of work."""
    return _compile_total[0]


def default_compilation_cache_dir() -> str:
    """The per-user cache of compiled programs: $XDG_CACHE_HOME/jaxdl/jax, or ~/.cache/jaxdl/jax."""
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "jaxdl", "jax")


def enable_compilation_cache(directory: str) -> None:
    """Keeps compiled programs in `directory`, so that a rerun of the same shapes skips compiling."""
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory))
    # jaxdl's programs compile in well under JAX's default 1 s threshold; cache them all.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def process_shard() -> tuple[int, int]:
    """This process's share of the data: (`jax.process_index()`, `jax.process_count()`)."""
    return jax.process_index(), jax.process_count()


def device_summary() -> dict:
    """The devices this process computes on, for the run's manifest."""
    devices = jax.local_devices()
    return {"platform": devices[0].platform, "device_kind": devices[0].device_kind, "device_count": len(devices)}
