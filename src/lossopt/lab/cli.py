"""`lossopt lab` and `lossopt lab compare`: parse, check, wire. Nothing is computed here."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from lossopt import __version__
from lossopt.lab import i18n
from lossopt.lab.experiments import EXPERIMENTS
from lossopt.lab.i18n import N_, _
from lossopt.lab.optimizers import OPTIMIZERS, parse_optimizers

LAB_OUT = "lab-report"
COMPARE_OUT = "compare-report"
MAX_SEED = 2**32 - 1  # numpy's and torch's generators both accept this range
MAX_STEPS = 100_000


class UsageError(Exception):
    """Bad input from the user: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    # argparse's own words (usage, headings, errors) in the lab's language
    def __init__(self, *args, **kwargs) -> None:
        with i18n.argparse_speaking():
            super().__init__(*args, **kwargs)

    def parse_known_args(self, *args, **kwargs):
        with i18n.argparse_speaking():
            return super().parse_known_args(*args, **kwargs)

    def format_usage(self) -> str:
        with i18n.argparse_speaking():
            return super().format_usage()

    def error(self, message: str):  # one clear line, not a usage dump
        raise UsageError(message)


def _lr(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("--lr must be a number, got {text!r}").format(text=text)
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            _("--lr must be positive and finite, got {text}").format(text=text)
        )
    return value


def _whole(flag: str, low: int, high: int):
    def parse(text: str) -> int:
        stripped = text.strip()
        digits = stripped[1:] if stripped[:1] in "+-" else stripped
        if not digits.isdigit() or not low <= int(stripped) <= high:
            raise argparse.ArgumentTypeError(
                _("{flag} must be a whole number from {low} to {high}, got {text!r}").format(
                    flag=flag, low=low, high=high, text=text
                )
            )
        return int(stripped)

    return parse


# Translated where the parser is built, once the language is known
LAB_EXAMPLES = N_("""examples:
  lossopt lab                                   every experiment, report in {out}/
  lossopt lab paths --optimizers sgd,adam --lr 0.1 --steps 200
  lossopt lab --quick --out /tmp/lab            a small, fast version of every run
  lossopt lab compare --data my.csv --target label

The report folder must be new, or hold only an earlier lossopt report, which
is then replaced; anything else is refused and nothing is written.""")

COMPARE_EXAMPLES = N_("""examples:
  lossopt lab compare --data wine.csv --target class
  lossopt lab compare --data houses.csv --target price --task regression --optimizers sgd,adam
  lossopt lab compare --data my.csv --target y --lr 0.001      one rate: no search

method: repeated stratified train/test splits; inside each, the learning rate is
chosen on a validation part of the training rows (with early stopping on its
loss) and the chosen model is scored on the test rows it never saw. Scores are
given as a mean with a 95% interval over the splits, against a majority-class
(or mean) baseline and scikit-learn's LogisticRegression (or Ridge).
The report goes to {out}/ unless --out says otherwise.""")


def add_language(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--lang, for every command that speaks (main() reads it before parsing, for the help)."""
    parser.add_argument(
        "--lang",
        choices=i18n.languages(),
        default=None if defaults else argparse.SUPPRESS,
        help=_("language of the report and the messages (default: from the locale, else en)"),
    )


def _add_options(parser: argparse.ArgumentParser, out: str, *, defaults: bool) -> None:
    """The options every run takes; on sub-commands without defaults, so that
    `lossopt lab --quick paths` and `lossopt lab paths --quick` mean the same."""

    def default(value):
        return value if defaults else argparse.SUPPRESS

    # None until parsed: `lossopt lab --out X compare` and `lossopt lab compare --out X`
    # agree, and compare's own default applies when neither says
    parser.add_argument(
        "--out",
        default=default(None),
        metavar="DIR",
        help=_("report folder (default: {out})").format(out=out),
    )
    parser.add_argument(
        "--seed",
        type=_whole("--seed", 0, MAX_SEED),
        default=default(0),
        metavar="N",
        help=_("random seed, 0 or more (default: 0)"),
    )
    parser.add_argument(
        "--quick", action="store_true", default=default(False), help=_("small, fast version")
    )
    parser.add_argument(
        "--optimizers",
        default=default(None),
        metavar="LIST",
        help=_("comma-separated subset of {names} (default: all)").format(
            names=",".join(OPTIMIZERS)
        ),
    )
    parser.add_argument(
        "--lr",
        type=_lr,
        default=default(None),
        help=_("one learning rate for every optimizer (default: each its own)"),
    )
    parser.add_argument(
        "--steps",
        type=_whole("--steps", 1, MAX_STEPS),
        default=default(None),
        metavar="N",
        help=_("steps (or epochs) for each run"),
    )
    parser.add_argument(
        "--quiet", action="store_true", default=default(False), help=_("no progress output")
    )
    add_language(parser, defaults=defaults)


def _summary(name: str, function) -> str:
    """One line for the experiment's help: its report section's title, else its docstring's."""
    from lossopt.lab import report

    section = getattr(report, "SECTIONS", {}).get(name)
    title = getattr(section, "title", "")
    doc = (function.__doc__ or "").strip().splitlines()
    text = _(title) if title else (doc[0] if doc else "")
    return text or _("run this experiment only")


def parser() -> _Parser:
    top = _Parser(
        prog="lossopt",
        description=_("Losses and optimizers of the lecture, shown on real runs."),
        epilog=_("Run `lossopt lab --help` or `lossopt lab compare --help` for details."),
    )
    top.add_argument("--version", action="version", version=f"lossopt {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    lab = commands.add_parser(
        "lab",
        help=_("run the lab's experiments, or compare optimizers on a CSV table"),
        description=_(
            "Run every experiment of the lecture (or one) and write an HTML report; "
            "or compare the optimizers on your own CSV table with `lossopt lab compare`."
        ),
        epilog=_(LAB_EXAMPLES).format(out=LAB_OUT),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_options(lab, LAB_OUT, defaults=True)
    lab.set_defaults(experiment=None)
    runs = lab.add_subparsers(
        dest="experiment", metavar="EXPERIMENT", parser_class=_Parser, title=_("experiments")
    )
    for name, function in EXPERIMENTS.items():
        summary = _summary(name, function)
        one = runs.add_parser(name, help=summary, description=summary)
        _add_options(one, LAB_OUT, defaults=False)
    compare = runs.add_parser(
        "compare",
        help=_("which optimizer and learning rate for my CSV table?"),
        description=_(
            "Compare the optimizers on your CSV table: which one, at which learning "
            "rate, and is the difference real?"
        ),
        epilog=_(COMPARE_EXAMPLES).format(out=COMPARE_OUT),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    compare.add_argument("--data", required=True, metavar="FILE", help=_("the CSV table"))
    compare.add_argument(
        "--target", required=True, metavar="COLUMN", help=_("the column to predict")
    )
    compare.add_argument(
        "--task",
        choices=("classification", "regression"),
        help=_("default: classification for text or at most 20 whole-number values"),
    )
    _add_options(compare, COMPARE_OUT, defaults=False)
    from lossopt.lab.compare_cli import add_arguments

    add_arguments(compare)
    from lossopt.lab.live.command import add_serve

    add_serve(runs, _Parser)
    add_language(runs.choices["serve"], defaults=False)  # the live page's first language
    return top


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}:{seconds:02d}"


class Progress:
    """A progress bar on a terminal, plain lines otherwise, nothing when quiet;
    both with the time so far and an estimate of the time left: the mean time
    a step has taken since the first one finished (the first also carries the
    start-up, importing torch in each worker, which no later step repeats); at
    the first step, the only measure there is."""

    def __init__(self, total: int, quiet: bool, clock=time.monotonic) -> None:
        self.quiet, self.total, self.done = quiet, total, 0
        self.clock, self.start = clock, clock()
        self.first = self.start
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
            now = self.clock()
            if self.done == 1:
                self.first = now
                step = now - self.start
            else:
                step = (now - self.first) / (self.done - 1)
            spent, left = now - self.start, step * (self.total - self.done)
            print(
                f"[{self.done}/{self.total}] {what} ({_clock(spent)} so far, "
                f"about {_clock(left)} left)",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def output_folder(args) -> str:
    """--out, or the default of the command: compare never defaults to the lab's folder."""
    if args.out is not None:
        return args.out
    return COMPARE_OUT if args.experiment == "compare" else LAB_OUT


def _say(text: str) -> None:
    print(f"lossopt: {text}", file=sys.stderr, flush=True)


def _run(args) -> Path:
    from lossopt.lab import output
    from lossopt.lab.config import Config

    comparing = args.experiment == "compare"
    kind = "compare" if comparing else "lab"
    args.out = output_folder(args)
    try:
        optimizers = () if comparing else tuple(parse_optimizers(args.optimizers))
    except ValueError as error:
        raise UsageError(str(error)) from None
    try:
        output.check(Path(args.out), kind)
    except output.OutputError as error:
        raise UsageError(str(error)) from None
    if comparing:  # every option checked and the table read before anything is written
        from lossopt.lab import compare_cli

        try:
            prepared = compare_cli.start(args)
        except ValueError as error:
            raise UsageError(str(error)) from None
        optimizers = prepared.settings.optimizers
    config = Config(args.seed, args.quick, optimizers, args.lr, args.steps)
    meta = {"seed": args.seed, "quick": args.quick, "optimizers": ",".join(optimizers)}
    if args.lr is not None:
        meta["lr"] = args.lr
    if args.steps is not None:
        meta["steps"] = args.steps

    results, page = {}, {}
    if comparing:
        from lossopt.lab.compare import compare, count_units
        from lossopt.lab.compare_report import section, warnings

        table = prepared.table
        for warning in table.warnings:
            _say(_("warning: {warning}").format(warning=warning))
        progress = Progress(count_units(prepared.settings, table.rows) + 1, args.quiet)
        results["compare"] = compare(table, prepared.settings, progress)
        for warning in warnings(results["compare"]):
            _say(_("warning: {warning}").format(warning=warning))
        meta.update(data=args.data, target=args.target)

        page = {
            "sections": {"compare": section()},
            "numbered": False,
            "try_lines": False,
            "title": f"lossopt lab compare: {Path(args.data).name}",
            "intro": _(
                "Which optimizer and learning rate to train a small network on {data}, "
                "predicting '{target}'?"
            ).format(data=Path(args.data).name, target=args.target),
        }
    else:
        names = [args.experiment] if args.experiment else list(EXPERIMENTS)
        progress = Progress(len(names) + 1, args.quiet)
        for name in names:
            results[name] = EXPERIMENTS[name](config)
            progress(name)
        # Each figure's "try it" line links the live lab's explorable, by its knobs.
        from lossopt.lab.live.catalog import EXPLORABLES as LIVE

        page = {"live": {name: explorable.knobs for name, explorable in LIVE.items()}}

    from lossopt.lab import report

    def build(folder: Path) -> str:
        return report.write(results, folder, meta, **page).name

    try:
        index = output.write_report(Path(args.out), kind, build)
    except output.OutputError as error:
        raise UsageError(str(error)) from None
    progress("report")
    progress.close()
    if comparing and compare_cli.finish(prepared, results["compare"]) is not None:
        _say(_("training script written to {path}").format(path=prepared.export))
    return Path(args.out) / index


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    i18n.set_language(i18n.requested(argv))  # None: the locale's
    top = parser()
    try:
        args = top.parse_args(argv)
        i18n.set_language(getattr(args, "lang", None))
        if args.command is None:
            print(top.format_usage().rstrip(), file=sys.stderr)
            _say(_("error: name a command, e.g. `lossopt lab`; `lossopt --help` for more"))
            return 2
        if getattr(args, "experiment", None) == "serve":
            from lossopt.lab.live import command

            return command.run(args)
        start = time.perf_counter()
        index = _run(args)
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else 0
    except UsageError as error:
        _say(_("error: {error}").format(error=error))
        return 2
    except KeyboardInterrupt:
        _say(_("interrupted"))
        return 130
    if not args.quiet:
        seconds = time.perf_counter() - start
        print(_("report written in {seconds:.1f} s").format(seconds=seconds), file=sys.stderr)
    print(index)
    return 0
