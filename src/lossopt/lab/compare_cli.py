"""`lossopt lab compare`'s own options and their checks: every value is checked,
and the table read, before any work starts or anything is written."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from pathlib import Path

from lossopt.lab.i18n import _

EXPORT_MARK = "# Written by `lossopt lab compare --export`"
CLASSIFICATION_METRICS = "accuracy, balanced_accuracy, f1, roc_auc, log_loss"
REGRESSION_METRICS = "rmse, mae, r2"


def metric_names() -> str:
    """The names --metric accepts, by task, in the current language."""
    return _("{classification} (classification); {regression} (regression)").format(
        classification=CLASSIFICATION_METRICS, regression=REGRESSION_METRICS
    )


def _weight_decay(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            _("--weight-decay must be a number, got {text!r}").format(text=text)
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(
            _("--weight-decay must be 0 or more and finite, got {text}").format(text=text)
        )
    return value


def _jobs(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 256:
        raise argparse.ArgumentTypeError(
            _("--jobs must be a whole number from 1 to 256, got {text!r}").format(text=text)
        )
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metric",
        metavar="NAME",
        help=_(
            "the score: {names} (default: balanced_accuracy for imbalanced classes, else "
            "accuracy; rmse for regression)"
        ).format(names=metric_names()),
    )
    parser.add_argument(
        "--model",
        metavar="FILE.py:FUNCTION",
        help=_(
            "your network: a function (inputs, outputs) -> torch.nn.Module (default: 64 ReLU units)"
        ),
    )
    parser.add_argument(
        "--device",
        default="auto",
        metavar="auto|cpu|cuda",
        help=_("where the networks train (default: auto, a GPU when there is one)"),
    )
    parser.add_argument(
        "--weight-decay",
        type=_weight_decay,
        default=0.01,
        metavar="X",
        help=_("AdamW's decoupled weight decay (default: 0.01, as torch.optim.AdamW)"),
    )
    parser.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N",
        help=_("processes training at once (default: one per core)"),
    )
    parser.add_argument(
        "--export",
        metavar="FILE.py",
        help=_("also write the recommended setup as a training script that reproduces its score"),
    )


def _check_export(text: str | None) -> Path | None:
    if text is None:
        return None
    path = Path(text)
    if path.suffix != ".py":
        raise ValueError(_("--export must name a .py file, got {text!r}").format(text=text))
    if path.is_dir():
        raise ValueError(_("--export {text} is a folder; name a new .py file").format(text=text))
    if not path.parent.resolve().is_dir():
        raise ValueError(
            _("--export {text}: the folder {folder} does not exist").format(
                text=text, folder=path.parent
            )
        )
    if path.exists():
        try:
            first = path.read_text(encoding="utf-8").splitlines()[:1]
        except (OSError, UnicodeDecodeError):
            first = []
        if first != [EXPORT_MARK]:
            raise ValueError(
                _("--export {text} exists and lossopt did not write it; name a new file").format(
                    text=text
                )
            )
    return path


@dataclass
class Prepared:
    table: object
    settings: object
    export: Path | None


def start(args) -> Prepared:
    """Check every option and read the table; ValueError names what is wrong."""
    from lossopt.lab import compare
    from lossopt.lab.data import read_table

    optimizers = compare.parse_optimizers(args.optimizers)
    device = compare.resolve_device(args.device)
    export = _check_export(args.export)
    if args.metric is not None and args.metric not in compare.METRICS:
        raise ValueError(
            _("unknown metric {metric!r}; choose from {names}").format(
                metric=args.metric, names=metric_names()
            )
        )
    factory = compare.load_model(args.model) if args.model is not None else None
    table = read_table(args.data, args.target, args.task)
    if args.metric is not None:
        compare.check_metric(args.metric, table.task)
    if factory is not None:
        outputs = len(table.classes) if table.task == "classification" else 1
        compare.check_model(factory, len(table.features), outputs, args.model)
    settings = compare.Settings(
        seed=args.seed,
        quick=args.quick,
        optimizers=optimizers,
        lr=args.lr,
        epochs=args.steps,
        metric=args.metric,
        model=args.model,
        device=device,
        weight_decay=args.weight_decay,
        jobs=args.jobs,
    )
    return Prepared(table, settings, export)


def finish(prepared: Prepared, comparison) -> Path | None:
    """Write the exported script, when asked and when there is a recommendation."""
    from lossopt.lab import compare_report

    if prepared.export is None or not comparison.beats_trivial:
        return None
    text = compare_report.script(comparison, prepared.export.name)
    prepared.export.write_text(EXPORT_MARK + "\n" + text, encoding="utf-8")
    return prepared.export
