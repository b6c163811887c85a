"""Benchmark: data pipeline throughput on `digits` (1,437 training examples, 64 features), no training.

Cases, alternated in one process, each timed over `--epochs` epochs after one
warm-up epoch, `--repeats` times:
  grain, in memory       HostPipeline over the split held in host memory
  grain, from TFDS files HostPipeline reading array_record records per batch
                         (the path of datasets larger than data.in_memory_max_mb)
  grain, 2 workers       as "in memory", batches assembled in 2 worker processes
  device-resident        the split on the device; the epoch plan computed there
                         and each batch gathered there (one compiled call per batch)

Throughput is examples/s delivered to the consumer: batches materialised on
the host for the grain cases, gathered on the device (and waited for) for
the device-resident case.

    python benchmarks/pipeline_throughput.py            # rewrites this device's section of results.md
    python benchmarks/pipeline_throughput.py --epochs 2 --repeats 1 --no-write
"""

import argparse
import datetime
import functools
import statistics
import sys
import time

import grain
import jax
import jax.numpy as jnp
import numpy as np

import jaxdl
import report
from jaxdl import data
from jaxdl.data import order, tfds_source


def _time_epochs(run_epochs, epochs: int) -> float:
    run_epochs(1)  # warm-up: compiles, worker start-up
    start = time.perf_counter()
    run_epochs(epochs)
    return time.perf_counter() - start


def host_case(source, batch_size: int, workers: int = 0):
    pipeline = data.HostPipeline(source, batch_size=batch_size, seed=0, workers=workers)
    iterator = None

    def run_epochs(epochs):
        nonlocal iterator
        if iterator is None:  # one iterator for the run, as training uses it: workers start once
            iterator = pipeline.iterator(1, 10_000)
        for _ in range(epochs * pipeline.steps_per_epoch):
            next(iterator)

    return run_epochs


def device_case(split: data.ArrayDataset, batch_size: int):
    arrays = jax.device_put({"x": split.x, "y": split.y})
    steps = order.steps_per_epoch(len(split), batch_size)
    plan = jax.jit(functools.partial(order.epoch_indices, len(split), batch_size, xp=jnp))

    @jax.jit
    def gather(arrays, indices, i):
        rows = jax.lax.dynamic_index_in_dim(indices, i, keepdims=False)
        return jnp.take(arrays["x"], rows, axis=0), jnp.take(arrays["y"], rows, axis=0)

    def run_epochs(epochs):
        out = None
        for epoch in range(1, epochs + 1):
            indices, _ = plan(seed=np.int32(0), epoch=np.int32(epoch))
            for i in range(steps):
                out = gather(arrays, indices, np.int32(i))
        jax.block_until_ready(out)

    return run_epochs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="print the table without writing results.md")
    args = parser.parse_args()

    splits = data.load("digits")
    files = data.load("digits", in_memory_max_bytes=0)  # the same split, read from the TFDS files
    assert isinstance(files.train, tfds_source.LazySplit) and len(files.train) == len(splits.train)
    cases = {
        "grain, in memory": host_case(splits.train, args.batch_size),
        "grain, from TFDS files": host_case(files.train, args.batch_size),
        "grain, 2 workers": host_case(splits.train, args.batch_size, workers=2),
        "device-resident": device_case(splits.train, args.batch_size),
    }
    examples = args.epochs * len(splits.train)
    rates = {name: [] for name in cases}
    for repeat in range(args.repeats):
        for name, run_epochs in cases.items():
            rates[name].append(examples / _time_epochs(run_epochs, args.epochs))
            print(f"repeat {repeat + 1}/{args.repeats} {name}: {rates[name][-1]:,.0f} examples/s", file=sys.stderr)

    base = statistics.median(rates["grain, in memory"])
    lines = [
        f"### pipeline_throughput.py, {report.device_label()}",
        "",
        f"{datetime.date.today().isoformat()}; jaxdl {jaxdl.__version__}, jax {jax.__version__}, "
        f"grain {getattr(grain, '__version__', '?')}; digits train split ({len(splits.train)} examples), "
        f"batch {args.batch_size}, {args.epochs} epochs after a warm-up epoch, median of {args.repeats}.",
        "",
        "| case | examples/s | vs grain in memory |",
        "|---|---:|---:|",
    ]
    for name, values in rates.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:,.0f} | {median / base:.2f}x |")
    report.emit(lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
