"""Benchmark: a compute-bound case, a small CNN on 28x28x1 inputs, jaxdl vs Keras 3 (JAX backend) vs PyTorch.

The network: conv 3x3 (32) - relu - maxpool 2 - conv 3x3 (64) - relu -
maxpool 2 - dense 128 - relu - dense 10 (softmax), trained with adam and
categorical cross-entropy at batch 128 on synthetic data (random images and
labels: the speed does not depend on the values). Each case trains one
warm-up epoch (compiling), then `--epochs` timed epochs; throughput is
training examples per second over the timed epochs, median of `--repeats`.
PyTorch runs with 2 threads (its fastest setting for a CNN on this 2-core
machine), or on the GPU where there is one; jaxdl and Keras use XLA's
defaults.

    python benchmarks/cnn_throughput.py             # rewrites this device's section of results.md
    python benchmarks/cnn_throughput.py --examples 1024 --epochs 1 --repeats 1 --no-write
"""

import argparse
import datetime
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jaxdl  # noqa: E402
import report  # noqa: E402

BATCH = 128


def run_jaxdl(x, y, epochs):
    model = jaxdl.CNN(conv_features=(32, 64), hidden=(128,), num_outputs=10)
    _, history = jaxdl.fit(model, (x, y), epochs=epochs + 1, batch_size=BATCH, loss="categorical_crossentropy", verbose=False)
    return sum(history["train_seconds"][1:])


def run_keras(x, y, epochs):
    import keras

    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0)  # warm-up: compiles
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=BATCH, verbose=0)
    return time.perf_counter() - start


def run_torch(x, y, epochs):
    import torch

    torch.set_num_threads(2)
    device = "cuda" if torch.cuda.is_available() else "cpu"  # on a GPU machine, PyTorch uses the GPU too
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(7 * 7 * 64, 128), nn.ReLU(), nn.Linear(128, 10),
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(device)
    yt = torch.from_numpy(y.astype(np.int64)).to(device)

    def epoch():
        order = torch.randperm(len(xt), device=device)
        for i in range(0, len(xt), BATCH):
            idx = order[i : i + BATCH]
            optimizer.zero_grad()
            loss_fn(model(xt[idx]), yt[idx]).backward()
            optimizer.step()

    epoch()  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(epochs):
        epoch()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


CASES = {"jaxdl.fit": run_jaxdl, "Keras 3 fit (JAX backend)": run_keras, "PyTorch eager (2 threads, or CUDA)": run_torch}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the table without writing results.md")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.random((args.examples, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, args.examples).astype(np.int32)
    rates = {name: [] for name in CASES}
    for repeat in range(args.repeats):
        for name, case in CASES.items():
            rates[name].append(args.examples * args.epochs / case(x, y, args.epochs))
            print(f"repeat {repeat + 1}/{args.repeats} {name}: {rates[name][-1]:,.0f} examples/s", file=sys.stderr)

    import keras
    import torch

    base = statistics.median(rates["jaxdl.fit"])
    lines = [
        f"### cnn_throughput.py, {report.device_label()}",
        "",
        f"{datetime.date.today().isoformat()}; jaxdl {jaxdl.__version__}, jax {jax.__version__}, keras {keras.__version__}, "
        f"torch {torch.__version__}; {args.examples} synthetic 28x28x1 examples, batch {BATCH}, "
        f"{args.epochs} timed epochs after a warm-up epoch, median of {args.repeats}.",
        "",
        "| case | examples/s | jaxdl.fit's rate / this |",
        "|---|---:|---:|",
    ]
    for name, values in rates.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:,.0f} | {base / median:.2f}x |")
    report.emit(lines, write=not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
