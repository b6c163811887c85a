"""Benchmark: what a checkpoint costs, through jaxdl's orbax checkpointer, for states of 1 MB, 100 MB and 1 GB.

The state: a `TrainState` whose parameters are float32 arrays of 1 MB each
(the 1 MB state is one array), on the default device; the checkpoint goes to
local disk (a fresh temporary directory per case).

Cases, each `--repeats` times (median):
  async save, blocking   `Checkpointer.save` with async_save=True: the time
                         until training could go on (the arrays are copied
                         from the device and the fingerprint computed)
  async save, total      the same save until it is committed on disk
                         (`wait`)
  sync save              async_save=False: the whole save blocks
  restore                `Checkpointer.restore` of the newest checkpoint,
                         fingerprint check included
  of which fingerprint   `parallel.fingerprint` alone, on the state

    python benchmarks/checkpoint_cost.py              # rewrites this device's section of results.md
    python benchmarks/checkpoint_cost.py --sizes 1,100 --repeats 1 --no-write
"""

import argparse
import datetime
import shutil
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

import jaxdl
import report
from jaxdl import checkpoint, parallel
from jaxdl.state import TrainState

MB = 1 << 20


def make_state(megabytes: int) -> TrainState:
    """A state of `megabytes` MB of float32 parameters, each array 1 MB, with random values."""
    per_array = MB // 4
    keys = jax.random.split(jax.random.PRNGKey(0), megabytes)
    params = {f"w{i:04d}": jax.random.normal(key, (per_array,), jnp.float32) for i, key in enumerate(keys)}
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=(), rng=jax.random.PRNGKey(1), model_state={},
        tx=None,
    )


def measure(state: TrainState, repeats: int) -> dict:
    totals = {"loss_sum": np.zeros((), np.float32), "count": np.zeros((), np.float32)}
    position = checkpoint.Position(1, 0)
    times = {"blocking": [], "total": [], "sync": [], "restore": [], "fingerprint": []}
    for repeat in range(repeats):
        for async_save in (True, False):
            directory = tempfile.mkdtemp(prefix="jaxdl-ckpt-bench-")
            try:
                saver = checkpoint.Checkpointer(directory, keep=1, keep_best=0, async_save=async_save)
                step_state = state.replace(step=jnp.asarray(repeat + 1, jnp.int32))
                jax.block_until_ready(step_state)
                start = time.perf_counter()
                saver.save(step_state, totals, position, meta={})
                blocking = time.perf_counter() - start
                saver.wait()
                total = time.perf_counter() - start
                if async_save:
                    times["blocking"].append(blocking)
                    times["total"].append(total)
                    start = time.perf_counter()
                    restored, _, _ = saver.restore(repeat + 1, state, totals)
                    jax.block_until_ready(restored)
                    times["restore"].append(time.perf_counter() - start)
                else:
                    times["sync"].append(total)
                saver.close()
            finally:
                shutil.rmtree(directory, ignore_errors=True)
        start = time.perf_counter()
        parallel.fingerprint(checkpoint.state_tree(state))
        times["fingerprint"].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100,1024", help="state sizes in MB, comma-separated")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the table without writing results.md")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    measure(make_state(1), 1)  # warm-up: compiles, thread pools
    results = {}
    for megabytes in sizes:
        state = make_state(megabytes)
        results[megabytes] = measure(state, args.repeats)
        del state
        r = results[megabytes]
        print(f"{megabytes} MB: blocking {r['blocking']:.3f} s, total {r['total']:.3f} s, restore {r['restore']:.3f} s",
              file=sys.stderr)
    lines = [
        f"### checkpoint_cost.py, {report.device_label()}",
        "",
        f"{datetime.date.today().isoformat()}; jaxdl {jaxdl.__version__}, jax {jax.__version__}, orbax-checkpoint "
        f"{ocp.__version__}; local disk; float32 parameters in 1 MB arrays; medians of {args.repeats}; seconds.",
        "",
        "| state | async save: blocking | async save: total | blocking / total | sync save | restore | fingerprint alone | write MB/s (async total) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for megabytes, r in results.items():
        label = f"{megabytes / 1024:g} GB" if megabytes >= 1024 else f"{megabytes} MB"
        lines.append(
            f"| {label} | {r['blocking']:.3f} | {r['total']:.3f} | {r['blocking'] / r['total']:.0%} | {r['sync']:.3f} | "
            f"{r['restore']:.3f} | {r['fingerprint']:.3f} | {megabytes / r['total']:,.0f} |"
        )
    report.emit(lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
