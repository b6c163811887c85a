"""CSV files of numbers, like the tutorial's `pima-indians-diabetes.csv`: features and a label column."""

import csv
import dataclasses
import os

import numpy as np

from jaxdl.errors import InputError


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _label_index(label_column: str, header: list[str] | None, width: int, path: str) -> int:
    if label_column == "last":
        return width - 1
    if label_column == "first":
        return 0
    try:
        index = int(label_column)
    except ValueError:
        if header is None or label_column not in header:
            names = f"; the columns are: {', '.join(header)}" if header else " and the file has no header row"
            raise InputError(f"data.label_column={label_column!r} is not a column of {path}{names}") from None
        return header.index(label_column)
    if not -width <= index < width:
        raise InputError(f"data.label_column={label_column!r} is out of range: {path} has {width} columns")
    return index % width


def _raise_first_error(path, body, width, first_line, names):
    for line, row in body:
        if len(row) != width:
            raise InputError(f"{path}, line {line}: the row has {len(row)} fields; expected {width} like line {first_line}")
        for c, cell in enumerate(row):
            if not _is_number(cell):
                column = f"column {c + 1}" + (f" ({names[c]})" if names else "")
                raise InputError(f"{path}, line {line}, {column}: {cell!r} is not a number")
    raise InputError(f"{path}: the rows could not be read as numbers")


# A few non-integer labels among many integer ones look like a typo in a file of classes, not like
# regression targets: at most this fraction of the rows, with at least MIN_INTEGER_ROWS integer rows.
FEW_NON_INTEGERS = 0.01
MIN_INTEGER_ROWS = 99
INT32_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Table:
    """A CSV file read for supervised learning.

    Attributes:
      features: float32 (N, F).
      labels: (N,): int32 class numbers 0 .. num_classes - 1, or float32
        continuous targets.
      feature_names: the header's names of the feature columns, or f0, f1, ...
      num_classes: the number of classes; None for continuous targets.
      labels_read_as: "" for classes; for continuous targets, what was read
        and why ("labels read as continuous targets (not all integers: line
        17 holds 1.5)"), for the run's description.
    """

    features: np.ndarray
    labels: np.ndarray
    feature_names: list[str]
    num_classes: int | None
    labels_read_as: str = ""


def read(path: str, *, label_column: str = "last", header: str = "auto", delimiter: str = ",") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reads a CSV file of numbers into features and labels, the labels as they are.

    `read_table` takes the same arguments and says how a run reads the
    labels (classes or continuous targets), refusing labels that look wrong.

    Returns:
      (features float32 (N, F), labels (N,): int32 when all are integers,
      else float32, feature names).
    """
    table = read_table(path, label_column=label_column, header=header, delimiter=delimiter, continuous=True)
    return table.features, table.labels, table.feature_names


def read_table(path: str, *, label_column: str = "last", header: str = "auto", delimiter: str = ",",
               continuous: bool = False) -> Table:
    """Reads a CSV file of numbers into features and labels, and says how the labels were read.

    The file is UTF-8; a byte-order mark at its start is dropped. Labels
    that are all integers are classes, which must be numbered 0 to K-1.
    Labels that are not all integers are continuous targets (regression),
    except that a few non-integer labels among integer ones (at most 1% of
    the rows, with at least 99 integer rows) are refused as a likely data
    error, unless `continuous` is set.

    Args:
      path: the file.
      label_column: "last", "first", a column index ("8", "-1") or, with a
        header row, a column name.
      header: "auto" (a first row that is not all numbers is a header),
        "true" or "false".
      delimiter: one character.
      continuous: the labels are regression targets (train.loss is
        mean_squared_error): any finite numbers are accepted, and integer
        labels are not taken as classes (num_classes None).

    Raises:
      InputError: naming the file, the line (counting from 1, header
        included) and the problem: a missing or empty file, a non-numeric
        cell, a row with a different number of fields; a few non-integer
        labels among integers; integer class labels not numbered 0 to K-1.
    """
    values, names, body = _read_numbers(path, header=header, delimiter=delimiter, argument="data.csv_path")
    width = values.shape[1]
    label = _label_index(label_column, names, width, path)
    features = np.delete(values, label, axis=1).astype(np.float32)
    feature_names = [n for i, n in enumerate(names) if i != label] if names else [f"f{i}" for i in range(width - 1)]
    labels = values[:, label]
    integer = (labels == np.round(labels)) & (np.abs(labels) <= INT32_MAX)
    if not integer.all():
        first = int(np.flatnonzero(~integer)[0])
        line, cell = body[first][0], body[first][1][label].strip()
        odd, count = int(np.sum(~integer)), len(labels)
        if not continuous and odd <= FEW_NON_INTEGERS * count and count - odd >= MIN_INTEGER_ROWS:
            raise InputError(
                f"{path}, line {line}: the label {cell!r} is not an integer, but {count - odd} of the {count} labels "
                f"are; a few non-integer labels among integer classes look like a data error: fix "
                f"{'that row' if odd == 1 else f'the {odd} rows'}, or set train.loss=mean_squared_error to train a "
                "regression on these labels")
        why = "too large for class numbers" if labels[first] == np.round(labels[first]) else "not all integers"
        return Table(features, labels.astype(np.float32), feature_names, None,
                     f"labels read as continuous targets ({why}: line {line} holds {cell})")
    if continuous:
        return Table(features, labels.astype(np.int32), feature_names, None)
    classes = np.unique(labels).astype(np.int64)
    if len(classes) > 1 and not np.array_equal(classes, np.arange(len(classes))):
        _refuse_class_numbers(path, classes)
    return Table(features, labels.astype(np.int32), feature_names, max(int(classes[-1]) + 1, 1))


def _refuse_class_numbers(path: str, classes: np.ndarray):
    """Refuses integer labels that are not the class numbers 0 .. K-1, saying how to renumber them."""
    k = len(classes)
    listing = ", ".join(map(str, classes[:6].tolist())) + (f", ... {classes[-1]}" if k > 6 else "")
    if np.array_equal(classes, np.arange(k) + classes[0]):
        fix = f"subtract {classes[0]} from every label" if classes[0] > 0 else f"add {-classes[0]} to every label"
    else:
        # the first missing numbers from 0 (all below k + 3)
        missing = np.setdiff1d(np.arange(min(int(classes[-1]) + 1, k + 3)), classes)[:3].tolist() if classes[0] >= 0 else []
        absent = (f" (class {missing[0]} never occurs)" if len(missing) == 1 else
                  f" (classes {', '.join(map(str, missing))} never occur)" if missing else "")
        fix = f"renumber them{absent}"
    raise InputError(
        f"{path}: the labels are the integers {listing} ({k} distinct values); class labels must be numbered "
        f"0 to {k - 1}: {fix}, or set train.loss=mean_squared_error if they are regression targets")


def read_features(path: str, *, header: str = "auto", delimiter: str = ",", argument: str = "--input") -> np.ndarray:
    """Reads a CSV file whose every column is a feature (no label): float32 (N, F)."""
    values, _, _ = _read_numbers(path, header=header, delimiter=delimiter, argument=argument)
    return values.astype(np.float32)


def _read_numbers(path: str, *, header: str, delimiter: str, argument: str):
    """The numbers of a CSV file as float64 (N, width), its column names (or None), and its data rows."""
    if not os.path.isfile(path):
        raise InputError(f"{argument}={path!r}: no such file")
    if header not in ("auto", "true", "false"):
        raise InputError(f"data.csv_header={header!r}: expected auto, true or false")
    if len(delimiter) != 1:
        raise InputError(f"data.csv_delimiter={delimiter!r}: expected one character")
    with open(path, newline="", encoding="utf-8-sig") as f:  # a byte-order mark is not data
        rows = [(number, row) for number, row in enumerate(csv.reader(f, delimiter=delimiter), 1) if any(c.strip() for c in row)]
    if not rows:
        raise InputError(f"{path}: the file is empty; expected rows of numbers separated by {delimiter!r}")
    first_line, first = rows[0]
    has_header = header == "true" or (header == "auto" and not all(_is_number(c) for c in first))
    names = [c.strip() for c in first] if has_header else None
    body = rows[1:] if has_header else rows
    if not body:
        raise InputError(f"{path}: the file has a header row but no data rows")
    width = len(first)
    try:  # the fast path: numpy parses every cell at once
        values = np.asarray([row for _, row in body], dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != width:
            raise ValueError("ragged")
    except ValueError:  # find and name the first bad row or cell
        _raise_first_error(path, body, width, first_line, names)
    if not np.all(np.isfinite(values)):
        r, c = np.argwhere(~np.isfinite(values))[0]
        raise InputError(f"{path}, line {body[r][0]}, column {c + 1}: {body[r][1][c]!r} is not a finite number")
    return values, names, body
