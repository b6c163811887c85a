"""What a run writes: JSON files in its workdir, metrics as JSON lines, and progress on the console.

Writers take numbers already on the host; they never touch device arrays, so
writing adds no device synchronisation to the training loop.
"""

import json
import math
import os
import shutil
import sys
import tempfile
import time
from typing import IO


def write_json(path: str, obj) -> None:
    """Writes JSON atomically: a reader sees the old file or the new one, never a partial one."""
    text = json.dumps(_finite_or_none(obj), indent=2, sort_keys=True, default=_jsonable) + "\n"
    write_bytes(path, text.encode())


def write_bytes(path: str, data: bytes) -> None:
    """Writes a file atomically (a temporary file, synced, then renamed over `path`)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _jsonable(value):
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _finite_or_none(obj):
    # JSON has no NaN; a metric that is undefined (AUC on one class) is written as null.
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_none(v) for k, v in obj.items()}
    return obj


class JsonLinesWriter:
    """Appends one JSON object per line to a file, flushing each so a crash loses at most one record."""

    def __init__(self, path: str):
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(_finite_or_none(record), sort_keys=True, default=_jsonable) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _format_metrics(record: dict) -> str:
    parts = []
    for prefix, label in (("train_", ""), ("eval_", "test ")):
        for name in ("loss", "accuracy", "auc", "mae"):
            value = record.get(prefix + name)
            if value is not None and math.isfinite(value):
                parts.append(f"{label}{name} {value:.4f}")
    if record.get("steps_per_second"):
        parts.append(f"{record['steps_per_second']:,.0f} steps/s")
    if record.get("compile_seconds", 0.0) >= 0.01:
        parts.append(f"compile {record['compile_seconds']:.2f} s")
    return "  ".join(parts)


class Progress:
    """Per-epoch progress on the console.

    On a terminal it redraws one line with a bar; otherwise (a pipe, a log
    file, CI) it prints one plain line per epoch. `quiet` prints nothing.
    """

    def __init__(self, total_epochs: int, *, quiet: bool = False, stream: IO[str] | None = None):
        self._stream = stream or sys.stdout
        self._total = total_epochs
        self._quiet = quiet
        self._live = not quiet and self._stream.isatty()

    def epoch(self, record: dict) -> None:
        """Shows the record of a finished epoch (its `epoch` key counts from 1)."""
        if self._quiet:
            return
        epoch = record["epoch"]
        width = len(str(self._total))
        head = f"epoch {epoch:>{width}}/{self._total}"
        if self._live:
            filled = round(20 * epoch / self._total)
            bar = "#" * filled + "." * (20 - filled)
            line = f"{head} [{bar}]  {_format_metrics(record)}"
            # A line wider than the terminal wraps, and "\r" could then not redraw it.
            width = shutil.get_terminal_size().columns - 1
            self._stream.write(f"\r\033[K{line[:width]}")
            if epoch == self._total:
                self._stream.write("\n")
        else:
            self._stream.write(f"{head}  {_format_metrics(record)}\n")
        self._stream.flush()

    def message(self, text: str) -> None:
        """Prints a line (ending a live bar first), unless quiet."""
        if not self._quiet:
            self._stream.write(("\r\033[K" if self._live else "") + text + "\n")
            self._stream.flush()


class TensorBoardWriter:
    """TensorBoard event files through tensorboardX (no TensorFlow), in `logdir`.

    Each epoch's record becomes scalars at its global step: `train/<figure>`,
    `<split>/<figure>` for evaluations, and `timing/...` (steps/s,
    examples/s, compile seconds, epoch seconds), plus `learning_rate`. An
    ensemble's per-member figures go to `<group>/<figure>/member_<k>`.
    tensorboardX queues events and writes them from its own thread, so
    logging costs the loop no device sync and no disk wait.
    """

    def __init__(self, logdir: str):
        from tensorboardX import SummaryWriter  # imported here: only runs that write events need it

        self._writer = SummaryWriter(logdir=logdir, flush_secs=10)

    def scalars(self, step: int, values: dict, *, prefix: str) -> None:
        for name, value in values.items():
            if isinstance(value, list):
                for member, member_value in enumerate(value):
                    if member_value is not None and math.isfinite(member_value):
                        self._writer.add_scalar(f"{prefix}/{name[:-len('_members')]}/member_{member}", member_value, step)
            elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self._writer.add_scalar(f"{prefix}/{name}", value, step)

    def flush(self) -> None:
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class PlotWriter:
    """Redraws a run's learning curves (`jaxdl.plots`) in a background thread: off the training loop.

    `request()` after an evaluation starts a redraw unless one is under way
    or the last began less than `min_seconds` ago; `close()` draws the final
    curves and waits for them.
    """

    def __init__(self, workdir: str, *, min_seconds: float = 5.0):
        import concurrent.futures

        self._workdir = workdir
        self._min_seconds = min_seconds
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxdl-plots")
        self._pending = None
        self._last = -math.inf

    def _draw(self) -> None:
        from jaxdl import plots

        plots.write_run_plots(self._workdir)

    def request(self) -> None:
        now = time.monotonic()
        if (self._pending is None or self._pending.done()) and now - self._last >= self._min_seconds:
            self._last = now
            self._pending = self._pool.submit(self._draw)

    def close(self) -> None:
        if self._pending is not None:
            self._pending.result()
        self._pool.submit(self._draw).result()
        self._pool.shutdown()
