"""Benchmark: the tutorial's workload with jaxdl.fit and with a hand-written Flax loop.

The workload: the 12-8-1 network (relu, relu, sigmoid), adam (lr 1e-3),
binary cross-entropy, 150 epochs at batch size 10 on breast_cancer (455
training examples, so 46 steps per epoch, the last one partial).

Cases, run alternately in one process, each `--repeats` times:
  jaxdl.fit + eval     jaxdl.fit with the test split evaluated after every epoch
  jaxdl.fit            jaxdl.fit without per-epoch evaluation
  hand-written Flax    one jitted train step per batch, the way the Flax
                       examples write it (loss fetched once per epoch)

Per case (medians over repeats): the whole fit's wall time (compiles and
evaluations included), the first epoch's seconds (it includes compiling),
the time per train step over the other epochs (evaluation excluded), the
time all the run's steps take at that rate, the ratio of that rate to the
hand-written loop's (below 1 is faster), and the final test accuracy.
Repeat r uses seed r, so accuracies are medians over seeds.

    python benchmarks/seed_workload.py            # rewrites this device's section of results.md
    python benchmarks/seed_workload.py --epochs 20 --repeats 1 --no-write   # a quick look
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxdl
import report
from jaxdl import data

BATCH = 10


def run_jaxdl(splits, epochs: int, seed: int, with_eval: bool) -> dict:
    model = jaxdl.MLP(hidden=(12, 8), num_outputs=1, output_activation="sigmoid")
    start = time.perf_counter()
    state, history = jaxdl.fit(
        model, (splits.train.x, splits.train.y), epochs=epochs, batch_size=BATCH, optimizer="adam",
        loss="binary_crossentropy", validation_data=(splits.test.x, splits.test.y) if with_eval else None,
        seed=seed, verbose=False,
    )
    wall = time.perf_counter() - start
    accuracy = jaxdl.evaluate(state, (splits.test.x, splits.test.y))["accuracy"]
    steps = history["step"]
    per_epoch = history["epoch_seconds"]
    return {
        "first_epoch_s": per_epoch[0],
        "step_us": 1e6 * sum(per_epoch[1:]) / (steps[-1] - steps[0]),
        "total_steps": steps[-1],
        "wall_s": wall,
        "accuracy": accuracy,
    }


def run_hand_written(splits, epochs: int, seed: int) -> dict:
    """A plain Flax loop: jit one step, call it per batch, fetch the epoch's loss at the end."""

    class Net(flax.linen.Module):
        @flax.linen.compact
        def __call__(self, x):
            x = flax.linen.relu(flax.linen.Dense(12)(x))
            x = flax.linen.relu(flax.linen.Dense(8)(x))
            return flax.linen.Dense(1)(x)[:, 0]

    net, tx = Net(), optax.adam(1e-3)
    params = net.init(jax.random.PRNGKey(seed), jnp.zeros((1, 30)))
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, x, y):
        def loss_fn(p):
            return optax.sigmoid_binary_cross_entropy(net.apply(p, x), y).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    x_train, y_train = splits.train.x, splits.train.y.astype(np.float32)
    rng = np.random.default_rng(seed)
    epoch_seconds, steps = [], 0
    start = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(len(x_train))
        losses = []
        for i in range(0, len(order), BATCH):  # the last batch is partial: a second shape, compiled once
            idx = order[i : i + BATCH]
            params, opt_state, loss = train_step(params, opt_state, x_train[idx], y_train[idx])
            losses.append(loss)
            steps += 1
        float(jnp.mean(jnp.stack(losses)))
        epoch_seconds.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    logits = net.apply(params, splits.test.x)
    accuracy = float(np.mean((np.asarray(logits) > 0) == splits.test.y))
    steps_per_epoch = steps // epochs
    return {
        "first_epoch_s": epoch_seconds[0],
        "step_us": 1e6 * sum(epoch_seconds[1:]) / (steps - steps_per_epoch),
        "total_steps": steps,
        "wall_s": wall,
        "accuracy": accuracy,
    }


CASES = {
    "jaxdl.fit + eval every epoch": lambda s, e, seed: run_jaxdl(s, e, seed, with_eval=True),
    "jaxdl.fit": lambda s, e, seed: run_jaxdl(s, e, seed, with_eval=False),
    "hand-written Flax, jit per step": run_hand_written,
}


def table(results: dict, epochs: int, repeats: int) -> str:
    base = statistics.median(r["step_us"] for r in results["hand-written Flax, jit per step"])
    lines = [
        f"### seed_workload.py, {report.device_label()}",
        "",
        f"{datetime.date.today().isoformat()}; jaxdl {jaxdl.__version__}, jax {jax.__version__}, flax {flax.__version__}, "
        f"optax {optax.__version__}, Python {platform.python_version()}; {epochs} epochs, median of {repeats}.",
        "",
        "| case | wall, s (all in) | first epoch, s (compile incl.) | us/step after it | steps at that rate, s | vs hand-written | test accuracy |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        lines.append(
            f"| {name} | {med['wall_s']:.2f} | {med['first_epoch_s']:.2f} | {med['step_us']:.1f} | "
            f"{med['step_us'] * med['total_steps'] / 1e6:.2f} | {med['step_us'] / base:.2f}x | {med['accuracy']:.4f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the table without writing results.md")
    args = parser.parse_args()
    splits = data.load("breast_cancer")
    results = {name: [] for name in CASES}
    for repeat in range(args.repeats):
        for name, case in CASES.items():  # alternate the cases so drift hits all of them alike
            results[name].append(case(splits, args.epochs, repeat))
            print(f"repeat {repeat + 1}/{args.repeats} {name}: {results[name][-1]['step_us']:.1f} us/step", file=sys.stderr)
    section = table(results, args.epochs, args.repeats)
    print(section)
    if not args.no_write:
        report.write_section(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
