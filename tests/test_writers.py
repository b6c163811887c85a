import io
import json
import os

from jaxdl import writers


class Terminal(io.StringIO):
    def isatty(self):
        return True


RECORD = {"epoch": 2, "train_loss": 0.5, "train_accuracy": 0.75, "eval_accuracy": 0.8, "eval_auc": float("nan"),
          "steps_per_second": 1234.5}


def test_progress_redraws_one_line_on_a_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = Terminal()
    progress = writers.Progress(2, stream=out)
    progress.epoch({**RECORD, "epoch": 1})
    progress.epoch(RECORD)
    text = out.getvalue()
    assert text.count("\r\033[K") == 2 and text.endswith("\n") and text.count("\n") == 1
    assert "epoch 2/2 [####################]" in text and "test accuracy 0.8000" in text and "1,234 steps/s" in text
    assert "auc" not in text  # undefined metrics are left out


def test_progress_line_fits_a_narrow_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    out = Terminal()
    writers.Progress(2, stream=out).epoch(RECORD)
    assert out.getvalue() == "\r\033[K" + "epoch 2/2 [####################]  loss 0.5000"[:39] + "\n"


def test_progress_prints_plain_lines_when_not_a_terminal_and_nothing_when_quiet():
    out = io.StringIO()
    writers.Progress(2, stream=out).epoch(RECORD)
    assert out.getvalue() == "epoch 2/2  loss 0.5000  accuracy 0.7500  test accuracy 0.8000  1,234 steps/s\n"
    quiet = io.StringIO()
    progress = writers.Progress(2, stream=quiet, quiet=True)
    progress.epoch(RECORD)
    progress.message("hello")
    assert quiet.getvalue() == ""


def test_json_lines_write_null_for_undefined_metrics(tmp_path):
    path = str(tmp_path / "m.jsonl")
    writer = writers.JsonLinesWriter(path)
    writer.write({"auc": float("nan"), "loss": 0.25})
    writer.close()
    assert json.loads(open(path).read()) == {"auc": None, "loss": 0.25}


def test_write_json_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    path = str(tmp_path / "summary.json")
    writers.write_json(path, {"a": 1})
    writers.write_json(path, {"a": (2, 3), "auc": float("nan")})
    assert json.load(open(path)) == {"a": [2, 3], "auc": None}
    assert os.listdir(tmp_path) == ["summary.json"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
