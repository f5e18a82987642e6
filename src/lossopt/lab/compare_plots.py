"""The compare page's figures, from a Comparison. Nothing here trains or scores.

Axes are set by the networks' numbers: a baseline far below them, or a rate that
diverged, is drawn at the edge and named, never stretching the scale."""

from __future__ import annotations

import math
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display needed

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from lossopt.lab.compare_report import label, metric  # noqa: E402
from lossopt.lab.fonts import rc  # noqa: E402
from lossopt.lab.i18n import _, term  # noqa: E402
from lossopt.lab.page import COLORS  # noqa: E402

BASELINE = "#888888"
EXTRA_COLORS = {"adamw": "#9467bd"}


def _color(name: str) -> str:
    return COLORS.get(name) or EXTRA_COLORS.get(name, "#8c564b")


def _limits(values: list[float], pad: float = 0.15) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    low, high = min(finite), max(finite)
    span = (high - low) or max(abs(high), 1e-3) * 0.1
    return low - pad * span, high + pad * span


def test_scores(ax, r):
    """The rule's test score, each optimizer's validation score (at its chosen
    rates) and the baselines' test scores, each a mean with its 95% interval."""
    rows = [(_("the rule (test)"), r.rule, "#000000", "D")]
    rows += [
        (
            _("{optimizer} (validation)").format(optimizer=label(s.name)),
            s.score,
            _color(s.name),
            "o",
        )
        for s in r.scored
    ]
    rows += [
        (_("{baseline} (test)").format(baseline=_(b.label)), b.score, BASELINE, "s")
        for b in r.baselines
    ]
    networks = [v for _, i, _, _ in rows[: 1 + len(r.scored)] for v in (i.low, i.high, i.mean)]
    low, high = _limits(networks)
    off = False
    for y, (_name, i, color, marker) in enumerate(rows):
        if not math.isfinite(i.mean):
            ax.plot(low, y, "x", color=color, ms=8, clip_on=False)
            ax.annotate(
                _("diverged"), (low, y), xytext=(6, 3), textcoords="offset points", fontsize=7
            )
            continue
        if i.mean < low or i.mean > high:  # a baseline far off: at the edge, its value written
            off = True
            edge = low if i.mean < low else high
            ax.plot(edge, y, "<" if i.mean < low else ">", color=color, ms=8, clip_on=False)
            ax.annotate(
                _("{value}, off scale").format(value=f"{i.mean:.3f}"),
                (edge, y),
                xytext=(8 if i.mean < low else -60, 3),
                textcoords="offset points",
                fontsize=7,
            )
            continue
        xerr = [[i.mean - i.low], [i.high - i.mean]]
        ax.errorbar(i.mean, y, xerr=xerr, fmt=marker, color=color, capsize=3)
    ax.set_xlim(low, high)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([name for name, _, _, _ in rows], fontsize=8)
    ax.invert_yaxis()
    if r.higher_is_better:
        axis = _("{metric} (higher is better); bars: 95% interval over splits")
    else:
        axis = _("{metric} (lower is better); bars: 95% interval over splits")
    ax.set_xlabel(axis.format(metric=metric(r)))
    ax.set_title(_("Scores, mean over the splits"))
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Line2D([], [], marker="D", color="#000000", ls="", label=_("the rule, on test rows")),
        Line2D([], [], marker="o", color="#444444", ls="", label=_("an optimizer, on validation")),
        Line2D([], [], marker="s", color=BASELINE, ls="", label=_("baseline, on test rows")),
    ]
    if off:
        handles.append(Line2D([], [], marker="<", color=BASELINE, ls="", label=_("off the scale")))
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def score_vs_lr(ax, r):
    """Validation score against the learning rate, mean over the splits that
    tried each rate; hollow: not every split tried it; x: diverged somewhere."""
    by_rate: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    diverged: dict[str, set[float]] = defaultdict(set)
    for s in r.searches:
        if s.split >= r.splits:
            continue
        for lr, value, lost in zip(s.rates, s.scores, s.diverged, strict=True):
            by_rate[s.optimizer][lr].append(value)
            if lost:
                diverged[s.optimizer].add(lr)
    finite = [
        sum(v) / len(v)
        for rates in by_rate.values()
        for v in rates.values()
        if all(math.isfinite(x) for x in v)
    ]
    low, high = _limits(finite) if finite else (0.0, 1.0)
    for name, rates in by_rate.items():
        color = _color(name)
        shown = [
            (lr, sum(v) / len(v), len(v) == r.splits)
            for lr, v in sorted(rates.items())
            if all(math.isfinite(x) for x in v)
        ]
        if shown:
            ax.plot([x for x, _, _ in shown], [y for _, y, _ in shown], "-", color=color, lw=1.2)
        for lr, value, everywhere in shown:
            ax.plot(lr, value, "o", ms=4, color=color, mfc=color if everywhere else "white")
        for lr in sorted(diverged[name]):
            edge = low if r.higher_is_better else high
            ax.plot(lr, edge, "x", color=color, ms=7, clip_on=False)
    for name in r.optimizers:
        ax.plot([], [], "-o", ms=4, color=_color(name), label=label(name))
    ax.axvline(r.final.lr, color=_color(r.final.optimizer), ls=":", lw=1.2)
    ax.plot([], [], "o", ms=4, color="#444444", mfc="white", label=_("tried in some splits only"))
    ax.plot([], [], "x", color="#444444", label=_("diverged in a split (at the edge)"))
    ax.plot([], [], ":", color="#444444", label=_("the recommended rate"))
    ax.set_ylim(low, high)
    rates = sorted({lr for s in r.searches for lr in s.rates})
    ax.set_xlim(rates[0] / 2, rates[-1] * 2)  # room around a single given rate, too
    ax.set_xscale("log")
    ax.set_xlabel(term("learning_rate"))
    ax.set_ylabel(_("validation {metric}, mean over splits").format(metric=metric(r)))
    ax.set_title(_("Learning rate: the middle of the best plateau is chosen"))
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def validation_curves(ax, r):
    """Validation loss per epoch at each optimizer's chosen rate, first split, first fold."""
    finite_values, ended = [], False
    for s in r.searches:
        run = s.curve
        if run is None:
            continue
        epochs = range(1, len(run.val_loss) + 1)
        finite = [(e, v) for e, v in zip(epochs, run.val_loss, strict=True) if math.isfinite(v)]
        color = _color(run.optimizer)
        if finite:
            ax.plot(*zip(*finite, strict=True), color=color, lw=1.3)
            finite_values += [v for _, v in finite]
        ax.plot(
            [],
            [],
            color=color,
            lw=1.3,
            label=_("{optimizer} (lr {lr})").format(
                optimizer=label(run.optimizer), lr=f"{run.lr:g}"
            ),
        )
        if run.best_epoch is not None:
            ax.plot(run.best_epoch + 1, run.val_loss[run.best_epoch], "o", color=color, ms=5)
        if len(finite) < len(run.val_loss):  # diverged: a cross where it ended
            ended = True
            ax.plot(len(run.val_loss), finite[-1][1] if finite else 1.0, "x", color=color, ms=7)
    ax.plot([], [], "o", color="#444444", label=_("weights kept (early stopping)"))
    if ended:
        ax.plot([], [], "x", color="#444444", label=_("diverged here"))
    ax.set_xlabel(term("epoch"))
    ax.set_ylabel(term("validation_loss"))
    if finite_values and min(finite_values) > 0:
        ax.set_yscale("log")
    ax.set_title(_("Validation curves, split 1, fold 1"))
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def comparison(r):
    """One row of three panels, so that the recommendation below stays in view. The Korean
    font is in the family list while they are drawn, so that Korean labels have their glyphs."""
    with matplotlib.rc_context(rc()):
        fig, (scores, rates, curves) = plt.subplots(1, 3, figsize=(16, 5.4))
        test_scores(scores, r)
        score_vs_lr(rates, r)
        validation_curves(curves, r)
        fig.tight_layout()
    return [("compare.png", fig)]
