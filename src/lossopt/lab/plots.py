"""Figures from the experiments' data. Nothing here computes a loss or a step."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # no display, no interactive backend: the lab runs anywhere

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lossopt.lab.optimizers import OPTIMIZERS  # noqa: E402

COLORS = {
    "sgd": "#444444",
    "momentum": "#1f77b4",
    "adagrad": "#2ca02c",
    "rmsprop": "#ff7f0e",
    "adam": "#d62728",
}


def _label(name: str) -> str:
    return OPTIMIZERS[name].label if name in OPTIMIZERS else name


def _figure(cols: int, width: float = 4.2, height: float = 3.4):
    fig, axes = plt.subplots(1, cols, figsize=(width * cols, height), squeeze=False)
    return fig, axes[0]


def l1_vs_l2(r):
    fig, (a, b) = _figure(2)
    a.plot(r.errors, r.l1, label="L1 |e|")
    a.plot(r.errors, r.l2, label="L2 e²")
    a.plot(r.errors, r.huber, label="Huber (δ=1)")
    a.set_xlabel("error e = x − y")
    a.set_ylabel("loss")
    a.set_title("Each error's loss")
    a.legend()
    x, y, out = np.array(r.x), np.array(r.y), np.array(r.outlier)
    b.scatter(x[~out], y[~out], s=12, color="#888", label="data")
    b.scatter(x[out], y[out], s=18, color="black", marker="x", label="outliers")
    grid = np.linspace(x.min(), x.max(), 2)
    b.plot(grid, r.true_line[0] * grid + r.true_line[1], "k--", lw=1, label="true line")
    for fit in r.fits:
        b.plot(grid, fit.slope * grid + fit.intercept, label=f"{fit.loss} fit")
    b.set_title("A line fit under each loss")
    b.legend(fontsize=8)
    return [("l1-vs-l2.png", fig)]


def entropy(r):
    fig, (a, b, c) = _figure(3, width=3.8)
    a.plot(r.coin_p, r.coin_entropy)
    a.axvline(0.5, color="#aaa", ls=":")
    a.set_xlabel("P(heads)")
    a.set_ylabel("entropy (nats)")
    a.set_title("Entropy of a coin")
    b.bar(["fair die", "5×'1', 1×'6'"], [r.fair_die, r.loaded_die], color=["#1f77b4", "#ff7f0e"])
    b.set_ylabel("entropy (nats)")
    b.set_title("Two dice")
    for eps, curve in r.smoothed_loss.items():
        c.plot(r.p_true, curve, label=f"ε = {eps}")
        c.axvline(r.best_p_true[eps], ls=":", lw=1, color=c.lines[-1].get_color())
    c.set_xlabel("predicted probability of the true class")
    c.set_ylabel("cross-entropy")
    c.set_title("Label smoothing moves the optimum")
    c.set_ylim(0, 4)
    c.legend()
    return [("entropy.png", fig)]


def kl_asymmetry(r):
    fig, (a, b) = _figure(2)
    a.fill_between(r.x, r.p, color="#ccc", label="P (two peaks)")
    for fit in r.fits:
        a.plot(r.x, fit.q, label=f"Q fit by {fit.direction}")
    a.set_title("One Gaussian fit to two peaks")
    a.legend(fontsize=8)
    for fit in r.fits:
        b.plot(fit.history, label=fit.direction)
    b.set_xlabel("Adam step")
    b.set_ylabel("divergence minimised")
    b.set_yscale("log")
    b.legend(fontsize=8)
    b.set_title("Training")
    return [("kl.png", fig)]


def triplet(r):
    fig, (a, b, c) = _figure(3, width=3.8)
    labels = np.array(r.labels)
    panels = ((a, r.before, "before", r.knn_before), (b, r.after, "after", r.knn_after))
    for ax, emb, title, knn in panels:
        emb = np.array(emb)
        ax.scatter(emb[:, 0], emb[:, 1], c=labels, cmap="tab10", s=6)
        ax.set_title(f"Embeddings {title} ({100 * knn:.0f}% 1-NN)")
    c.plot(r.loss)
    c.set_xlabel("Adam step")
    c.set_ylabel("batch triplet loss")
    c.set_title(f"Training ({r.mining})")
    return [("triplet.png", fig)]


def optimizer_paths(results):
    out = []
    for s in results:
        fig, (a, b) = _figure(2, width=4.8)
        x0, x1, y0, y1 = s.bounds
        gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
        f = _surface_values(s.surface, gx, gy)
        a.contour(gx, gy, np.log1p(f - f.min()), levels=25, cmap="Greys", linewidths=0.6)
        for path in s.paths:
            pts = np.array(path.points)
            a.plot(
                pts[:, 0],
                pts[:, 1],
                ".-",
                ms=2,
                lw=1,
                color=COLORS.get(path.optimizer),
                label=f"{_label(path.optimizer)} lr={path.lr:g}",
            )
            b.plot(
                range(1, len(path.values) + 1),
                np.maximum(np.array(path.values) - f.min(), 1e-12),
                color=COLORS.get(path.optimizer),
            )
        for m in s.minima:
            a.plot(*m, "k*", ms=10)
        a.set_xlim(x0, x1)
        a.set_ylim(y0, y1)
        a.set_title(s.surface)
        a.legend(fontsize=7)
        b.set_yscale("log")
        b.set_xscale("log")
        b.set_xlabel("step")
        b.set_ylabel("f − min f (grid)")
        b.set_title("Value along the path")
        out.append((f"paths-{s.surface}.png", fig))
    return out


def _surface_values(name, x, y):
    import torch

    from lossopt.lab.experiments.optimization import SURFACES

    return SURFACES[name].f(torch.from_numpy(x), torch.from_numpy(y)).numpy()


def learning_rate(r):
    fig, (a, b, c) = _figure(3, width=3.8)
    gx, gy = np.meshgrid(np.linspace(-10, 10, 200), np.linspace(-5, 5, 200))
    a.contour(gx, gy, gx**2 / 20 + gy**2, levels=20, cmap="Greys", linewidths=0.6)
    for path, label in zip(r.paths, r.labels, strict=True):
        pts = np.array(path.points)
        a.plot(pts[:, 0], pts[:, 1], ".-", ms=2, lw=1, label=label)
        b.plot(path.values, label=label)
    a.set_xlim(-10, 10)
    a.set_ylim(-5, 5)
    a.set_title("SGD with three learning rates")
    a.legend(fontsize=7)
    b.set_yscale("log")
    b.set_xlabel("step")
    b.set_ylabel("f(x, y)")
    b.set_title("Too small crawls, too large diverges")
    c.plot(r.range_test.lrs, r.range_test.loss)
    c.axvline(
        r.range_test.suggested_lr,
        color="#d62728",
        ls=":",
        label=f"suggested {r.range_test.suggested_lr:.2g}",
    )
    c.set_xscale("log")
    c.set_xlabel("learning rate")
    c.set_ylabel("smoothed loss")
    c.set_title("Range test on the digits network")
    c.legend(fontsize=8)
    return [("learning-rate.png", fig)]


def adaptive_steps(r):
    fig, (a, b) = _figure(2, width=4.8)
    a.plot(r.steps, r.adagrad, label="AdaGrad η/(√h + ε)", color=COLORS["adagrad"])
    a.plot(r.steps, r.rmsprop, label="RMSProp η/(√G + ε)", color=COLORS["rmsprop"])
    a.set_yscale("log")
    a.set_xlabel("step")
    a.set_ylabel("effective learning rate")
    a.set_title("AdaGrad shrinks, RMSProp levels off")
    a.legend(fontsize=8)
    b.plot(r.adam_steps, r.adam_corrected, label="with bias correction", color=COLORS["adam"])
    b.plot(r.adam_steps, r.adam_uncorrected, label="without", color="#444", ls="--")
    b.plot(
        r.adam_steps,
        r.adam_actual,
        ".",
        ms=3,
        label="measured on lossopt's Adam",
        color=COLORS["adam"],
    )
    b.set_xlabel("step")
    b.set_ylabel("|step|")
    b.set_title("Adam's first steps")
    b.legend(fontsize=8)
    return [("adaptive.png", fig)]


def _curves(ax_train, ax_val, runs, metric):
    seen = set()
    for run in runs:
        color = COLORS.get(run.optimizer)
        label = None if run.optimizer in seen else f"{_label(run.optimizer)} lr={run.lr:g}"
        seen.add(run.optimizer)
        epochs = range(1, len(run.train_loss) + 1)
        ax_train.plot(epochs, run.train_loss, color=color, alpha=0.8, label=label)
        ax_val.plot(
            range(1, len(run.val_metric) + 1), run.val_metric, color=color, alpha=0.8, label=label
        )
    ax_train.set_xlabel("epoch")
    ax_train.set_ylabel("training loss")
    ax_train.set_yscale("log")
    ax_train.set_title("Training loss (each seed)")
    ax_val.set_xlabel("epoch")
    ax_val.set_ylabel(metric)
    ax_val.set_title(metric.capitalize())
    ax_val.legend(fontsize=7)


def _ranking(ax, ranking, metric):
    names = [_label(r.optimizer) for r in ranking]
    means = [r.metric_mean if math.isfinite(r.metric_mean) else 0 for r in ranking]
    ax.barh(
        names[::-1],
        means[::-1],
        xerr=[r.metric_std for r in ranking][::-1],
        color=[COLORS.get(r.optimizer) for r in ranking][::-1],
    )
    ax.set_xlabel(metric)
    ax.set_title("Ranking (mean ± std over seeds)")


def training(r):
    fig, (a, b, c) = _figure(3, width=3.9)
    _curves(a, b, r.runs, r.metric)
    _ranking(c, r.ranking, r.metric)
    return [("training.png", fig)]


def comparison(r):
    fig, (a, b, c) = _figure(3, width=3.9)
    _curves(a, b, r.runs, r.metric)
    _ranking(c, r.ranking, r.metric)
    return [("compare.png", fig)]


def save(figures, folder):
    """Write each (name, figure) as a PNG under folder; returns the names."""
    names = []
    for name, fig in figures:
        fig.tight_layout()
        fig.savefig(folder / name, dpi=90)
        plt.close(fig)
        names.append(name)
    return names
