"""Where and how steps run: the only package that compiles steps or knows about devices.

- `strategy`: single device, pmap replicas, or a device mesh; placing state
  and batches; splitting work inside a compiled call.
- `compiled`: the compiled train, eval and predict calls (one step, K steps
  fused with `lax.scan`, or a whole epoch on a split held on the device).
- `collectives`: `psum` / `pmean` for steps that sum over the batch, which
  under pmap must also sum over the devices sharing it.
- `runtime`: hosts (`jax.distributed`), compile time, the compilation cache,
  copies to the host.
"""

from jaxdl.parallel.collectives import pmean, psum
from jaxdl.parallel.compiled import (
    check_pmap_step,
    compile_epoch_plan,
    compile_eval_step,
    compile_predict_step,
    compile_resident_epoch,
    compile_resident_train_steps,
    compile_train_step,
    compile_train_steps,
    init_state,
    loops_are_slow,
    sorts_are_slow,
    to_device,
)
from jaxdl.compile_time import check_seconds, checking, compile_seconds
from jaxdl.parallel.runtime import (
    all_finite,
    default_compilation_cache_dir,
    device_summary,
    enable_compilation_cache,
    fetch,
    fetch_totals,
    fingerprint,
    initialize_distributed,
    process_shard,
)
from jaxdl.parallel.strategy import (
    KINDS,
    SINGLE,
    Strategy,
    choose,
    local,
    place_batch,
    place_state,
    state_shardings,
)

__all__ = [
    "all_finite",
    "KINDS",
    "SINGLE",
    "Strategy",
    "check_pmap_step",
    "choose",
    "compile_epoch_plan",
    "compile_eval_step",
    "compile_predict_step",
    "compile_resident_epoch",
    "compile_resident_train_steps",
    "check_seconds",
    "checking",
    "compile_seconds",
    "compile_train_step",
    "compile_train_steps",
    "init_state",
    "default_compilation_cache_dir",
    "device_summary",
    "enable_compilation_cache",
    "fetch",
    "fetch_totals",
    "fingerprint",
    "initialize_distributed",
    "local",
    "loops_are_slow",
    "place_batch",
    "place_state",
    "pmean",
    "psum",
    "process_shard",
    "sorts_are_slow",
    "state_shardings",
    "to_device",
]
