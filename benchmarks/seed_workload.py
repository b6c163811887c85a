"""Benchmark: the tutorial's workload with jaxdl and its peers, side by side in one process.

The workload: the 12-8-1 network (relu, relu, sigmoid), adam (lr 1e-3),
binary cross-entropy, 150 epochs at batch size 10 on breast_cancer (455
training examples: 46 steps per epoch, the last one partial), then test
accuracy on the 114 held-out examples.

Cases, alternated, each `--repeats` times:
  jaxdl.fit                     defaults: the split on the device, a whole epoch per compiled call
  jaxdl.fit, 1 step per call    steps_per_call=1
  Keras 3 fit (JAX backend)     model.fit with default settings (verbose=0)
  PyTorch eager (1 thread)      a plain loop; torch.set_num_threads(1), faster on 2 cores
  Flax, jit per step            a hand-written loop calling one jitted step per batch
  Flax, scan per epoch          a hand-written loop running each epoch in one jitted lax.scan
                                (it drops the partial batch: 45 steps per epoch)

Training time excludes imports and the first epoch (where the compiling
happens): it is the median epoch time times the number of epochs. Also
shown: time per step, the whole run's wall time, and test accuracy.

    python benchmarks/seed_workload.py              # rewrites this device's section of results.md
    python benchmarks/seed_workload.py --epochs 20 --repeats 1 --no-write
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import flax  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import jaxdl  # noqa: E402
import report  # noqa: E402
from jaxdl import data  # noqa: E402

BATCH = 10


def run_jaxdl(splits, epochs, seed, steps_per_call="auto"):
    start = time.perf_counter()
    state, history = jaxdl.fit(
        jaxdl.MLP(hidden=(12, 8), num_outputs=1, output_activation="sigmoid"), (splits.train.x, splits.train.y),
        epochs=epochs, batch_size=BATCH, optimizer="adam", loss="binary_crossentropy", seed=seed,
        steps_per_call=steps_per_call, verbose=False,
    )
    wall = time.perf_counter() - start
    accuracy = jaxdl.evaluate(state, (splits.test.x, splits.test.y))["accuracy"]
    return history["train_seconds"], 46, wall, accuracy


def run_keras(splits, epochs, seed):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((30,)), keras.layers.Dense(12, activation="relu"),
        keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    times = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    start = time.perf_counter()
    model.fit(splits.train.x, splits.train.y, epochs=epochs, batch_size=BATCH, verbose=0, callbacks=[Clock()])
    wall = time.perf_counter() - start
    accuracy = model.evaluate(splits.test.x, splits.test.y, verbose=0)[1]
    return times, 46, wall, accuracy


def run_torch(splits, epochs, seed):
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(
        torch.nn.Linear(30, 12), torch.nn.ReLU(), torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x, y = torch.from_numpy(splits.train.x), torch.from_numpy(splits.train.y.astype(np.float32))
    times = []
    start = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(x))
        for i in range(0, len(x), BATCH):
            idx = order[i : i + BATCH]
            optimizer.zero_grad()
            loss = loss_fn(model(x[idx])[:, 0], y[idx])
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    with torch.no_grad():
        logits = model(torch.from_numpy(splits.test.x))[:, 0].numpy()
    return times, 46, wall, float(np.mean((logits > 0) == splits.test.y))


class _Net(flax.linen.Module):
    @flax.linen.compact
    def __call__(self, x):
        x = flax.linen.relu(flax.linen.Dense(12)(x))
        x = flax.linen.relu(flax.linen.Dense(8)(x))
        return flax.linen.Dense(1)(x)[:, 0]


def _flax_setup(seed):
    net, tx = _Net(), optax.adam(1e-3)
    params = net.init(jax.random.PRNGKey(seed), jnp.zeros((1, 30)))

    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(lambda p: optax.sigmoid_binary_cross_entropy(net.apply(p, x), y).mean())(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return net, params, tx.init(params), train_step


def _accuracy(net, params, splits):
    return float(np.mean((np.asarray(net.apply(params, splits.test.x)) > 0) == splits.test.y))


def run_flax_per_step(splits, epochs, seed):
    net, params, opt_state, train_step = _flax_setup(seed)
    train_step = jax.jit(train_step)
    x, y = splits.train.x, splits.train.y.astype(np.float32)
    rng = np.random.default_rng(seed)
    times = []
    start = time.perf_counter()
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(len(x))
        losses = []
        for i in range(0, len(order), BATCH):  # the partial last batch is a second shape, compiled once
            idx = order[i : i + BATCH]
            params, opt_state, loss = train_step(params, opt_state, x[idx], y[idx])
            losses.append(loss)
        float(jnp.mean(jnp.stack(losses)))
        times.append(time.perf_counter() - t0)
    return times, 46, time.perf_counter() - start, _accuracy(net, params, splits)


def run_flax_scan(splits, epochs, seed):
    net, params, opt_state, train_step = _flax_setup(seed)
    x, y = jnp.asarray(splits.train.x), jnp.asarray(splits.train.y.astype(np.float32))
    steps = len(x) // BATCH

    @jax.jit
    def train_epoch(params, opt_state, key):
        order = jax.random.permutation(key, len(x))[: steps * BATCH].reshape(steps, BATCH)

        def body(carry, idx):
            params, opt_state, loss = train_step(*carry, x[idx], y[idx])
            return (params, opt_state), loss

        (params, opt_state), losses = jax.lax.scan(body, (params, opt_state), order)
        return params, opt_state, losses.mean()

    key = jax.random.PRNGKey(seed)
    times = []
    start = time.perf_counter()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        params, opt_state, loss = train_epoch(params, opt_state, jax.random.fold_in(key, epoch))
        float(loss)
        times.append(time.perf_counter() - t0)
    return times, steps, time.perf_counter() - start, _accuracy(net, params, splits)


CASES = {
    "jaxdl.fit": run_jaxdl,
    "jaxdl.fit, 1 step per call": lambda s, e, seed: run_jaxdl(s, e, seed, steps_per_call=1),
    "Keras 3 fit (JAX backend)": run_keras,
    "PyTorch eager (1 thread)": run_torch,
    "Flax, jit per step": run_flax_per_step,
    "Flax, scan per epoch": run_flax_scan,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the table without writing results.md")
    args = parser.parse_args()
    splits = data.load("breast_cancer")
    results = {name: [] for name in CASES}
    for repeat in range(args.repeats):
        for name, case in CASES.items():  # alternate so that drift hits every case alike
            times, steps, wall, accuracy = case(splits, args.epochs, repeat)
            epoch = statistics.median(times[1:])
            results[name].append({"train_s": epoch * args.epochs, "step_us": 1e6 * epoch / steps, "wall_s": wall,
                                  "accuracy": accuracy})
            print(f"repeat {repeat + 1}/{args.repeats} {name}: {results[name][-1]['train_s']:.3f} s", file=sys.stderr)

    import keras
    import torch

    med = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]} for name, runs in results.items()}
    base = med["jaxdl.fit"]["train_s"]
    lines = [
        f"### seed_workload.py, {report.device_label()}",
        "",
        f"{datetime.date.today().isoformat()}; jaxdl {jaxdl.__version__}, jax {jax.__version__}, flax {flax.__version__}, "
        f"optax {optax.__version__}, keras {keras.__version__}, torch {torch.__version__}, Python {platform.python_version()}; "
        f"{args.epochs} epochs at batch {BATCH}; medians of {args.repeats} (seeds 0-{args.repeats - 1}).",
        "",
        f"| case | train s, {args.epochs} epochs (first excluded) | us/step | x jaxdl.fit's time | wall s (all in) | test accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in med.items():
        lines.append(f"| {name} | {m['train_s']:.3f} | {m['step_us']:.1f} | {m['train_s'] / base:.1f}x | "
                     f"{m['wall_s']:.2f} | {m['accuracy']:.4f} |")
    report.emit(lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
