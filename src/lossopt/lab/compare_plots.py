"""The compare page's figures, from a Comparison. Nothing here trains or scores."""

from __future__ import annotations

import math
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")  # no display needed

import matplotlib.pyplot as plt  # noqa: E402

from lossopt.lab.optimizers import OPTIMIZERS  # noqa: E402

COLORS = {
    "sgd": "#444444",
    "momentum": "#1f77b4",
    "adagrad": "#2ca02c",
    "rmsprop": "#ff7f0e",
    "adam": "#d62728",
}


def _color(name: str) -> str:
    return COLORS.get(name, "#9467bd")


def _label(name: str) -> str:
    return OPTIMIZERS[name].label if name in OPTIMIZERS else name


def score_vs_lr(ax, r):
    """Validation loss (what picks the rate) against learning rate, mean over the
    splits that tried each rate; a hollow marker: not every split tried it."""
    by_rate: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for t in r.trials:
        by_rate[t.optimizer][t.lr].append(t.val_loss)
    for name, rates in by_rate.items():
        shown = [
            (lr, sum(v) / len(v), len(v) == r.splits)
            for lr, v in sorted(rates.items())
            if all(math.isfinite(x) for x in v)
        ]
        if not shown:
            continue
        color = _color(name)
        ax.plot(
            [x for x, _, _ in shown], [y for _, y, _ in shown], "-", color=color, label=_label(name)
        )
        for lr, loss, everywhere in shown:
            ax.plot(lr, loss, "o", ms=4, color=color, mfc=color if everywhere else "white")
    for s in r.optimizers:
        ax.axvline(s.lr, color=_color(s.name), ls=":", lw=1)
    rates = sorted({t.lr for t in r.trials})
    ax.set_xlim(rates[0] / 2, rates[-1] * 2)  # room around a single given rate, too
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate (dotted: the median chosen)")
    ax.set_ylabel("validation loss at the kept epoch")
    ax.set_title("Learning rate: the lowest validation loss wins")
    ax.legend(fontsize=8)


def validation_curves(ax, r):
    """Validation loss per epoch at each optimizer's chosen rate, first split."""
    for run in r.curves:
        epochs = range(1, len(run.val_loss) + 1)
        finite = [(e, v) for e, v in zip(epochs, run.val_loss, strict=True) if math.isfinite(v)]
        if not finite:
            continue
        ax.plot(
            *zip(*finite, strict=True),
            color=_color(run.optimizer),
            lw=1.3,
            label=f"{_label(run.optimizer)} (lr {run.lr:g})",
        )
        if run.best_epoch is not None:
            ax.plot(
                run.best_epoch + 1,
                run.val_loss[run.best_epoch],
                "o",
                color=_color(run.optimizer),
                ms=5,
            )
    ax.set_xlabel("epoch (dot: the weights kept by early stopping)")
    ax.set_ylabel("validation loss")
    ax.set_yscale("log")
    ax.set_title("Validation curves, split 1")
    ax.legend(fontsize=8)


def test_scores(ax, r):
    """Test score with its 95% interval, optimizers and baselines."""
    rows = [*r.optimizers, *r.baselines]
    for i, s in enumerate(rows):
        baseline = s in r.baselines
        color = "#888888" if baseline else _color(s.name)
        if not math.isfinite(s.score.mean):
            continue
        ax.errorbar(
            s.score.mean,
            i,
            xerr=[[s.score.mean - s.score.low], [s.score.high - s.score.mean]],
            fmt="s" if baseline else "o",
            color=color,
            capsize=3,
        )
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(
        [f"{s.label}{' (tie)' if s.tie and len(r.tied) > 1 else ''}" for s in rows], fontsize=8
    )
    ax.invert_yaxis()
    ax.set_xlabel(
        r.metric + (" (higher is better)" if r.higher_is_better else " (lower is better)")
    )
    ax.set_title("Test score, 95% interval over splits")
    ax.grid(axis="x", alpha=0.3)


def comparison(r):
    """One row of three panels, so that the recommendation below stays in view."""
    fig, (scores, rates, curves) = plt.subplots(1, 3, figsize=(15.5, 4.2))
    test_scores(scores, r)
    score_vs_lr(rates, r)
    validation_curves(curves, r)
    return [("compare.png", fig)]
