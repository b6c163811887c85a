"""Seconds spent compiling, counted process-wide from JAX's own events; abstract checks counted apart.

Compiling a program is tracing it, lowering it and compiling it with XLA (or
fetching it from the persistent cache). jaxdl's checks before training trace
too (`jax.eval_shape`), but produce no program: inside `checking()` their
tracing counts as checking, not compiling.
"""

import contextlib
import threading

import jax

_EVENTS = frozenset({
    "/jax/core/compile/jaxpr_trace_duration",
    "/jax/core/compile/jaxpr_to_mlir_module_duration",
    "/jax/core/compile/backend_compile_duration",
})
_totals = {"compile": 0.0, "check": 0.0}
_local = threading.local()


def _on_duration(name: str, seconds: float, **kwargs) -> None:
    if name in _EVENTS:
        _totals["check" if getattr(_local, "checking", 0) else "compile"] += seconds


jax.monitoring.register_event_duration_secs_listener(_on_duration)


def compile_seconds() -> float:
    """Seconds this process has spent compiling so far; take differences to time a stretch of work."""
    return _totals["compile"]


def check_seconds() -> float:
    """Seconds this process has spent tracing abstractly for checks (`checking()`) so far."""
    return _totals["check"]


@contextlib.contextmanager
def checking():
    """Counts the tracing inside as checking (abstract evaluation for checks), not as compiling."""
    _local.checking = getattr(_local, "checking", 0) + 1
    try:
        yield
    finally:
        _local.checking -= 1
