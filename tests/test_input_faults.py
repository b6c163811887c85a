"""Inputs that used to be misread or to run silently (issue 15, items 5, 6 and 10), each refused or stated.

CSV files with a byte-order mark, one-class or nearly-integer labels, or
classes not numbered from 0; `jaxdl predict` on a .npy array of nan or of
strings; per-layer activations and empty tuple values on the command line.
Every refusal exits 2 with one `jaxdl: error:` line before anything is
written; the runs that go ahead are one epoch on 200 rows.
"""

import json
import os

import numpy as np
import pytest

from jaxdl import cli, config, tasks
from jaxdl.data import csv_source
from jaxdl.errors import InputError

QUICK = ["--config.train.epochs=1", "--config.logging.plots=false", "--config.logging.tensorboard=false"]


def write_csv(path, labels, *, header=None, bom=False):
    """A CSV file of 3 feature columns and the labels (written as given) last; returns its path as a string."""
    x = np.random.default_rng(0).normal(size=(len(labels), 3))
    lines = [",".join(header)] if header else []
    lines += [",".join(f"{v:.4f}" for v in row) + f",{label}" for row, label in zip(x, labels)]
    path.write_text(("\ufeff" if bom else "") + "\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def two_classes(n=200):
    return [int(v) for v in np.random.default_rng(1).integers(0, 2, n)]


def refused(capsys, workdir, *args) -> str:
    """Runs `jaxdl train` expecting exit 2 and nothing written; returns the error message after `jaxdl: error: `."""
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", *QUICK, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxdl: error: "), err
    assert not workdir.exists()
    return err.splitlines()[0][len("jaxdl: error: "):]


def description(cfg_overrides) -> str:
    """The run's description line (`Built.description`, printed before training) for overrides, without training."""
    cfg = config.default_config()
    config.apply_overrides(cfg, cfg_overrides)
    return tasks.build(cfg).description.splitlines()[-1]


# -- 5. CSV files ------------------------------------------------------------------------------


def test_a_bom_is_not_part_of_the_first_row_or_of_the_first_column_name(tmp_path):
    labels = two_classes(20)
    plain = csv_source.read(write_csv(tmp_path / "plain.csv", labels))
    x, y, names = csv_source.read(write_csv(tmp_path / "bom.csv", labels, bom=True))
    assert len(y) == 20 and np.array_equal(x, plain[0]) and np.array_equal(y, plain[1])  # the first row kept
    assert np.array_equal(csv_source.read_features(str(tmp_path / "bom.csv")), np.c_[plain[0], plain[1]].astype(np.float32))
    path = write_csv(tmp_path / "named.csv", labels, header=["label", "b", "c", "d"], bom=True)
    x, y, names = csv_source.read(path, label_column="label")
    assert names == ["b", "c", "d"] and len(y) == 20
    with pytest.raises(InputError) as err:
        csv_source.read(path, label_column="e")
    assert str(err.value) == f"data.label_column='e' is not a column of {path}; the columns are: label, b, c, d"


def test_a_csv_with_a_bom_and_a_header_trains_by_column_name(tmp_path):
    path = write_csv(tmp_path / "bom.csv", two_classes(), header=["a", "b", "c", "label"], bom=True)
    workdir = tmp_path / "run"
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", *QUICK, f"--config.data.csv_path={path}",
                     "--config.data.label_column=label"]) == 0
    assert json.loads((workdir / "summary.json").read_text())["test_examples"] == 40  # 200 rows, none taken as a header


@pytest.mark.parametrize("label", [0, 1, 7])
def test_a_single_class_training_split_is_refused(tmp_path, capsys, label):
    path = write_csv(tmp_path / "one.csv", [label] * 200)
    message = refused(capsys, tmp_path / "run", f"--config.data.csv_path={path}")
    assert message == (
        f"data.csv_path={path!r}: the training split's labels are all {label} (160 rows): a classifier needs at least "
        "two classes; check data.label_column='last', or set train.loss=mean_squared_error if the labels are "
        "regression targets")


def test_a_single_class_is_a_regression_target_when_asked(tmp_path):
    path = write_csv(tmp_path / "one.csv", [7] * 200)
    assert "adam, mean_squared_error" in description([("data.csv_path", path), ("train.loss", "mean_squared_error")])


def test_a_few_non_integer_labels_among_integers_are_refused(tmp_path, capsys):
    labels = two_classes()
    labels[16] = 1.5  # line 17
    path = write_csv(tmp_path / "typo.csv", labels)
    message = refused(capsys, tmp_path / "run", f"--config.data.csv_path={path}")
    assert message == (
        f"{path}, line 17: the label '1.5' is not an integer, but 199 of the 200 labels are; a few non-integer labels "
        "among integer classes look like a data error: fix that row, or set train.loss=mean_squared_error to train a "
        "regression on these labels")


def test_a_few_non_integer_labels_train_a_regression_when_asked_and_the_run_says_so(tmp_path, capsys):
    labels = two_classes()
    labels[16] = 1.5
    path = write_csv(tmp_path / "typo.csv", labels)
    workdir = tmp_path / "run"
    assert cli.main(["train", "--workdir", str(workdir), *QUICK, f"--config.data.csv_path={path}",
                     "--config.train.loss=mean_squared_error"]) == 0
    out = capsys.readouterr().out
    assert (f"{path}: 160 train / 40 test examples, 3 features; labels read as continuous targets (not all integers: "
            "line 17 holds 1.5): regression with mean_squared_error; MLP 3-12-8-1") in out
    assert "eval_loss" in json.loads((workdir / "summary.json").read_text())


def test_labels_that_are_not_integers_are_read_as_continuous_targets_and_said_to_be(tmp_path):
    targets = [f"{v:.3f}" for v in np.random.default_rng(2).normal(size=200)]
    path = write_csv(tmp_path / "targets.csv", targets)
    line = description([("data.csv_path", path)])
    assert (f"{path}: 160 train / 40 test examples, 3 features; labels read as continuous targets (not all integers: "
            f"line 1 holds {targets[0]}): regression with mean_squared_error; MLP 3-12-8-1") in line


@pytest.mark.parametrize(
    "rows, odd, refused_",
    [
        (100, 1, True),    # 99 integer rows, 1% not: a typo
        (200, 2, True),    # 1%
        (99, 1, False),    # only 98 integer rows: too few to call it a typo
        (200, 3, False),   # 1.5%: continuous targets
    ],
)
def test_the_rule_for_a_few_non_integer_labels(tmp_path, rows, odd, refused_):
    labels = two_classes(rows)
    for row in range(odd):
        labels[10 * row + 5] = 0.25
    path = write_csv(tmp_path / "labels.csv", labels)
    if refused_:
        with pytest.raises(InputError, match=f"line 6: the label '0.25' is not an integer, but {rows - odd} of the "
                                             f"{rows} labels are"):
            csv_source.read_table(path)
    else:
        table = csv_source.read_table(path)
        assert table.num_classes is None and table.labels.dtype == np.float32
        assert table.labels_read_as == "labels read as continuous targets (not all integers: line 6 holds 0.25)"
    asked = csv_source.read_table(path, continuous=True)  # train.loss=mean_squared_error: always accepted
    assert asked.num_classes is None and asked.labels[5] == np.float32(0.25)


@pytest.mark.parametrize(
    "labels, fix",
    [
        ([1, 2], "the integers 1, 2 (2 distinct values); class labels must be numbered 0 to 1: subtract 1 from every label"),
        ([-1, 1], "the integers -1, 1 (2 distinct values); class labels must be numbered 0 to 1: renumber them"),
        ([-1, 0], "the integers -1, 0 (2 distinct values); class labels must be numbered 0 to 1: add 1 to every label"),
        ([0, 1, 3], "the integers 0, 1, 3 (3 distinct values); class labels must be numbered 0 to 2: renumber them "
                    "(class 2 never occurs)"),
    ],
)
def test_class_labels_must_be_numbered_from_0(tmp_path, capsys, labels, fix):
    path = write_csv(tmp_path / "classes.csv", [labels[i % len(labels)] for i in range(200)])
    message = refused(capsys, tmp_path / "run", f"--config.data.csv_path={path}")
    assert message == f"{path}: the labels are {fix}, or set train.loss=mean_squared_error if they are regression targets"
    table = csv_source.read_table(path, continuous=True)  # as regression targets they are fine
    assert table.num_classes is None and sorted(set(table.labels.tolist())) == sorted(labels)


def test_class_labels_numbered_from_0_give_one_output_per_class(tmp_path):
    path = write_csv(tmp_path / "three.csv", [i % 3 for i in range(200)])
    table = csv_source.read_table(path)
    assert table.num_classes == 3 and table.labels.dtype == np.int32 and table.labels_read_as == ""
    assert "MLP 3-12-8-3" in description([("data.csv_path", path)])


# -- 6. jaxdl predict on .npy arrays ------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workdir of one epoch on breast_cancer (30 features)."""
    workdir = tmp_path_factory.mktemp("predict") / "run"
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", *QUICK]) == 0
    return str(workdir)


def listing(workdir):
    return sorted((os.path.relpath(os.path.join(d, f), workdir), os.stat(os.path.join(d, f)).st_mtime_ns)
                  for d, _, files in os.walk(workdir) for f in files)


def nan_rows():
    x = np.ones((5, 30), np.float32)
    x[2, 7] = np.nan
    return x


@pytest.mark.parametrize(
    "array, problem",
    [
        (nan_rows(), "x[2, 7] = nan (row 2, counting from 0) is not a finite number; expected a numeric array of finite "
                     "floats or integers"),
        (np.full((3, 30), np.inf), "x[0, 0] = inf (row 0, counting from 0) is not a finite number; expected a numeric "
                                   "array of finite floats or integers"),
        (np.full((2, 30), 1e300), "x[0, 0] = 1e+300 (row 0, counting from 0) is too large for float32; expected a "
                                  "numeric array of finite floats or integers"),
        (np.array([["1.0"] * 30] * 2), "the array has dtype <U3 (strings); expected a numeric array of floats or integers"),
        (np.ones((2, 30)) * 1j, "the array has dtype complex128 (complex numbers); expected a numeric array of floats "
                                "or integers"),
    ],
    ids=["nan", "inf", "too-large", "strings", "complex"],
)
def test_predict_refuses_an_npy_array_that_is_not_finite_numbers(trained, tmp_path, capsys, array, problem):
    path = str(tmp_path / "x.npy")
    np.save(path, array)
    before = listing(trained)
    capsys.readouterr()
    assert cli.main(["predict", "--workdir", trained, "--input", path]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == f"jaxdl: error: --input={path!r}: {problem}"
    assert captured.out == "" and listing(trained) == before


def test_predict_takes_a_numeric_npy_array(trained, tmp_path, capsys):
    path = str(tmp_path / "x.npy")
    np.save(path, np.ones((3, 30), np.int64))
    capsys.readouterr()
    assert cli.main(["predict", "--workdir", trained, "--input", path]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4  # a header and 3 rows


# -- 10. activation lists and empty values on the command line ----------------------------------------


@pytest.mark.parametrize("text", ["relu,tanh", "relu, tanh", "(relu, tanh)", "['relu', 'tanh']"])
def test_an_activation_per_layer_is_read_from_a_comma_separated_list(text):
    cfg = config.default_config()
    config.apply_overrides(cfg, [("model.mlp.activation", text)])
    assert cfg.model.mlp.activation == "relu,tanh"


def test_an_activation_per_layer_from_a_config_file(tmp_path):
    path = tmp_path / "acts.py"
    path.write_text("import ml_collections\n\ndef get_config():\n    cfg = ml_collections.ConfigDict()\n"
                    "    cfg.model = ml_collections.ConfigDict()\n    cfg.model.mlp = ml_collections.ConfigDict()\n"
                    "    cfg.model.mlp.activation = ('relu', 'tanh')\n    return cfg\n")
    assert config.load(str(path)).model.mlp.activation == "relu,tanh"


def test_an_activation_per_layer_trains_with_each_layer_s_activation(tmp_path):
    workdir = tmp_path / "run"
    assert cli.main(["train", "--workdir", str(workdir), "--quiet", *QUICK, "--config.model.mlp.activation=relu,tanh"]) == 0
    assert json.loads((workdir / "config.json").read_text())["model"]["mlp"]["activation"] == "relu,tanh"
    fields = json.loads((workdir / "model.json").read_text())["model"]["definition"]["fields"]
    assert fields["activation"] == {"tuple": ["relu", "tanh"]} and fields["hidden"] == {"tuple": [12, 8]}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--config.model.mlp.activation=relu,tanh,relu"],
         "model.mlp.activation='relu,tanh,relu': 3 name(s) for 2 hidden layer(s); expected one name, or one per hidden "
         "layer (2)"),
        (["--config.model.mlp.activation=relu,relu6"],
         "model.mlp.activation='relu6' is not a known activation; expected one of: elu, gelu, identity, leaky_relu, "
         "relu, sigmoid, softmax, softplus, swish, tanh"),
        (["--config.model.name=cnn", "--config.model.cnn.activation=relu,tanh"],
         "model.cnn.activation='relu,tanh': the CNN takes one activation name for all its layers, e.g. relu"),
        (["--config.model.name=resnet", "--config.model.resnet.activation=relu,tanh"],
         "model.resnet.activation='relu,tanh': the ResNet takes one activation name for all its layers, e.g. relu"),
        (["--config.model.mlp.hidden="],
         "--config.model.mlp.hidden='': the value is empty; expected a comma-separated list such as 12,8; for an empty "
         "tuple write --config.model.mlp.hidden='()'"),
        (["--config.model.mlp.hidden= "],
         "--config.model.mlp.hidden=' ': the value is empty; expected a comma-separated list such as 12,8; for an empty "
         "tuple write --config.model.mlp.hidden='()'"),
        (["--config.ensemble.learning_rate="],
         "--config.ensemble.learning_rate='': the value is empty; expected a comma-separated list; for an empty tuple "
         "write --config.ensemble.learning_rate='()'"),
    ],
    ids=["mlp-count", "mlp-unknown", "cnn", "resnet", "empty-hidden", "blank-hidden", "empty-list"],
)
def test_bad_activation_lists_and_empty_values_are_refused(tmp_path, capsys, args, message):
    assert refused(capsys, tmp_path / "run", *args) == message


def test_an_explicit_empty_hidden_is_stated_in_the_run_s_description(tmp_path, capsys):
    workdir = tmp_path / "run"
    assert cli.main(["train", "--workdir", str(workdir), *QUICK, "--config.model.mlp.hidden=()"]) == 0
    out = capsys.readouterr().out
    assert "breast_cancer: 456 train / 113 test examples, 30 features; MLP 30-1 with no hidden layers (31 parameters)" in out
    assert "with no hidden dense layers" in description([
        ("model.name", "cnn"), ("data.name", "digits"), ("model.cnn.image_shape", "8,8,1"), ("model.cnn.hidden", "()")])
