"""The compare page's section: the recommendation, the method, its tables and figures.
Every sentence takes its numbers from the Comparison."""

from __future__ import annotations

import html
import math
from collections import Counter

from lossopt.lab import compare_plots
from lossopt.lab.page import Section

# The shared stylesheet is the lab's; the compare page's two extra looks are inline.
WARN = "background:#fff4e0;border-left:4px solid #e69500;padding:.4em .8em"
CODE = "background:#f6f6f6;padding:.6em .8em;border-radius:4px;overflow-x:auto"


def _p(text: str, style: str = "") -> str:
    attribute = f" style='{style}'" if style else ""
    return f"<p{attribute}>{html.escape(text)}</p>"


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _interval(i) -> str:
    if i is None or not math.isfinite(i.mean):
        return "diverged"
    return f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]"


def _data(r) -> str:
    what = f"{r.task}"
    if r.classes:
        counts = ", ".join(f"'{c}' {n}" for c, n in zip(r.classes, r.class_counts, strict=True))
        what += f", {len(r.classes)} classes ({counts})"
    return _p(
        f"{r.data}: {r.rows} rows with a target, {len(r.features)} input features after "
        f"one-hot encoding, target '{r.target}' ({what})."
    ) + "".join(_p(f"Data: {w}.", WARN) for w in r.data_warnings)


def _method(r) -> str:
    split = "stratified by class, " if r.classes else ""
    return _p(
        f"Method: {r.splits} random splits ({split}{r.test_rows} test rows each). In each split "
        f"the network trains on {1 - r.val_fraction:.0%} of the training rows; the other {r.val_fraction:.0%} (validation) choose the learning rate "
        f"from a grid (widened while the best rate sits at its edge) and stop training when their "
        f"loss has not fallen for {r.patience} epochs (at most {r.max_epochs}; the best weights "
        "are kept). The chosen network is then scored once on the test rows, which played no "
        "part in any choice. Each split also starts from its own random initialisation, so the "
        "95% intervals cover both. Splits share training rows, which makes their scores "
        "correlated; the intervals use Nadeau and Bengio's corrected variance to stay honest. "
        "Two optimizers tie when the 95% interval of their split-by-split difference includes 0."
    ) + _p(f"Model: {r.model}.")


def _results(r) -> str:
    rows = []
    for s in r.optimizers:
        chosen = Counter(f"{lr:g}" for lr in s.chosen_lr)
        rates = ", ".join(f"{lr} ×{n}" if n > 1 else lr for lr, n in chosen.items())
        difference = (
            "best"
            if s is r.optimizers[0]
            else f"{s.versus_best.mean:+.3f} [{s.versus_best.low:+.3f}, {s.versus_best.high:+.3f}]"
        )
        verdict = "tie with the best" if s.tie and s is not r.optimizers[0] else ""
        if not s.tie:
            verdict = "worse"
        rows.append([s.label, f"{s.lr:g}", rates, _interval(s.score), difference, verdict])
    for b in r.baselines:
        rows.append(
            [
                f"baseline: {b.label}",
                "-",
                "-",
                _interval(b.score),
                f"{b.versus_best.mean:+.3f} [{b.versus_best.low:+.3f}, {b.versus_best.high:+.3f}]",
                "worse than the best" if b.versus_best.low > 0 else "not beaten",
            ]
        )
    return _table(
        [
            "",
            "lr to use (median chosen)",
            "lr chosen per split",
            f"{r.metric}, mean [95% interval]",
            "best minus this, mean [95% interval]",
            "",
        ],
        rows,
    )


def _describe(r) -> str:
    warnings = "".join(_p(f"Warning: {w}.", WARN) for w in r.warnings)
    return (
        f"<p class='recommend'>{html.escape(r.recommendation)}</p>"
        + warnings
        + _results(r)
        + (
            "<h4>The setup to paste</h4>"
            + f"<pre style='{CODE}'><code>{html.escape(r.code)}</code></pre>"
            if r.code
            else ""
        )
        + "<h4>Data and method</h4>"
        + _data(r)
        + _method(r)
    )


SECTION = Section(
    "Which optimizer for this data?",
    "learning rate chosen inside each split on validation rows; score on test rows never seen",
    _describe,
    compare_plots.comparison,
)
