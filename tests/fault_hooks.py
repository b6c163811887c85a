"""Hooks (`--config.callbacks.hook=tests/fault_hooks.py:NAME`) that bring faults into a real run, for test_faults.py."""

import os
import resource
import signal
import time


def slow_down(state, step, figures):
    """Makes each epoch last a tenth of a second: time for a test to act while the run is under way."""
    time.sleep(0.1)


def fill_disk(state, step, figures):
    """After epoch 1's checkpoint is written, fills the disk the run writes to (JAXDL_FILL=rlimit: caps file sizes)."""
    if figures.get("epoch") != 2:
        return
    target = os.environ["JAXDL_FILL"]
    checkpoints = os.path.join(os.environ["JAXDL_WORKDIR"], "checkpoints")
    deadline = time.monotonic() + 60
    while not any(name.isdigit() for name in os.listdir(checkpoints)) and time.monotonic() < deadline:
        time.sleep(0.01)  # epoch 1's checkpoint is written in the background: let it finish
    if target == "rlimit":  # no tmpfs to fill: every write past one byte now fails, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        return
    with open(os.path.join(target, "ballast"), "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 16))
                f.flush()
        except OSError:
            pass
