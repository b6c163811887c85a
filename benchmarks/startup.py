"""Benchmark: time to the first finished training step, with a cold and a warm compilation cache.

Each measurement starts a fresh process running `python -m jaxdl train
--config.train.epochs=1` (the tutorial's network on breast_cancer; its first
compiled call is the whole first epoch) and times it from launch to exit
(Python and library imports, loading the data, compiling, one epoch, one
evaluation), and inside the run from its start to the end of the first
epoch's training (`first_epoch_seconds` in summary.json). "cold" uses an
empty compilation cache directory; "warm" then runs again on the one the
cold run filled. Median of `--repeats` pairs; the embedded dataset is
prepared before timing.

    python benchmarks/startup.py            # rewrites this device's section of results.md
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import jax

import jaxdl
import report


def run_once(cache_dir: str, workdir: str) -> tuple[float, float, float]:
    env = {**os.environ, "XDG_CACHE_HOME": cache_dir}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "jaxdl", "train", "--quiet", "--config.train.epochs=1", "--workdir", workdir, "--overwrite"],
        check=True, env=env, stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    with open(os.path.join(workdir, "summary.json")) as f:
        summary = json.load(f)
    return seconds, summary["first_epoch_seconds"], summary["compile_seconds"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the table without writing results.md")
    args = parser.parse_args()
    jaxdl.data.load("breast_cancer")  # prepare the embedded dataset outside the timings
    runs = {"cold": [], "warm": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            cache = os.path.join(tmp, f"cache{repeat}")
            for kind in ("cold", "warm"):
                runs[kind].append(run_once(cache, os.path.join(tmp, "run")))
                print(f"repeat {repeat + 1}/{args.repeats} {kind}: {runs[kind][-1][0]:.2f} s", file=sys.stderr)
    med = {k: [statistics.median(r[i] for r in v) for i in range(3)] for k, v in runs.items()}
    lines = [
        f"### startup.py, {report.device_label()}",
        "",
        f"{datetime.date.today().isoformat()}; jaxdl {jaxdl.__version__}, jax {jax.__version__}; "
        f"`python -m jaxdl train --config.train.epochs=1`, launch to exit, median of {args.repeats}.",
        "",
        "| compilation cache | launch to exit, s | in the run: start to first epoch trained, s | compiling, s |",
        "|---|---:|---:|---:|",
        f"| cold (empty) | {med['cold'][0]:.2f} | {med['cold'][1]:.2f} | {med['cold'][2]:.2f} |",
        f"| warm | {med['warm'][0]:.2f} | {med['warm'][1]:.2f} | {med['warm'][2]:.2f} |",
        "",
        f"The warm cache cuts the time to the first trained epoch (the first compiled call) by "
        f"{100 * (1 - med['warm'][1] / med['cold'][1]):.0f}%, and the whole command by "
        f"{100 * (1 - med['warm'][0] / med['cold'][0]):.0f}% (Python and library imports take about 1.5 s of it).",
    ]
    report.emit(lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
