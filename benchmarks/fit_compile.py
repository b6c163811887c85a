"""Benchmark: what a repeated `jaxdl.fit` pays for compiling, in the same process and in a new one.

A child process runs `jaxdl.fit` twice on the tutorial's workload (the
12-8-1 network on breast_cancer's train split, 150 epochs at batch size 10,
evaluated on the test split each epoch), as a notebook that reruns a cell
does; then a second child process (a restarted kernel) runs it once more on
the same compilation cache. "cold" is the first fit on an empty cache (a new
machine). Compiling is tracing, lowering and XLA compilation or the cache's
fetch of the programs that run (`compile_seconds`); the abstract traces of
the checks before training are counted apart (`check_seconds`). Median of
`--repeats` rounds, each on a fresh cache directory.

    python benchmarks/fit_compile.py        # rewrites this device's section of results.md
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

import jax

import jaxdl
import report

CHILD = """
import json, sys, time
import jaxdl
from jaxdl import data, parallel

splits = data.load("breast_cancer")
out = []
for _ in range(int(sys.argv[1])):
    compiled, checked, start = parallel.compile_seconds(), parallel.check_seconds(), time.perf_counter()
    state, history = jaxdl.fit(jaxdl.MLP(hidden=(12, 8)), splits.train.x, splits.train.y, epochs=150, batch_size=10,
                               validation_data=(splits.test.x, splits.test.y), verbose=False)
    out.append({"wall": time.perf_counter() - start, "compile": parallel.compile_seconds() - compiled,
                "check": parallel.check_seconds() - checked, "train": sum(history["train_seconds"]),
                "accuracy": history.last["eval_accuracy"]})
print(json.dumps(out))
"""


def child(cache: str, fits: int) -> list[dict]:
    done = subprocess.run([sys.executable, "-c", CHILD, str(fits)], env={**os.environ, "XDG_CACHE_HOME": cache},
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the table without writing results.md")
    args = parser.parse_args()
    jaxdl.data.load("breast_cancer")  # prepare the embedded dataset outside the timings
    cases = {"first fit, empty cache (cold)": [], "second fit, same process": [], "first fit, new process, warm cache": []}
    names = list(cases)
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            cache = os.path.join(tmp, f"cache{repeat}")
            first, second = child(cache, 2)
            (restarted,) = child(cache, 1)
            for name, fit in zip(names, (first, second, restarted)):
                cases[name].append(fit)
            print(f"round {repeat + 1}/{args.repeats}: compile {first['compile']:.2f} / {second['compile']:.2f} / "
                  f"{restarted['compile']:.2f} s", file=sys.stderr)
    med = {name: {k: statistics.median(f[k] for f in fits) for k in fits[0]} for name, fits in cases.items()}
    cold = med[names[0]]["compile"]
    lines = [
        f"### fit_compile.py, {report.device_label()}",
        "",
        f"{datetime.date.today().isoformat()}; jaxdl {jaxdl.__version__}, jax {jax.__version__}; `jaxdl.fit` of the "
        f"tutorial's workload (12-8-1, 150 epochs, batch 10, breast_cancer), median of {args.repeats} rounds.",
        "",
        "| fit | compiling, s | less than cold | checks (abstract traces), s | training, s | whole fit, s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        m = med[name]
        lines.append(f"| {name} | {m['compile']:.2f} | {cold / m['compile']:.1f}x | {m['check']:.2f} | {m['train']:.2f} | "
                     f"{m['wall']:.2f} |")
    accuracies = sorted({round(f["accuracy"], 4) for fits in cases.values() for f in fits})
    lines += ["", f"Test accuracy of every fit: {', '.join(f'{a:.4f}' for a in accuracies)}. The persistent "
              "compilation cache is on by default (`compile_cache='auto'`, ~/.cache/jaxdl/jax); `compile_cache='off'` "
              "turns it off."]
    report.emit(lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
