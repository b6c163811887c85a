"""Comparing runs side by side: how their configs differ, their final metrics, and their eval curves."""

import json
import math
import os

from jaxdl import plots
from jaxdl import workdir as workdir_lib
from jaxdl.errors import InputError

DEFAULT_PLOT = "comparison.png"
RUN_MARKERS = ("config.json", "summary.json", "metrics.jsonl")

# (column header, summary key); a column appears when at least one run has a value for it.
METRIC_COLUMNS = (
    ("eval accuracy", "eval_accuracy"),
    ("eval loss", "eval_loss"),
    ("eval auc", "eval_auc"),
    ("eval mae", "eval_mae"),
    ("train loss", "train_loss"),
    ("steps", "steps"),
    ("wall s", "wall_seconds"),
)
ALWAYS_SHOWN = ("train_loss", "steps", "wall_seconds")


def load_runs(workdirs: list[str]) -> list[dict]:
    """Reads the runs in `workdirs`.

    Args:
      workdirs: run directories, each holding a run's config.json,
        summary.json (once finished) and metrics.jsonl.

    Returns:
      One dict per run, in order: `name` (the directory's name, with parent
      directories added where two runs would share it), `workdir`, `config`
      (nested dict), `summary` (the final metrics; empty for an unfinished
      run) and `records` (metrics.jsonl's records).

    Raises:
      InputError: when `workdirs` is empty, or one of them is not a directory
        or holds no run.
    """
    if isinstance(workdirs, str) or not workdirs:
        raise InputError(f"workdirs={workdirs!r}: expected a list of one or more run directories")
    runs = []
    for workdir, name in zip(workdirs, _names(workdirs)):
        if not os.path.isdir(workdir):
            raise InputError(f"workdir {workdir!r} is not a directory; expected a run's workdir")
        if not any(os.path.exists(os.path.join(workdir, f)) for f in RUN_MARKERS):
            raise InputError(
                f"workdir {workdir!r} holds no run: expected {', '.join(RUN_MARKERS)} in it "
                "(the --workdir of a `jaxdl train` run)"
            )
        runs.append({
            "name": name,
            "workdir": workdir,
            "config": _read_json(workdir, "config.json"),
            "summary": _read_json(workdir, "summary.json"),
            "records": workdir_lib.records(workdir),
        })
    return runs


def _read_json(workdir: str, name: str) -> dict:
    path = os.path.join(workdir, name)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            value = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"workdir {workdir!r}: cannot read {name} ({e}); expected a JSON object") from None
    if not isinstance(value, dict):
        raise InputError(f"workdir {workdir!r}: {name} holds a {type(value).__name__}; expected a JSON object")
    return value


def _names(workdirs: list[str]) -> list[str]:
    """Directory names, lengthened with parent directories until no two are the same."""
    parts = [os.path.normpath(os.path.abspath(w)).split(os.sep) for w in workdirs]
    depth = 1
    while True:
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names) or depth >= max(len(p) for p in parts):
            break
        depth += 1
    # The same directory given twice: number the repeats so each row and curve is told apart.
    seen, out = {}, []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def flatten(config: dict, prefix: str = "") -> dict:
    """A nested config as one level of dotted keys, e.g. {"optimizer.learning_rate": 0.001}."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_differences(runs: list[dict]) -> dict[str, list]:
    """The config keys whose values differ among `runs`.

    Args:
      runs: runs from `load_runs`.

    Returns:
      Dotted key -> each run's value (None where a run's config lacks the
      key), for the keys whose values are not all equal, sorted by key.
    """
    flat = [flatten(run.get("config") or {}) for run in runs]
    keys = sorted(set().union(*flat)) if flat else []
    out = {}
    for key in keys:
        values = [f.get(key) for f in flat]
        if any(v != values[0] for v in values[1:]):
            out[key] = values
    return out


def final_metrics(run: dict) -> dict:
    """A run's final figures: its summary, or for an unfinished run its last records.

    Returns:
      Summary-style keys (`eval_accuracy`, `train_loss`, `steps`, ...), and
      `unfinished`: True when there is no summary yet.
    """
    if run.get("summary"):
        return {**run["summary"], "unfinished": False}
    records = run.get("records") or []
    out = {"unfinished": True}
    train = [r for r in records if r.get("type") == "train"]
    if train:
        out.update({f"train_{k}": v for k, v in train[-1].items() if k not in ("type", "epoch", "step")})
        out["steps"] = train[-1].get("step")
    splits = plots.eval_splits(records)
    evals = [r for r in records if r.get("type") == "eval" and splits and r.get("split", "test") == splits[0]]
    if evals:
        out.update({f"eval_{k}": v for k, v in evals[-1].items() if k not in ("type", "epoch", "step", "split")})
    return out


def table(runs: list[dict]) -> str:
    """The runs as a markdown table (readable as plain text too).

    One row per run: its name, its values of the config keys that differ
    among the runs, its final metrics (eval accuracy, loss, auc and mae where
    any run has them, train loss), steps and wall seconds.

    Args:
      runs: runs from `load_runs`.

    Returns:
      The table, one line per row, with a note under it when a run is
      unfinished (its figures then come from its last metrics records).
    """
    differences = config_differences(runs)
    finals = [final_metrics(run) for run in runs]
    metric_columns = [
        (header, key) for header, key in METRIC_COLUMNS
        if key in ALWAYS_SHOWN or any(f.get(key) is not None for f in finals)
    ]
    header = ["run"] + list(differences) + [h for h, _ in metric_columns]
    rows = []
    for i, (run, final) in enumerate(zip(runs, finals)):
        name = run["name"] + (" *" if final["unfinished"] else "")
        row = [name] + [_config_cell(values[i]) for values in differences.values()]
        row += [_metric_cell(key, final.get(key)) for _, key in metric_columns]
        rows.append(row)
    # Right-align a column whose cells are all numbers, as a spreadsheet would.
    numeric = [all(_is_number(row[c]) for row in rows) for c in range(len(header))]
    numeric[0] = False
    widths = [max(len(r[c]) for r in [header] + rows) for c in range(len(header))]

    def line(cells):
        return "| " + " | ".join(
            c.rjust(w) if right else c.ljust(w) for c, w, right in zip(cells, widths, numeric)
        ) + " |"

    rule = "|" + "|".join("-" * (w + 1) + ":" if right else "-" * (w + 2) for w, right in zip(widths, numeric)) + "|"
    lines = [line(header), rule] + [line(row) for row in rows]
    if any(f["unfinished"] for f in finals):
        lines.append("")
        lines.append("* unfinished (no summary.json yet): figures from its last metrics records")
    return "\n".join(lines)


def _escape(text: str) -> str:
    # A "|" inside a cell would end it in markdown.
    return text.replace("|", "\\|")


def _config_cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return _escape(value)
    return _escape(json.dumps(value))


def _metric_cell(key: str, value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return _escape(str(value))
    if key == "steps":
        return str(int(value))
    if key == "wall_seconds":
        return f"{value:.1f}"
    return f"{value:.4f}"


def _is_number(text: str) -> bool:
    if text == "-":
        return True
    try:
        float(text)
    except ValueError:
        return False
    return True


def comparison_plot(runs: list[dict], path: str) -> str:
    """Renders each run's eval loss and eval accuracy (and mae, for regression) against epoch to one PNG.

    Each run's curve is its mean over an ensemble's members, on the split it
    was evaluated on during training (the validation split where it had one,
    said in its label), labelled by its name.

    Args:
      runs: runs from `load_runs`.
      path: the PNG file to write (its directory is created).

    Returns:
      `path`.

    Raises:
      InputError: when `path` does not end in .png, or no run has eval records.
    """
    plots.check_png_path(path, "plot_path")
    if not any(plots.eval_splits(run.get("records") or []) for run in runs):
        raise InputError(
            f"runs {[run['name'] for run in runs]}: none has eval records in its metrics.jsonl; "
            "expected runs with at least one evaluated epoch"
        )
    all_records = [r for run in runs for r in run.get("records") or [] if r.get("type") == "eval"]
    # Classification and regression runs side by side get both an accuracy and an mae panel.
    metrics = ["loss"] + [m for m in ("accuracy", "mae") if any(m in r or f"{m}_members" in r for r in all_records)]
    fig, axes = plots.figure(len(metrics))
    for i, run in enumerate(runs):
        records = run.get("records") or []
        splits = plots.eval_splits(records)
        if not splits:
            continue
        label = run["name"] if splits[0] == "test" else f"{run['name']} ({splits[0]})"
        # Ten colours, then the same ten dashed, so runs stay told apart up to twenty.
        style = {"color": f"C{i % 10}", "linestyle": "-" if i < 10 else "--", "linewidth": 1.6}
        for ax, metric in zip(axes, metrics):
            epochs, values, _ = plots.curve(records, metric, kind="eval", split=splits[0])
            ax.plot(epochs, values, marker="o" if len(epochs) == 1 else None,
                    label=label if ax is axes[0] else None, **style)
    for ax, metric in zip(axes, metrics):
        plots.style_axes(ax, f"eval {metric}", f"eval {metric}")
    # One legend for both panels, outside them, so long run names never cover a curve.
    fig.legend(loc="outside right upper", fontsize="small", title="run")
    return plots.save_png(fig, path)


def compare(workdirs: list[str], plot_path: str | None = None) -> tuple[str, str]:
    """Compares runs: a table of their differences and final metrics, and a plot of their eval curves.

    Args:
      workdirs: run directories.
      plot_path: where to write the plot; `comparison.png` in the current
        directory when None.

    Returns:
      (the table's text, the plot's path).

    Raises:
      InputError: for a directory that holds no run, or a plot path that does not end in .png.
    """
    plot_path = DEFAULT_PLOT if plot_path is None else plot_path
    plots.check_png_path(plot_path, "plot_path")  # before reading anything
    runs = load_runs(workdirs)
    return table(runs), comparison_plot(runs, plot_path)
