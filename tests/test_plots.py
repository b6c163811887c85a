"""Learning-curve PNGs: valid images of the expected size, ensembles, regression, cut-off records, errors."""

import json
import math
import os
import re

import numpy as np
import pytest
from PIL import Image

from jaxdl import plots
from jaxdl.errors import InputError

TRAIN_RGB, EVAL_RGB = (31, 119, 180), (255, 127, 14)  # matplotlib's C0 and C1


def make_records(epochs=6, *, members=0, metric="accuracy", splits=("test",), train=True):
    """Records like a run's metrics.jsonl: a falling loss and a rising metric per epoch."""
    records = []
    for epoch in range(1, epochs + 1):
        for kind, split in ([("train", None)] if train else []) + [("eval", s) for s in splits]:
            loss = 1.0 / epoch + (0.05 if kind == "eval" else 0.0)
            record = {"type": kind, "epoch": epoch, "step": 10 * epoch, "loss": loss, metric: 1.0 - loss / 2}
            if split:
                record["split"] = split
            if members:
                record["loss_members"] = [loss * (1 + 0.1 * m) for m in range(members)]
                record[f"{metric}_members"] = [1.0 - loss * (1 + 0.1 * m) / 2 for m in range(members)]
                record["loss"] = float(np.mean(record["loss_members"]))
                record[metric] = float(np.mean(record[f"{metric}_members"]))
            records.append(record)
    return records


def check_png(path, size):
    assert os.path.isfile(path)
    with Image.open(path) as image:
        image.verify()  # raises on a truncated or corrupt file
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == size
        return np.asarray(image.convert("RGB"))


def pixels(image, rgb):
    return int((image == rgb).all(axis=-1).sum())


def test_learning_curves_writes_a_two_panel_png(tmp_path):
    path = plots.learning_curves(make_records(), str(tmp_path / "out" / "curves.png"), title="a run")
    assert path == str(tmp_path / "out" / "curves.png")
    image = check_png(path, (1100, 420))
    assert pixels(image, TRAIN_RGB) > 500 and pixels(image, EVAL_RGB) > 500
    assert os.listdir(tmp_path / "out") == ["curves.png"]  # the temporary file was renamed, not left behind


def test_only_the_series_present_are_drawn(tmp_path):
    image = check_png(plots.learning_curves(make_records(train=False), str(tmp_path / "c.png")), (1100, 420))
    assert pixels(image, TRAIN_RGB) == 0
    assert pixels(image, EVAL_RGB) > 500


def test_ensemble_draws_members_and_their_mean(tmp_path):
    records = make_records(members=3)
    epochs, values, members = plots.curve(records, "loss", kind="train")
    assert epochs == [1, 2, 3, 4, 5, 6]
    assert len(members) == 3 and all(len(m) == 6 for m in members)
    np.testing.assert_allclose(values, np.mean(members, axis=0))
    loss_panel, accuracy_panel = plots.learning_curves_figure(records).axes
    for ax in (loss_panel, accuracy_panel):
        widths = sorted(line.get_linewidth() for line in ax.get_lines())
        assert len(widths) == 8  # train and eval: 3 members and the mean each
        assert max(widths[:6]) < min(widths[6:])  # members thin, means bold
    assert [t.get_text() for t in loss_panel.get_legend().get_texts()] == [
        "train (mean of 3)", "test (mean of 3)", "members"]
    single = plots.learning_curves_figure(make_records()).axes[0]
    assert len(single.get_lines()) == 2
    check_png(plots.learning_curves(records, str(tmp_path / "ensemble.png")), (1100, 420))


def test_curve_takes_the_later_record_of_an_epoch_and_reads_null_as_nan():
    records = [
        {"type": "train", "epoch": 2, "loss": 0.5},
        {"type": "train", "epoch": 1, "loss": 0.9},
        {"type": "train", "epoch": 2, "loss": 0.4},  # written again by a resumed run
        {"type": "train", "epoch": 3, "loss": None},  # a diverged loss is stored as null
        {"type": "eval", "split": "test", "epoch": 3, "loss": 7.0},
        {"type": "train", "epoch": 4, "loss_members": [1.0, 3.0]},
    ]
    epochs, values, members = plots.curve(records, "loss", kind="train")
    assert epochs == [1, 2, 3, 4]
    assert values[:2] == [0.9, 0.4] and math.isnan(values[2]) and values[3] == 2.0
    assert len(members) == 2 and members[0][3] == 1.0 and math.isnan(members[0][0])


def test_validation_split_comes_first_and_regression_plots_mae(tmp_path):
    records = make_records(metric="mae", splits=("validation",))
    records.append({"type": "eval", "split": "test", "epoch": 6, "step": 60, "loss": 0.3, "mae": 0.2})
    assert plots.eval_splits(records) == ["validation", "test"]
    assert plots.second_metric(records) == "mae"
    check_png(plots.learning_curves(records, str(tmp_path / "reg.png")), (1100, 420))


def test_records_with_only_a_loss_get_one_panel(tmp_path):
    records = [{"type": "train", "epoch": e, "loss": 1.0 / e} for e in (1, 2, 3)]
    assert plots.second_metric(records) is None
    check_png(plots.learning_curves(records, str(tmp_path / "loss.png")), (550, 420))


def test_write_run_plots_tolerates_a_cut_off_last_line(tmp_path):
    workdir = tmp_path / "run1"
    workdir.mkdir()
    (workdir / "config.json").write_text(json.dumps({"data": {"name": "breast_cancer", "csv_path": None}}))
    lines = [json.dumps(r) for r in make_records(epochs=150, members=2)]
    (workdir / "metrics.jsonl").write_text("\n".join(lines) + "\n" + lines[0][:25])  # a crash mid-write
    paths = plots.write_run_plots(str(workdir))
    assert paths == [str(workdir / "plots" / "learning_curves.png")]
    check_png(paths[0], (1100, 420))
    assert plots.run_title(str(workdir)) == "run1: breast_cancer"


def test_write_run_plots_of_a_run_with_no_records_writes_nothing(tmp_path):
    assert plots.write_run_plots(str(tmp_path)) == []
    assert not (tmp_path / "plots").exists()


def test_errors_name_the_argument_and_value(tmp_path):
    with pytest.raises(InputError, match="records: 1 records with no train or eval loss"):
        plots.learning_curves([{"type": "manifest"}], str(tmp_path / "a.png"))
    with pytest.raises(InputError, match=r"path='.*curves\.pdf'.*expected a file name ending in \.png"):
        plots.learning_curves(make_records(), str(tmp_path / "curves.pdf"))
    missing = str(tmp_path / "missing")
    with pytest.raises(InputError, match=re.escape(f"workdir={missing!r} is not a directory")):
        plots.write_run_plots(missing)
