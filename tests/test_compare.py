"""Comparing runs: loading workdirs, config differences, the table, the plot and their errors."""

import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from jaxdl import compare
from jaxdl.errors import InputError

RUN_RGB = ((31, 119, 180), (255, 127, 14), (44, 160, 44))  # matplotlib's C0, C1, C2
BASE_CONFIG = {
    "seed": 0,
    "data": {"name": "breast_cancer", "validation_fraction": 0.0},
    "model": {"mlp": {"hidden": [12, 8], "activation": "relu"}},
    "optimizer": {"name": "adam", "learning_rate": 0.001},
    "train": {"epochs": 4, "batch_size": 10},
}


def write_run(directory, *, config=None, offset=0.0, members=0, final=True, epochs=4, cut_off=False, eval_records=True):
    """A fake workdir: config.json, metrics.jsonl and (when `final`) summary.json."""
    os.makedirs(directory)
    config = config or BASE_CONFIG
    lr = config["optimizer"]["learning_rate"]
    lines = []
    for epoch in range(1, epochs + 1):
        loss = lr * 100 / epoch + offset
        train = {"type": "train", "epoch": epoch, "step": 10 * epoch, "loss": loss, "accuracy": 1 - loss / 4}
        evaluation = {"type": "eval", "split": "test", "epoch": epoch, "step": 10 * epoch, "loss": loss + 0.1,
                      "accuracy": 1 - loss / 3, "auc": 0.9}
        for record in (train, evaluation):
            if members:
                record["loss_members"] = [record["loss"]] * members
                record["accuracy_members"] = [record["accuracy"]] * members
        lines += [json.dumps(train)] + ([json.dumps(evaluation)] if eval_records else [])
    text = "\n".join(lines) + "\n"
    if cut_off:
        text += lines[-1][:17]  # the last line, cut off by a crash
    with open(os.path.join(directory, "metrics.jsonl"), "w") as f:
        f.write(text)
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    if final:
        summary = {"eval_accuracy": 0.9567, "eval_loss": 0.12345, "eval_auc": 0.99, "train_loss": 0.0456,
                   "train_accuracy": 0.98, "steps": 10 * epochs, "epochs": epochs, "wall_seconds": 3.21,
                   "dataset": "breast_cancer", "seed": 0}
        if members:
            summary.update({"ensemble_size": members, "best_member": 0, "eval_accuracy_members": [0.9567] * members})
        with open(os.path.join(directory, "summary.json"), "w") as f:
            json.dump(summary, f)
    return str(directory)


def with_changes(**changes):
    """BASE_CONFIG with dotted keys changed, e.g. with_changes(**{"optimizer.learning_rate": 0.01})."""
    config = json.loads(json.dumps(BASE_CONFIG))
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = config
        for parent in parents:
            node = node[parent]
        node[last] = value
    return config


@pytest.fixture
def three_runs(tmp_path):
    return [
        write_run(tmp_path / "base"),
        write_run(tmp_path / "fast", config=with_changes(**{"optimizer.learning_rate": 0.01}), cut_off=True),
        write_run(tmp_path / "wide", config=with_changes(**{"model.mlp.hidden": [64, 32]}), offset=0.2, members=3),
    ]


def test_load_runs_reads_config_summary_and_records(three_runs):
    runs = compare.load_runs(three_runs)
    assert [r["name"] for r in runs] == ["base", "fast", "wide"]
    assert runs[1]["config"]["optimizer"]["learning_rate"] == 0.01
    assert runs[0]["summary"]["eval_accuracy"] == 0.9567
    assert len(runs[1]["records"]) == 8  # the cut-off last line is skipped
    assert runs[2]["records"][0]["loss_members"] == [0.1 + 0.2] * 3


def test_runs_of_the_same_name_are_told_apart(tmp_path):
    runs = compare.load_runs([write_run(tmp_path / "a" / "run"), write_run(tmp_path / "b" / "run") + "/"])
    assert [r["name"] for r in runs] == ["a/run", "b/run"]


def test_config_differences_lists_exactly_the_differing_keys(three_runs, tmp_path):
    runs = compare.load_runs(three_runs)
    assert compare.config_differences(runs) == {
        "model.mlp.hidden": [[12, 8], [12, 8], [64, 32]],
        "optimizer.learning_rate": [0.001, 0.01, 0.001],
    }
    assert compare.config_differences(runs[:1]) == {}
    extra = with_changes()
    extra["optimizer"]["momentum"] = 0.9  # a key only one run has
    runs.append(compare.load_runs([write_run(tmp_path / "extra", config=extra)])[0])
    assert compare.config_differences(runs)["optimizer.momentum"] == [None, None, None, 0.9]


def test_table_has_a_row_per_run_with_its_differences_and_metrics(three_runs):
    text = compare.table(compare.load_runs(three_runs))
    lines = text.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["run", "model.mlp.hidden", "optimizer.learning_rate", "eval accuracy", "eval loss", "eval auc",
                      "train loss", "steps", "wall s"]
    assert re.fullmatch(r"\|[-:|]+\|", lines[1])
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")] for line in lines[2:]}
    assert set(rows) == {"base", "fast", "wide"}
    assert rows["fast"][1:] == ["[12, 8]", "0.01", "0.9567", "0.1235", "0.9900", "0.0456", "40", "3.2"]
    assert rows["wide"][1] == "[64, 32]"
    assert "seed" not in text and "adam" not in text  # equal in every run
    assert len({len(line) for line in lines}) == 1  # columns padded to line up


def test_table_marks_an_unfinished_run_and_uses_its_last_records(tmp_path):
    runs = compare.load_runs([write_run(tmp_path / "done"), write_run(tmp_path / "going", final=False)])
    text = compare.table(runs)
    row = next(line for line in text.splitlines() if "going" in line)
    assert "going *" in row
    assert "0.0250" in row and "0.1250" in row  # train and eval loss of epoch 4
    assert text.endswith("* unfinished (no summary.json yet): figures from its last metrics records")


def test_comparison_plot_is_a_png(three_runs, tmp_path):
    path = compare.comparison_plot(compare.load_runs(three_runs), str(tmp_path / "plots" / "cmp.png"))
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == (1100, 420)  # two panels; the legend beside them fits in the figure
        rgb = np.asarray(image.convert("RGB"))
    for colour in RUN_RGB:  # a curve of each run
        assert (rgb == colour).all(axis=-1).sum() > 300


def test_compare_returns_the_table_and_writes_the_plot_to_the_current_directory(three_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, path = compare.compare(three_runs)
    assert path == "comparison.png" and os.path.isfile(tmp_path / "comparison.png")
    assert text == compare.table(compare.load_runs(three_runs))


def test_a_directory_without_a_run_is_named_in_the_error(three_runs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=re.escape(f"workdir {str(empty)!r} holds no run")):
        compare.load_runs([three_runs[0], str(empty)])
    missing = str(tmp_path / "missing")
    with pytest.raises(InputError, match=re.escape(f"workdir {missing!r} is not a directory")):
        compare.compare([missing], str(tmp_path / "c.png"))
    with pytest.raises(InputError, match="expected a list of one or more run directories"):
        compare.load_runs([])


def test_bad_plot_path_and_runs_without_eval_records_are_refused(three_runs, tmp_path):
    with pytest.raises(InputError, match=r"plot_path='out\.svg'"):
        compare.compare(three_runs, "out.svg")
    runs = compare.load_runs([write_run(tmp_path / "no_eval", eval_records=False, final=False)])
    with pytest.raises(InputError, match="none has eval records"):
        compare.comparison_plot(runs, str(tmp_path / "c.png"))
