"""Runs every benchmark, each in its own process, and rewrites benchmarks/results.md.

    pip install '.[bench]'        # the peers: keras, torch (CPU build)
    python benchmarks/run_all.py

Each script rewrites its own section of results.md for the device it ran on,
so running this on a GPU machine adds GPU sections beside the CPU ones.
"""

import os
import subprocess
import sys

SCRIPTS = (
    "seed_workload.py", "cnn_throughput.py", "startup.py", "fit_compile.py", "pipeline_throughput.py",
    "ensemble_scaling.py", "per_example_grads.py", "data_parallel.py", "checkpoint_cost.py",
)


def main() -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    for script in SCRIPTS:
        print(f"== {script}", flush=True)
        subprocess.run([sys.executable, os.path.join(here, script), *sys.argv[1:]], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
