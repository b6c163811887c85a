"""What a run writes: JSON files in its workdir, metrics as JSON lines, and progress on the console.

Writers take numbers already on the host; they never touch device arrays, so
writing adds no device synchronisation to the training loop.
"""

import contextlib
import json
import math
import numbers
import os
import shutil
import socket
import struct
import sys
import tempfile
import time
from typing import IO


@contextlib.contextmanager
def named_os_errors(path: str):
    """Re-raises an OSError without a file name (a failed write or flush of an open file) named by `path`."""
    try:
        yield
    except OSError as err:
        if err.filename:
            raise
        raise OSError(err.errno, err.strerror, path) from err


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
    except OSError as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise OSError(err.errno, err.strerror, path) from err  # named by the file it was for, not the temporary one
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
        self.path = path
        self._file = open(path, "a", encoding="utf-8")

    def write(self, record: dict) -> None:
        with named_os_errors(self.path):
            self._file.write(json.dumps(_finite_or_none(record), sort_keys=True, default=_jsonable) + "\n")
            self._file.flush()

    def close(self) -> None:
        with named_os_errors(self.path):
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


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def _masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C (Castagnoli), rotated and offset."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits, value = value & 0x7F, value >> 7
        out.append(bits | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _number(number: int, value: int) -> bytes:
    """A varint protobuf field."""
    return _varint(number << 3) + _varint(value)


def _event(step: int, wall_time: float, *, scalars=(), values: bytes = b"", file_version: str | None = None) -> bytes:
    """A TensorBoard `Event` protobuf: wall_time (1), step (2), file_version (3) or summary (5) of values."""
    out = bytes([0x09]) + struct.pack("<d", wall_time) + bytes([0x10]) + _varint(step)
    if file_version is not None:
        out += _field(3, file_version.encode())
    values += b"".join(
        _field(1, _field(1, tag.encode()) + bytes([0x15]) + struct.pack("<f", value)) for tag, value in scalars
    )
    if values:
        out += _field(5, values)
    return out


def _image_value(tag: str, png: bytes) -> bytes:
    """A `Summary.Value` (tag 1) holding an `Image` (4): height 1, width 2, colorspace 3, encoded PNG 4."""
    width, height = struct.unpack(">II", png[16:24])  # the PNG's IHDR chunk
    image = _number(1, height) + _number(2, width) + _number(3, 4) + _field(4, png)
    return _field(1, _field(1, tag.encode()) + _field(4, image))


def _text_value(tag: str, text: str) -> bytes:
    """A `Summary.Value` holding a string `TensorProto` (8) for TensorBoard's text plugin (metadata 9)."""
    metadata = _field(1, _field(1, b"text"))  # plugin_data { plugin_name: "text" }
    tensor = _number(1, 7) + _field(2, b"") + _field(8, text.encode())  # dtype DT_STRING, scalar shape, string_val
    return _field(1, _field(1, tag.encode()) + _field(8, tensor) + _field(9, metadata))


class TensorBoardWriter:
    """TensorBoard event files, written directly: no TensorFlow, no tensorboardX.

    The format is TFRecord framing (length, CRC-32C) around `Event`
    protobufs holding scalar summaries, which TensorBoard reads. Each epoch's
    record becomes one event at its global step: `train/<figure>`,
    `<split>/<figure>` for evaluations, `optimizer/learning_rate` and
    `timing/...` (steps/s, examples/s, compile and epoch seconds). An
    ensemble's per-member figures go to `<group>/<figure>/member_<k>`.
    Writing is a few hundred bytes per epoch, appended and flushed by the
    loop's host thread after each epoch: no device sync.
    (tensorboardX would do the same, but importing it imports PyTorch when
    that is installed: a second of startup.)
    """

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "ab")
        self._write(_event(0, time.time(), file_version="brain.Event:2"))

    def _write(self, event: bytes) -> None:
        header = struct.pack("<Q", len(event))
        with named_os_errors(self.path):
            self._file.write(header + struct.pack("<I", _masked_crc32c(header)) + event + struct.pack("<I", _masked_crc32c(event)))

    def _flush(self) -> None:
        with named_os_errors(self.path):
            self._file.flush()

    def scalars(self, step: int, values: dict, *, prefix: str) -> None:
        """Writes `values` (numbers, or per-member lists) as one event at `step`, tagged `prefix/name`."""
        entries = []
        for name, value in values.items():
            if isinstance(value, list):
                base = name[: -len("_members")] if name.endswith("_members") else name
                entries += [(f"{prefix}/{base}/member_{member}", v) for member, v in enumerate(value)]
            elif isinstance(value, numbers.Real) and not isinstance(value, bool):
                entries.append((f"{prefix}/{name}", value))
        entries = [(tag, float(v)) for tag, v in entries if v is not None and math.isfinite(v)]
        if entries:
            self._write(_event(int(step), time.time(), scalars=entries))
            self._flush()

    def image(self, step: int, tag: str, png: bytes) -> None:
        """Writes a PNG image (its encoded bytes) at `step`, shown in TensorBoard's Images tab."""
        self._write(_event(int(step), time.time(), values=_image_value(tag, png)))
        self._flush()

    def text(self, step: int, tag: str, text: str) -> None:
        """Writes text at `step`, shown in TensorBoard's Text tab."""
        self._write(_event(int(step), time.time(), values=_text_value(tag, text)))
        self._flush()

    def flush(self) -> None:
        self._flush()

    def close(self) -> None:
        with named_os_errors(self.path):
            self._file.close()


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
        self._last = time.monotonic()  # a run shorter than min_seconds draws once, at the end

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


class ReportWriter:
    """What a Task's `report` writes through: files in the run's workdir, images and text to TensorBoard too.

    Without a workdir (a notebook `fit`), `path` is None and text is only
    shown. `step` is the global step of the evaluation being reported (the
    trainer sets it before each `report`).
    """

    def __init__(self, workdir: str | None, progress: "Progress | None" = None,
                 tensorboard: TensorBoardWriter | None = None):
        self.workdir = workdir
        self.step = 0
        self._progress = progress
        self._tensorboard = tensorboard

    def path(self, *parts: str) -> str | None:
        """A file in the workdir (its folder made), or None when the run writes nothing."""
        if self.workdir is None:
            return None
        path = os.path.join(self.workdir, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    def text(self, text: str, *, file: str | None = None, header: str = "", tag: str = "report/text") -> None:
        """Shows `text` on the console, writes it to TensorBoard (`tag`) and, with `file`, appends it
        (after `header`) to that file in the workdir."""
        if self._progress is not None:
            self._progress.message(text)
        if self._tensorboard is not None:
            self._tensorboard.text(self.step, tag, text)
        path = self.path(file) if file else None
        if path is not None:
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"{header}{text}\n\n")

    def image(self, path: str | None, *, tag: str) -> None:
        """Sends a PNG the report wrote (at `path`, from `self.path(...)`) to TensorBoard's Images tab under `tag`."""
        if path is not None and self._tensorboard is not None:
            with open(path, "rb") as f:
                self._tensorboard.image(self.step, tag, f.read())
