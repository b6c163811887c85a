"""CSV files of numbers, like the tutorial's `pima-indians-diabetes.csv`: features and a label column."""

import csv
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


def read(path: str, *, label_column: str = "last", header: str = "auto", delimiter: str = ",") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Reads a CSV file of numbers into features and labels.

    Args:
      path: the file.
      label_column: "last", "first", a column index ("8", "-1") or, with a
        header row, a column name.
      header: "auto" (a first row that is not all numbers is a header),
        "true" or "false".
      delimiter: one character.

    Returns:
      (features float32 (N, F), labels (N,), feature names).

    Raises:
      InputError: naming the file, the line (counting from 1, header
        included) and the problem: a missing or empty file, a non-numeric
        cell, a row with a different number of fields.
    """
    values, names, body = _read_numbers(path, header=header, delimiter=delimiter, argument="data.csv_path")
    width = values.shape[1]
    label = _label_index(label_column, names, width, path)
    features = np.delete(values, label, axis=1).astype(np.float32)
    labels = values[:, label]
    labels = labels.astype(np.int32) if np.all(labels == np.round(labels)) else labels.astype(np.float32)
    feature_names = [n for i, n in enumerate(names) if i != label] if names else [f"f{i}" for i in range(width - 1)]
    return features, labels, feature_names


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
    with open(path, newline="", encoding="utf-8") as f:
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
