"""Benchmark: training K copies of the tutorial's network at once, in one compiled program (vmap).

The workload, per member: the 12-8-1 network (relu, relu, sigmoid), adam
(lr 1e-3), binary cross-entropy, 150 epochs at batch size 10 on
breast_cancer (46 steps per epoch, the last one partial), then accuracy on
the 113 test examples. `jaxdl.fit(..., ensemble=K, parallel="single")`
trains K members with seeds seed..seed+K-1 in one program on one device;
K = 1 is the plain single-model run (no member axis).

Cases, K = 1, 4, 16, 64, alternated, each `--repeats` times, after one
untimed warm-up fit (the backend's start-up):
  train s    the median epoch time (compiles excluded) times the number of
             epochs, the first epoch (where the compiling happens) left out
  wall s     the whole `jaxdl.fit` call: initialising, compiling, training;
             JAX's caches are cleared before each call, so every case
             compiles from cold (jaxdl would otherwise reuse K = 1's compiled
             initialisation across calls in a process, but not an ensemble's)

The issue's target: K = 64 in no more than 4x the time of K = 1 (judged on
the train time). For context the table ends with the largest K trained as
separate single-model fits, one after another in one process (seeds 0 to
K-1; the first compiles, the others reuse its programs), measured once.

    python benchmarks/ensemble_scaling.py           # rewrites this device's section of results.md
    python benchmarks/ensemble_scaling.py --epochs 10 --repeats 1 --no-write
"""

import argparse
import datetime
import statistics
import sys
import time

import flax
import jax
import numpy as np
import optax

import jaxdl
import report
from jaxdl import data

BATCH = 10
TARGET = 4.0  # K = 64 may take at most this many times K = 1's time


def run(splits, members: int, epochs: int, seed: int, clear: bool = True) -> dict:
    model = jaxdl.MLP(hidden=(12, 8), num_outputs=1, output_activation="sigmoid")
    if clear:
        jax.clear_caches()  # every case compiles from cold, as a fresh process would
    start = time.perf_counter()
    state, history = jaxdl.fit(
        model, (splits.train.x, splits.train.y), epochs=epochs, batch_size=BATCH, optimizer="adam",
        loss="binary_crossentropy", seed=seed, ensemble=members, parallel="single", verbose=False,
    )
    jax.block_until_ready(state)
    wall = time.perf_counter() - start
    accuracy = jaxdl.evaluate(state, (splits.test.x, splits.test.y))["accuracy"]  # one value per member
    epoch = statistics.median(history["train_seconds"][1:]) if epochs > 1 else history["train_seconds"][0]
    return {"train_s": epoch * epochs, "wall_s": wall, "accuracy": float(np.mean(accuracy))}


def run_separately(splits, members: int, epochs: int) -> dict:
    """`members` single-model fits in a row, in one process: the way without vmap."""
    jax.clear_caches()
    start, train_s, accuracies = time.perf_counter(), 0.0, []
    for seed in range(members):
        result = run(splits, 1, epochs, seed, clear=False)
        train_s += result["train_s"]
        accuracies.append(result["accuracy"])
    return {"train_s": train_s, "wall_s": time.perf_counter() - start, "accuracy": float(np.mean(accuracies))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--members", default="1,4,16,64", help="comma-separated ensemble sizes; the first is the baseline")
    parser.add_argument("--no-write", action="store_true", help="print the table without writing results.md")
    args = parser.parse_args()
    sizes = [int(k) for k in args.members.split(",")]
    splits = data.load("breast_cancer")
    run(splits, 1, 1, 0)  # warm-up: the backend's start-up falls on no case
    results = {k: [] for k in sizes}
    for repeat in range(args.repeats):
        for k in sizes:  # alternate so that drift hits every case alike
            results[k].append(run(splits, k, args.epochs, repeat))
            r = results[k][-1]
            print(f"repeat {repeat + 1}/{args.repeats} K={k}: train {r['train_s']:.3f} s, wall {r['wall_s']:.2f} s",
                  file=sys.stderr)

    med = {k: {name: statistics.median(r[name] for r in runs) for name in runs[0]} for k, runs in results.items()}
    base = med[sizes[0]]
    lines = [
        f"### ensemble_scaling.py, {report.device_label()}",
        "",
        f"{datetime.date.today().isoformat()}; jaxdl {jaxdl.__version__}, jax {jax.__version__}, flax {flax.__version__}, "
        f"optax {optax.__version__}; `jaxdl.fit(..., ensemble=K, parallel=\"single\")`, the 12-8-1 network on "
        f"breast_cancer, {args.epochs} epochs at batch {BATCH}; medians of {args.repeats} (seeds 0-{args.repeats - 1}).",
        "",
        f"| K (members) | train s, {args.epochs} epochs (first excluded) | ms per member | x K={sizes[0]}'s train time "
        f"| wall s (all in) | x K={sizes[0]}'s wall | members' mean test accuracy |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k, m in med.items():
        lines.append(f"| {k} | {m['train_s']:.3f} | {1e3 * m['train_s'] / k:.2f} | {m['train_s'] / base['train_s']:.1f}x | "
                     f"{m['wall_s']:.2f} | {m['wall_s'] / base['wall_s']:.1f}x | {m['accuracy']:.4f} |")
    biggest = sizes[-1]
    alone = run_separately(splits, biggest, args.epochs)
    lines.append(f"| {biggest} separate fits, one after another (measured once) | {alone['train_s']:.3f} | "
                 f"{1e3 * alone['train_s'] / biggest:.2f} | {alone['train_s'] / base['train_s']:.1f}x | "
                 f"{alone['wall_s']:.2f} | {alone['wall_s'] / base['wall_s']:.1f}x | {alone['accuracy']:.4f} |")
    if sizes[0] == 1 and biggest == 64:
        train_ratio, wall_ratio = med[64]["train_s"] / base["train_s"], med[64]["wall_s"] / base["wall_s"]
        verdict = lambda ratio: "met" if ratio <= TARGET else "not met"  # noqa: E731
        lines += [
            "",
            f"Target (K=64 in at most {TARGET:g}x the time of K=1), on this device: train time (first epoch "
            f"excluded) **{verdict(train_ratio)}**, {train_ratio:.1f}x; all-in wall time {verdict(wall_ratio)}, "
            f"{wall_ratio:.1f}x (compiling takes most of it at every K). The 64 models as separate fits took "
            f"{alone['wall_s'] / med[64]['wall_s']:.1f}x the ensemble's wall time. One model costs "
            f"{1e3 * base['train_s']:.2f} ms of training alone, a member of K=64 {1e3 * med[64]['train_s'] / 64:.2f} ms.",
        ]
    report.emit(lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
