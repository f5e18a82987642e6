"""The compare page's section: the recommendation, its tables and figures."""

from __future__ import annotations

import html

from lossopt.lab import plots
from lossopt.lab.report import Section, _label, _p, _ranking_table, _table


def _describe_compare(r) -> str:
    header = _p(
        f"{r.data}: {r.rows} rows, {len(r.features)} input features after encoding, target '{r.target}' "
        f"({r.task}{', ' + str(len(r.classes)) + ' classes' if r.classes else ''}); 70% train, 30% validation."
    )
    sweep = _table(
        ["optimizer", "lr", f"{r.metric} (sweep, one seed)"],
        [[_label(s.optimizer), f"{s.lr:g}", f"{s.final_metric:.4f}"] for s in r.sweep],
    )
    return (
        f"<p class='recommend'>Recommendation: {html.escape(r.recommendation)}</p>"
        + header
        + _ranking_table(r.ranking, r.metric)
        + "<h4>Learning-rate sweep</h4>"
        + sweep
    )


SECTION = Section(
    "Which optimizer for this data?",
    "a short learning-rate sweep per optimizer, then several seeds at the best rate",
    _describe_compare,
    plots.comparison,
)
