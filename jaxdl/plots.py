"""Learning-curve plots of a run, rendered headless to PNG files.

Figures are built with `matplotlib.figure.Figure` and the Agg canvas, never
pyplot: no global figure state (safe in threads), no window ever opens, and
no display is needed. Files are written atomically, so a reader (a browser
refreshing a run's plot) never sees a partial PNG.
"""

import io
import math
import os

from jaxdl import workdir as workdir_lib
from jaxdl.errors import InputError
from jaxdl.writers import write_bytes

DIRECTORY = "plots"
LEARNING_CURVES = "learning_curves.png"

# Panel size in inches; at DPI 100 a two-panel figure is 1100 x 420 pixels.
PANEL_WIDTH, HEIGHT, DPI = 5.5, 4.2, 100
TRAIN_COLOR, EVAL_COLORS = "C0", ("C1", "C2", "C3")


def curve(records: list[dict], name: str, *, kind: str, split: str | None = None):
    """One metric of one record type against epoch.

    Args:
      records: the records of a run's metrics.jsonl.
      name: the metric, e.g. "loss" or "accuracy".
      kind: the record type, "train" or "eval".
      split: for eval records, only this split ("test", "validation"); None for any.

    Returns:
      (epochs, values, members): the sorted epochs, the metric at each (NaN
      where it is missing or undefined), and for an ensemble one list per
      member (an empty list for a single model).
    """
    by_epoch = {}
    for record in records:
        if record.get("type") != kind or "epoch" not in record:
            continue
        if split is not None and record.get("split") != split:
            continue
        if name in record or f"{name}_members" in record:
            # A resumed run writes the epochs after its checkpoint again: the later record is the one that counts.
            by_epoch[record["epoch"]] = record
    epochs = sorted(by_epoch)
    values, per_epoch_members = [], []
    for epoch in epochs:
        record = by_epoch[epoch]
        members = [_number(v) for v in record.get(f"{name}_members") or []]
        value = record.get(name)
        if value is None and members:
            finite = [m for m in members if math.isfinite(m)]
            value = sum(finite) / len(finite) if finite else None
        values.append(_number(value))
        per_epoch_members.append(members)
    count = max((len(m) for m in per_epoch_members), default=0)
    members = [[m[i] if i < len(m) else math.nan for m in per_epoch_members] for i in range(count)]
    return epochs, values, members


def _number(value) -> float:
    # JSON has no NaN: the writers store an undefined metric (AUC of one class, a diverged loss) as null.
    return math.nan if value is None else float(value)


def eval_splits(records: list[dict]) -> list[str]:
    """The splits of a run's eval records, the one evaluated during training first.

    A run with a validation split evaluates on it every epoch and on the test
    split once at the end, so the split with the most records comes first.
    """
    counts = {}
    for record in records:
        if record.get("type") == "eval":
            split = record.get("split", "test")
            counts[split] = counts.get(split, 0) + 1
    return sorted(counts, key=lambda split: -counts[split])


def second_metric(records: list[dict]) -> str | None:
    """The metric of the second panel: accuracy for classification, mae for regression, or None."""
    for name in ("accuracy", "mae"):
        if any(name in r or f"{name}_members" in r for r in records if r.get("type") in ("train", "eval")):
            return name
    return None


def figure(panels: int, *, title: str = ""):
    """A figure with `panels` side-by-side axes on an Agg canvas (no pyplot).

    Returns:
      (figure, list of axes).
    """
    # Imported here, not at the top: matplotlib costs ~0.5 s to import, which
    # `import jaxdl` and commands that never plot should not pay.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Constrained layout makes room for titles, labels and legends, so no text is clipped.
    fig = Figure(figsize=(PANEL_WIDTH * panels, HEIGHT), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
    if title:
        fig.suptitle(title)
    return fig, axes


def style_axes(ax, metric: str, title: str) -> None:
    """Labels, grid and whole-epoch ticks of one panel."""
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
    ax.grid(True, alpha=0.3)


def save_png(fig, path: str) -> str:
    """Renders `fig` to a PNG at `path` atomically, creating its directory.

    Returns:
      `path`.
    """
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    write_bytes(path, buffer.getvalue())
    return path


def check_png_path(path: str, argument: str = "path") -> None:
    """Raises InputError unless `path` names a .png file."""
    if not isinstance(path, str) or not path.lower().endswith(".png"):
        raise InputError(f"{argument}={path!r}: expected a file name ending in .png (plots are written as PNG)")


def _plot_series(ax, epochs, values, members, *, color: str, label: str) -> bool:
    """Draws one series (members thin, mean bold for an ensemble); False when it has no points."""
    if not epochs:
        return False
    # A series of one point (a final test evaluation) is invisible as a line: draw it as a marker.
    marker = "o" if len(epochs) == 1 else None
    for member in members:
        ax.plot(epochs, member, color=color, linewidth=0.8, alpha=0.35, marker=marker, markersize=3)
    if members:
        label = f"{label} (mean of {len(members)})"
    ax.plot(epochs, values, color=color, linewidth=2.2 if members else 1.6, marker=marker, label=label)
    return True


def learning_curves(records: list[dict], path: str, *, title: str = "") -> str:
    """Renders a run's learning curves to a PNG.

    Two panels, loss and accuracy (mae for regression, when the records hold
    no accuracy), each with the train and eval figures against epoch. For an
    ensemble (records with `<name>_members`), each member is a thin line and
    the mean a bold one.

    Args:
      records: the records of a run's metrics.jsonl (`jaxdl.workdir.records`).
      path: the PNG file to write (its directory is created).
      title: a title over both panels.

    Returns:
      `path`.

    Raises:
      InputError: when `path` does not end in .png, or `records` holds no
        train or eval record with a loss.
    """
    check_png_path(path)
    return save_png(learning_curves_figure(records, title=title), path)


def learning_curves_figure(records: list[dict], *, title: str = ""):
    """The figure that `learning_curves` renders (for a caller that shows or saves it another way).

    Args:
      records: the records of a run's metrics.jsonl.
      title: a title over both panels.

    Returns:
      A `matplotlib.figure.Figure` on an Agg canvas.

    Raises:
      InputError: when `records` holds no train or eval record with a loss.
    """
    if not has_curves(records):
        raise InputError(
            f"records: {len(records)} records with no train or eval loss; "
            "expected the records of a run's metrics.jsonl, with at least one epoch done"
        )
    metrics = ["loss"] + [m for m in [second_metric(records)] if m]
    splits = eval_splits(records)
    fig, axes = figure(len(metrics), title=title)
    for ax, metric in zip(axes, metrics):
        _plot_series(ax, *curve(records, metric, kind="train"), color=TRAIN_COLOR, label="train")
        for i, split in enumerate(splits):
            # A split evaluated only after training (the test split of a run with a validation split) is one point.
            label = split if i == 0 else f"{split}, after training"
            _plot_series(ax, *curve(records, metric, kind="eval", split=split),
                         color=EVAL_COLORS[i % len(EVAL_COLORS)], label=label)
        style_axes(ax, metric, metric)
        handles, labels = ax.get_legend_handles_labels()
        if any(r.get(f"{metric}_members") for r in records):
            from matplotlib.lines import Line2D

            handles.append(Line2D([], [], color="gray", linewidth=0.8, alpha=0.6))
            labels.append("members")
        if handles:
            ax.legend(handles, labels, loc="best", fontsize="small")
    return fig


def has_curves(records: list[dict]) -> bool:
    """Whether `records` holds a train or eval loss to plot."""
    return any(r.get("type") in ("train", "eval") and ("loss" in r or "loss_members" in r) for r in records)


def write_run_plots(workdir: str) -> list[str]:
    """Writes the plots of the run in `workdir` to `workdir/plots/`.

    Args:
      workdir: a run's directory, holding its metrics.jsonl.

    Returns:
      The paths written: `workdir/plots/learning_curves.png`, or none when the
      run has no train or eval records yet.

    Raises:
      InputError: when `workdir` is not a directory.
    """
    if not os.path.isdir(workdir):
        raise InputError(f"workdir={workdir!r} is not a directory; expected a run's workdir")
    records = workdir_lib.records(workdir)
    if not has_curves(records):
        return []
    path = os.path.join(workdir, DIRECTORY, LEARNING_CURVES)
    return [learning_curves(records, path, title=run_title(workdir))]


def run_title(workdir: str) -> str:
    """A run's name (its directory's name) and, when its config says, its dataset."""
    name = os.path.basename(os.path.normpath(os.path.abspath(workdir)))
    config = workdir_lib.stored_config(workdir) or {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    # A CSV run keeps the default dataset name in its config; the file is what it trained on.
    dataset = os.path.basename(data["csv_path"]) if data.get("csv_path") else data.get("name")
    return f"{name}: {dataset}" if dataset else name


def image_grid(images, path: str, *, columns: int, row_titles: tuple[str, ...] = (), title: str = "") -> str:
    """Draws images (N, height, width) or (N, height, width, 3), values in [0, 1], in a grid, to a PNG.

    Args:
      images: the images, row by row.
      path: the PNG file.
      columns: images per row.
      row_titles: a label for the start of each row ("original", ...).
      title: the figure's title.

    Returns:
      `path`.
    """
    from matplotlib.figure import Figure

    check_png_path(path)
    rows = -(-len(images) // columns)
    fig = Figure(figsize=(0.8 * columns + (1.0 if row_titles else 0.0), 0.8 * rows + (0.4 if title else 0.0)))
    axes = fig.subplots(rows, columns, squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index < len(images):
            image = images[index]
            ax.imshow(image, cmap=None if image.ndim == 3 else "gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.axis("off")
    for row, text in enumerate(row_titles):
        axes[row, 0].set_ylabel(text, rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def scatter_by_label(points, labels, path: str, *, title: str = "", axis_labels: tuple[str, str] = ("z1", "z2")) -> str:
    """Draws 2-D points coloured by their integer label (with a legend), to a PNG.

    Returns:
      `path`.
    """
    import numpy as np
    from matplotlib.figure import Figure

    check_png_path(path)
    fig = Figure(figsize=(6.0, 5.0))
    ax = fig.subplots()
    for label in np.unique(labels):
        chosen = labels == label
        ax.scatter(points[chosen, 0], points[chosen, 1], s=9, alpha=0.75, color=f"C{int(label) % 10}", label=str(label))
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    ax.legend(title="label", fontsize=8, markerscale=1.5, loc="best")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
