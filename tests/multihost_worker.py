"""One process of the two-process test in test_parallel.py (not a test itself).

    python tests/multihost_worker.py PORT PROCESS_ID OUT_DIR

Joins a 2-process run through `jax.distributed.initialize` (coordinator on
127.0.0.1:PORT, gloo collectives, 2 CPU devices per process), trains the
seed network data-parallel under "mesh" and then "pmap", and saves each
run's final parameters to OUT_DIR/{mesh,pmap}-PROCESS_ID.npz.
"""

import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jaxdl  # noqa: E402
from jaxdl import data, parallel  # noqa: E402

EPOCHS, BATCH = 3, 20  # the global batch: 10 rows from each process, 5 per device


def main() -> None:
    port, process_id, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    parallel.initialize_distributed(f"127.0.0.1:{port}", num_processes=2, process_id=process_id)
    assert jax.process_count() == 2 and jax.device_count() == 4
    splits = data.load("breast_cancer")
    for kind in ("mesh", "pmap"):
        state, history = jaxdl.fit(
            jaxdl.MLP(), (splits.train.x, splits.train.y), epochs=EPOCHS, batch_size=BATCH, parallel=kind,
            pipeline="host", verbose=False,
        )
        params = parallel.fetch(state.params)
        leaves = jax.tree_util.tree_flatten_with_path(params)[0]
        np.savez(
            os.path.join(out, f"{kind}-{process_id}.npz"),
            **{jax.tree_util.keystr(path): leaf for path, leaf in leaves},
            train_loss=np.float64(history.last["train_loss"]),
        )


if __name__ == "__main__":
    main()
