"""Benchmark: the overhead of data parallelism, on 1, 2, 4 and 8 simulated CPU devices.

Each device count runs in a subprocess of this script started with
XLA_FLAGS=--xla_force_host_platform_device_count=N and JAX_PLATFORMS=cpu
(the count must be set before jax is imported); it prints one JSON line per
case, which the parent collects into the table. The simulated devices share
the machine's cores, so on a small CPU this measures what splitting a batch
costs, not a speed-up.

Workloads (binary cross-entropy, adam lr 1e-3, the split held on the device):
  seed   the tutorial's 12-8-1 network on breast_cancer (455 rows) at batch 16,
         not 10, so that a batch divides over 8 devices: 29 steps per epoch
  wide   a 256-256-1 MLP on 8,192 synthetic rows of 30 features at batch 256:
         32 steps per epoch, enough work per step to split

Cases, per device count: `jaxdl.fit(..., parallel=P)` with P = single (on 1
device only), pmap and mesh, each with the whole epoch fused into one call
(steps_per_call="epoch") and with one step per call, alternated `--repeats`
times. The figure is training steps per second: steps per epoch over the
median epoch time (compiles excluded; the first epoch, which compiles, left
out), then the median over repeats; "x single" divides it by single's on 1
device in the same call mode.

    python benchmarks/data_parallel.py              # rewrites this device's section of results.md
    python benchmarks/data_parallel.py --epochs 3 --repeats 1 --devices 1,8 --no-write
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys

import jax
import numpy as np

import jaxdl
import report
from jaxdl import data

WORKLOADS = {"seed": ((12, 8), 16), "wide": ((256, 256), 256)}  # name: (hidden widths, batch)
CALLS = ("epoch", 1)


def workload_data(name: str):
    if name == "seed":
        train = data.load("breast_cancer").train
        return train.x, train.y
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8192, 30)).astype(np.float32)
    return x, (x @ rng.normal(size=30) > 0).astype(np.int32)


def steps_per_second(x, y, hidden, batch: int, kind: str, calls, epochs: int, seed: int) -> float:
    _, history = jaxdl.fit(
        jaxdl.MLP(hidden=hidden, num_outputs=1, output_activation="sigmoid"), (x, y), epochs=epochs + 1,
        batch_size=batch, optimizer="adam", loss="binary_crossentropy", seed=seed, pipeline="device",
        steps_per_call=calls, parallel=kind, verbose=False,
    )
    steps = history["step"][0]
    return steps / statistics.median(history["train_seconds"][1:])


def child(count: int, epochs: int, repeats: int) -> None:
    """Runs every case on this process's devices; prints one JSON line per case."""
    assert jax.device_count() == count, f"expected {count} devices, got {jax.device_count()}"
    kinds = ("single", "pmap", "mesh") if count == 1 else ("pmap", "mesh")
    for name, (hidden, batch) in WORKLOADS.items():
        x, y = workload_data(name)
        results = {(kind, calls): [] for kind in kinds for calls in CALLS}
        for repeat in range(repeats):
            for kind, calls in results:  # alternate so that drift hits every case alike
                results[kind, calls].append(steps_per_second(x, y, hidden, batch, kind, calls, epochs, repeat))
        for (kind, calls), rates in results.items():
            print(json.dumps({"devices": count, "workload": name, "parallel": kind, "calls": calls,
                              "steps_per_s": statistics.median(rates), "device": report.device_label(),
                              "rows": len(x)}), flush=True)


def run_child(count: int, args) -> list[dict]:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={count}".strip())
    command = [sys.executable, os.path.abspath(__file__), "--child", str(count),
               "--epochs", str(args.epochs), "--repeats", str(args.repeats)]
    out = subprocess.run(command, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="timed epochs per case (after one that compiles)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--devices", default="1,2,4,8", help="comma-separated simulated device counts; must include 1")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--no-write", action="store_true", help="print the table without writing results.md")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.epochs, args.repeats)
        return 0
    rows = []
    for count in [int(n) for n in args.devices.split(",")]:
        print(f"== {count} simulated device(s)", file=sys.stderr, flush=True)
        rows += run_child(count, args)
    rate = {(r["workload"], r["devices"], r["parallel"], r["calls"]): r["steps_per_s"] for r in rows}
    rows.sort(key=lambda r: (list(WORKLOADS).index(r["workload"]), r["devices"]))  # stable: keeps the parallel order

    lines = [
        f"### data_parallel.py, {rows[0]['device']}, simulated devices",
        "",
        f"{datetime.date.today().isoformat()}; jaxdl {jaxdl.__version__}, jax {jax.__version__}; "
        f"steps/s over {args.epochs} epochs after a compiling one, medians of {args.repeats}; "
        "`--xla_force_host_platform_device_count=N`. The simulated devices share the same "
        f"{os.cpu_count()} cores: these figures measure the overhead of splitting each batch, not a speed-up. "
        "seed: the 12-8-1 network on breast_cancer at batch 16 (not the tutorial's 10, which does not divide over 8 "
        "devices), 29 steps per epoch; wide: a 256-256-1 MLP on 8,192 synthetic rows at batch 256, 32 steps per epoch.",
        "",
        "| workload | devices | parallel | steps/s, fused epoch | x single | steps/s, 1 step per call | x single |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["calls"] != CALLS[0]:
            continue
        key = (r["workload"], r["devices"], r["parallel"])
        cells = []
        for calls in CALLS:
            value, base = rate.get((*key, calls)), rate.get((r["workload"], 1, "single", calls))
            cells += [f"{value:,.0f}", f"{value / base:.2f}x" if base else ""]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {' | '.join(cells)} |")
    report.emit(lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
