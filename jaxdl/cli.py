"""The `jaxdl` command: the only place that parses flags.

    jaxdl train [--config PATH[:ARG]] [--workdir DIR] [--config.KEY=VALUE ...] [--quiet]
    jaxdl summary [--config PATH[:ARG]] [--config.KEY=VALUE ...]
    jaxdl runs compare DIR [DIR ...] [--plot FILE]
    jaxdl eval --workdir DIR [--latest]
    jaxdl predict --workdir DIR --input FILE [--output FILE] [--latest]
    jaxdl data prepare NAME [--data_dir DIR]
    jaxdl data list [--data_dir DIR]
"""

import argparse
import contextlib
import datetime
import errno
import logging
import os
import re
import sys
import warnings

from jaxdl.errors import DataError, InputError, NonFiniteError

DEFAULT_CONFIG_NAME = "seed_mlp"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxdl",
        description="Train neural networks the JAX way.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print the full traceback instead of one line (it is also kept in WORKDIR/error.log)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = commands.add_parser(
        "train",
        help="train and evaluate a model from a config",
        description=(
            "Train and evaluate a model. With no arguments: the tutorial's 12-8-1 network on "
            "breast_cancer (adam, binary cross-entropy, 150 epochs, batch size 10). Override any "
            "config key with --config.KEY=VALUE, e.g. --config.train.epochs=20 "
            "--config.model.mlp.hidden=64,32 --config.optimizer.name=sgd."
        ),
        allow_abbrev=False,
    )
    train.add_argument("--config", metavar="PATH[:ARG]", help="experiment file defining get_config()")
    train.add_argument("--workdir", metavar="DIR", help="where the run's files go (default: runs/NAME-TIME)")
    train.add_argument("--overwrite", action="store_true", help="start over: replace a run already in --workdir")
    train.add_argument(
        "--force", action="store_true",
        help="resume a run even though result-changing config keys differ from the saved ones",
    )
    train.add_argument("--quiet", action="store_true", help="no per-epoch progress; the final result is still printed")
    train.add_argument("--show-config", action="store_true", help="print the resolved config (every key) and exit")
    summary = commands.add_parser(
        "summary", help="print the model's layers, output shapes and parameter counts, without training",
        allow_abbrev=False,
    )
    summary.add_argument("--config", metavar="PATH[:ARG]", help="experiment file defining get_config()")
    runs = commands.add_parser("runs", help="look at several runs", allow_abbrev=False)
    runs_commands = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    compare = runs_commands.add_parser(
        "compare", help="a table of runs' config differences, final metrics and times, and one comparison plot",
        allow_abbrev=False,
    )
    compare.add_argument("workdirs", nargs="+", metavar="DIR", help="the runs' workdirs")
    compare.add_argument("--plot", metavar="FILE", help="where the comparison plot goes (default: runs-compare.png)")
    evaluate = commands.add_parser(
        "eval", help="evaluate a run's best (or latest) checkpoint on its test split", allow_abbrev=False
    )
    evaluate.add_argument("--workdir", metavar="DIR", required=True, help="the run's directory")
    evaluate.add_argument("--latest", action="store_true", help="the latest checkpoint instead of the best")
    predict = commands.add_parser(
        "predict", help="predict with a run's best (or latest) checkpoint on new raw inputs", allow_abbrev=False
    )
    predict.add_argument("--workdir", metavar="DIR", required=True, help="the run's directory")
    predict.add_argument("--input", metavar="FILE", required=True, help="a CSV file of features (no label column) or a .npy array")
    predict.add_argument("--output", metavar="FILE", help="write the predictions as CSV here (default: standard output)")
    predict.add_argument("--latest", action="store_true", help="the latest checkpoint instead of the best")
    data = commands.add_parser("data", help="prepare and list datasets", allow_abbrev=False)
    data_commands = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    prepare = data_commands.add_parser(
        "prepare",
        help="prepare a dataset as a TFDS dataset (embedded ones offline; others download)",
        allow_abbrev=False,
    )
    prepare.add_argument("name", help="breast_cancer, digits, iris, wine, colour_digits, or any TFDS name (mnist, cifar10, ...)")
    prepare.add_argument("--data_dir", metavar="DIR", help="TFDS data directory (default: TFDS's default)")
    listing = data_commands.add_parser("list", help="list the datasets prepared locally", allow_abbrev=False)
    listing.add_argument("--data_dir", metavar="DIR", help="TFDS data directory (default: TFDS's default)")
    return parser


def _data(args) -> int:
    from jaxdl.data import tfds_source

    if args.data_command == "prepare":
        path = tfds_source.prepare(args.name, data_dir=args.data_dir)
        print(f"prepared {args.name} in {path}")
        return 0
    found = tfds_source.list_prepared(data_dir=args.data_dir)
    root = args.data_dir or tfds_source.default_data_dir()
    if not found:
        print(f"no datasets prepared in {root}; prepare one with: jaxdl data prepare NAME")
        return 0
    print(f"datasets prepared in {root}:")
    for entry in found:
        splits = ", ".join(f"{name} {count:,}" for name, count in entry["splits"].items())
        print(f"  {entry['name']:<20} {entry['version']:<8} {splits}")
    return 0


def _summary(args, overrides) -> int:
    from jaxdl import config, run

    cfg = config.load(args.config)
    config.apply_overrides(cfg, overrides)
    print(run.setup(cfg).built.description)
    return 0


def _runs(args) -> int:
    from jaxdl import compare

    text, plot = compare.compare(args.workdirs, plot_path=args.plot or "runs-compare.png")
    print(text)
    print(f"plot: {plot}")
    return 0


def _eval(args) -> int:
    from jaxdl import inference

    restored = inference.restore(args.workdir, which="latest" if args.latest else "best")
    figures = inference.evaluate(restored)
    members = len(next((v for k, v in figures.items() if k.endswith("_members")), []))
    shown = {k: v for k, v in figures.items() if not k.endswith("_members")}
    what = f"mean over {members} members: " if members else ""
    print(f"step {restored.step} ({restored.chose}); test split of {restored.setup.splits.info.name}, "
          f"{len(restored.setup.splits.test)} examples; {what}"
          + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))
    return 0


def _predict(args) -> int:
    import numpy as np

    from jaxdl import api, inference, saving

    state = saving.load(args.workdir, which="latest" if args.latest else "best", argument="--workdir")
    x = inference.read_inputs(args.input, state.input_shape)
    outputs = api.predict(state, x)  # raw rows: the run's saved scaling is applied
    if outputs.ndim == 3:  # an ensemble: the members' mean
        outputs = outputs.mean(axis=0)
    lines = _prediction_rows(outputs, state.head)
    if args.output:
        with open(args.output, "w") as f:
            f.write("\n".join(lines) + "\n")
        step = int(np.max(state.step))
        print(f"{len(x)} predictions from step {step} ({'latest' if args.latest else 'best'} checkpoint) written to "
              f"{args.output}", file=sys.stderr)
    else:
        print("\n".join(lines))
    return 0


def _prediction_rows(outputs, activation: str) -> list[str]:
    """CSV rows: the predicted class and the probabilities (classifiers), or the outputs (regression)."""
    if activation == "sigmoid" and outputs.shape[-1] == 1:
        return ["label,probability"] + [f"{int(p > 0.5)},{p:.6f}" for p in outputs[:, 0]]
    if activation == "softmax":
        head = "label," + ",".join(f"p{i}" for i in range(outputs.shape[-1]))
        return [head] + [f"{int(row.argmax())}," + ",".join(f"{p:.6f}" for p in row) for row in outputs]
    return [",".join(f"y{i}" for i in range(outputs.shape[-1]))] + [",".join(f"{v:.6g}" for v in row) for row in outputs]


def _overrides(extra: list[str], parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """Collects --config.KEY=VALUE and --config.KEY VALUE pairs; anything else is an error."""
    pairs, i = [], 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--config."):
            parser.error(f"unrecognized argument: {token}")
        key, sep, value = token[len("--config."):].partition("=")
        if not sep:
            if i + 1 >= len(extra):
                parser.error(f"{token} needs a value: {token}=VALUE")
            value, i = extra[i + 1], i + 1
        pairs.append((key, value))
        i += 1
    return pairs


def _train(args, overrides, argv: list[str]) -> int:
    # Imported here so that `jaxdl --help` and flag errors answer without loading jax.
    from jaxdl import config, run

    cfg = config.load(args.config)
    config.apply_overrides(cfg, overrides)
    if args.show_config:
        print(cfg.to_json(indent=2))
        return 0
    name = DEFAULT_CONFIG_NAME
    if args.config:
        name = os.path.splitext(os.path.basename(args.config.split(":")[0]))[0]
    workdir = args.workdir or os.path.join(
        "runs", f"{name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    )
    _LAST_WORKDIR[0] = workdir
    summary = run.train_and_evaluate(
        cfg, workdir, quiet=args.quiet, overwrite=args.overwrite, force=args.force,
        experiment=args.config and args.config.split(":")[0], command=["jaxdl", *argv],
    )
    if "stopped_at" in summary:
        print(f"stopped at step {summary['stopped_at']} with a checkpoint saved; run the same command to continue")
        print(_workdir_line(workdir))
        return 0
    if "best_member" in summary:
        _print_ensemble(summary, workdir)
        return 0
    print(summary["headline"])
    print(_workdir_line(workdir))
    return 0


def _workdir_line(workdir: str) -> str:
    import jax

    if jax.process_index() == 0:
        return f"workdir: {workdir}"
    return f"workdir: {workdir} (written by process 0; this is process {jax.process_index()})"


def _print_ensemble(summary: dict, workdir: str) -> None:
    metric = summary["selected_by"].split()[0][len("eval_"):]
    values = summary[f"eval_{metric}_members"]
    best = summary["best_member"]
    print(
        f"ensemble of {summary['ensemble_size']}: test {metric} mean {summary[f'eval_{metric}']:.4f} "
        f"(min {min(values):.4f}, max {max(values):.4f}) on {summary['test_examples']} {summary['dataset']} "
        f"test examples, {summary['steps']} steps each in {summary['wall_seconds']:.1f} s"
    )
    print(
        f"best member: {best} (seed {summary['best_member_seed']}, by {summary['selected_by']}): "
        f"test {metric} {values[best]:.4f}; its weights: {os.path.join(workdir, 'best_member.msgpack')}"
    )
    print(_workdir_line(workdir))


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status (2 for bad input)."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else argv
    args, extra = parser.parse_known_args(argv)
    if args.version:
        from jaxdl import __version__

        print(f"jaxdl {__version__}")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    _LAST_WORKDIR[0] = None
    with contextlib.nullcontext() if args.debug else _one_line_reports():
        return _run(parser, args, extra, argv)


@contextlib.contextmanager
def _one_line_reports():
    """For the length of one command (restored after, for a Python session that calls `main`): orbax's logged
    tracebacks silenced (the failure is reported once, by `main`), warnings as one line each, and the
    unraisable errors of tensorstore's threads that find orbax's event loop closed after a failed save dropped."""
    absl = logging.getLogger("absl")
    saved = absl.level, warnings.formatwarning, sys.unraisablehook
    absl.setLevel(logging.CRITICAL)
    warnings.formatwarning = lambda message, category, *rest: f"jaxdl: warning: {message}\n"
    sys.unraisablehook = lambda unraisable: None
    try:
        yield
    finally:
        absl.setLevel(saved[0])
        warnings.formatwarning, sys.unraisablehook = saved[1], saved[2]


def _run(parser, args, extra, argv) -> int:
    try:
        if args.command in ("data", "eval", "predict", "runs"):
            if extra:
                parser.error(f"unrecognized arguments: {' '.join(extra)}")
            return {"data": _data, "eval": _eval, "predict": _predict, "runs": _runs}[args.command](args)
        if args.command == "summary":
            return _summary(args, _overrides(extra, parser))
        return _train(args, _overrides(extra, parser), argv)
    except InputError as err:
        print(f"jaxdl: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `jaxdl train | head -1`: the reader left; stop quietly, as programs do on SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt as err:  # the first Ctrl-C saves (checkpoint.Interrupted); a second quits at once
        saved = str(err) if str(err) else "interrupted before a checkpoint was saved"
        print(f"jaxdl: {saved}", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 -- one line (and the traceback kept), not pages of frames
        if args.debug:
            raise
        workdir = getattr(args, "workdir", None) or _LAST_WORKDIR[0]
        print(f"jaxdl: error: {failure_line(err, workdir)}", file=sys.stderr)
        kept = _keep_traceback(workdir)
        print(f"jaxdl: the full traceback is in {kept} (or rerun with --debug)" if kept else
              "jaxdl: rerun with --debug for the full traceback", file=sys.stderr)
        return 1


_LAST_WORKDIR = [None]  # the default workdir `_train` chose, for the error log


_HINTS = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space", errno.EROFS: "use a writable workdir",
          errno.EFBIG: "free some space or raise the file-size limit", errno.EACCES: "check the permissions",
          errno.EPERM: "check the permissions"}


def _os_error(err: BaseException) -> tuple[int, str | None] | None:
    """(errno, file) of an OS error: an OSError, or one that tensorstore (orbax's writer) reports in its message."""
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno, err.filename
    found = re.search(r"os_error_code='(\d+)'", str(err))
    if found:
        path = re.search(r'(?:local )?file "([^"]+)"', str(err))
        return int(found.group(1)), path.group(1) if path else None
    return None


def failure_line(err: BaseException, workdir: str | None = None) -> str:
    """One line for a failure: the file and the system's reason for an OS error anywhere in its causes, or the error.

    An OS error that names no file (a library's background writer) is placed in the run's `workdir`.
    """
    seen, cause, found = set(), err, []
    while cause is not None and id(cause) not in seen:  # the error, what it was raised from or while handling
        seen.add(id(cause))
        if _os_error(cause) is not None:
            found.append(_os_error(cause))
        cause = cause.__cause__ or cause.__context__
    if found:
        # The first failure (innermost), and one that names its file when there is one.
        number, path = next((f for f in reversed(found) if f[1]), found[-1])
        what = "write"
        if path and ".orbax-checkpoint-tmp" in path:  # a checkpoint being written: name it, not its inner files
            path, what = path.split(".orbax-checkpoint-tmp")[0], "save the checkpoint"
        where = f" {path}" if path else (f" in {workdir}" if workdir else "")
        return (f"cannot {what}{where}: {os.strerror(number)}; {_HINTS.get(number, 'fix that')}, then run the same "
                "command again: it resumes from the last checkpoint that was written whole")
    if isinstance(err, (NonFiniteError, DataError)):
        return str(err)
    return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:500]


def _keep_traceback(workdir: str | None) -> str | None:
    """Writes the traceback being handled to WORKDIR/error.log; returns its path, or None if it cannot be written."""
    import traceback

    if not workdir or not os.path.isdir(workdir):
        return None
    path = os.path.join(workdir, "error.log")
    try:
        with open(path, "w") as f:
            f.write(traceback.format_exc())
    except OSError:
        return None
    return path


def command() -> None:
    """The `jaxdl` program: `main`, then exit with its status.

    After a failure (status 1) the process ends at once, once its one-line
    message is out: orbax's and tensorstore's background threads, cut off
    mid-save, would otherwise print pages of tracebacks while the
    interpreter shuts down. The checkpoints already written are whole; the
    traceback is in WORKDIR/error.log.
    """
    status = main()
    if status == 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
