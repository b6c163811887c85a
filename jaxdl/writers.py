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
