"""`lossopt lab`: wires the experiments to the report. It computes nothing itself."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from lossopt.lab.experiments import EXPERIMENTS
from lossopt.lab.optimizers import parse_optimizers

EXPERIMENT_NAMES = tuple(EXPERIMENTS)


class UsageError(Exception):
    """Bad input from the user: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one clear line, not a usage dump
        raise UsageError(message)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--lr must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"--lr must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--steps must be a whole number >= 1, got {text!r}")
    return int(text)


def _parser() -> _Parser:
    parser = _Parser(
        prog="lossopt", description="Losses and optimizers of the lecture, shown on real runs."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    lab = sub.add_parser(
        "lab",
        help="run the lab and write its report",
        description="Run every experiment (or one), or compare optimizers on your own CSV data.",
    )
    lab.add_argument(
        "experiment",
        nargs="?",
        metavar="EXPERIMENT",
        help=f"one of {', '.join(EXPERIMENT_NAMES)}, or 'compare'; default: all experiments",
    )
    lab.add_argument("--out", default="lab-report", help="report folder (default: lab-report)")
    lab.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    lab.add_argument("--quick", action="store_true", help="small, fast version of every run")
    lab.add_argument(
        "--optimizers", help="comma-separated subset of sgd,momentum,adagrad,rmsprop,adam"
    )
    lab.add_argument("--lr", type=_positive_float, help="one learning rate for every optimizer")
    lab.add_argument("--steps", type=_positive_int, help="steps (or epochs) for each run")
    lab.add_argument("--quiet", action="store_true", help="no progress output")
    lab.add_argument("--data", help="compare: the CSV file")
    lab.add_argument("--target", help="compare: the column to predict")
    lab.add_argument(
        "--task", choices=("classification", "regression"), help="compare: default inferred"
    )
    return parser


class Progress:
    """A progress bar on a terminal, plain lines otherwise, nothing when quiet."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.quiet, self.total, self.done = quiet, total, 0
        self.bar = None
        if not quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="run", file=sys.stderr)

    def __call__(self, what: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_description(what)
            self.bar.update(1)
        elif not self.quiet:
            print(f"[{self.done}/{self.total}] {what}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _run(args) -> Path:
    from lossopt.lab.config import Config

    if args.experiment is not None and args.experiment not in (*EXPERIMENT_NAMES, "compare"):
        choices = ", ".join(EXPERIMENT_NAMES)
        raise UsageError(
            f"unknown experiment {args.experiment!r}; choose from {choices} or compare"
        )
    comparing = args.experiment == "compare"
    if comparing and (not args.data or not args.target):
        raise UsageError("compare needs --data FILE.csv and --target COLUMN")
    if not comparing and (args.data or args.target or args.task):
        raise UsageError("--data, --target and --task belong to 'lossopt lab compare'")
    try:
        optimizers = tuple(parse_optimizers(args.optimizers))
    except ValueError as error:
        raise UsageError(str(error)) from None
    config = Config(args.seed, args.quick, optimizers, args.lr, args.steps)
    meta = {"seed": args.seed, "quick": args.quick, "optimizers": ",".join(optimizers)}
    if args.lr is not None:
        meta["lr"] = args.lr
    if args.steps is not None:
        meta["steps"] = args.steps

    out = Path(args.out)
    # Build the report beside its destination and move it into place only when
    # complete, so a failed run never leaves a report that looks finished.
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        results = {}
        if comparing:
            from lossopt.lab.compare import compare
            from lossopt.lab.data import DataError

            progress = Progress(2 * len(optimizers) + 1, args.quiet)
            try:
                results["compare"] = compare(args.data, args.target, args.task, config, progress)
            except DataError as error:
                raise UsageError(str(error)) from None
            meta.update(data=args.data, target=args.target)
        else:
            names = [args.experiment] if args.experiment else list(EXPERIMENT_NAMES)
            progress = Progress(len(names) + 1, args.quiet)
            for name in names:
                results[name] = EXPERIMENTS[name](config)
                progress(name)
        from lossopt.lab import report

        index = report.write(results, staging, meta)
        progress("report")
        progress.close()
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        staging.rename(out)
        return out / index.name
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        start = time.perf_counter()
        index = _run(args)
    except UsageError as error:
        print(f"lossopt: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lossopt: interrupted", file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"report written in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    print(index)
    return 0
