"""Figures from the experiments' data. Nothing here computes a loss or a step."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # no display, no interactive backend: the lab runs anywhere

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lossopt.lab import fonts, page  # noqa: E402
from lossopt.lab.optimizers import OPTIMIZERS  # noqa: E402
from lossopt.lab.page import COLORS  # noqa: E402

LABELS = {name: spec.label for name, spec in OPTIMIZERS.items()}


def _label(name: str) -> str:
    return page.label(name, LABELS)


def _figure(cols: int, width: float = 4.2, height: float = 3.4):
    fonts.register()  # Korean glyphs, whatever the machine has; before any text is made
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
    classes = np.arange(len(r.softmax))
    bars = c.bar(classes, r.softmax, color="#1f77b4", width=0.6)
    for bar, prob, loss in zip(bars, r.softmax, r.cross_entropy, strict=True):
        c.annotate(
            f"p = {prob:.3f}\nloss if true:\n−log p = {loss:.3f}",
            (bar.get_x() + bar.get_width() / 2, prob),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
        )
    c.set_xticks(classes, [f"class {k}\nlogit {v:g}" for k, v in enumerate(r.logits)])
    c.set_ylim(0, 1)
    c.set_ylabel("softmax probability")
    c.set_title("Softmax, then cross-entropy")
    return [("entropy.png", fig)]


def class_weights(r):
    fig, (a, b, c) = _figure(3, width=4.2)
    classes = np.arange(len(r.train_counts))
    colors = ["#d62728" if k == r.minority else "#888" for k in classes]
    a.bar(classes, r.train_counts, color=colors)
    for k, (n, w) in enumerate(zip(r.train_counts, r.weights, strict=True)):
        a.annotate(f"w={w:.2g}", (k, n), ha="center", va="bottom", fontsize=7, rotation=90)
    a.set_xticks(classes)
    a.set_xlabel("digit")
    a.set_ylabel("training examples")
    a.set_ylim(0, 1.35 * max(r.train_counts))
    a.set_title(f"Digit {r.minority} kept rare; weights n/(C·n_c)")
    width = 0.4
    b.bar(
        classes - width / 2,
        r.recall_plain,
        width,
        yerr=r.recall_plain_std,
        label="no weights",
        color="#888",
        capsize=2,
    )
    b.bar(
        classes + width / 2,
        r.recall_weighted,
        width,
        yerr=r.recall_weighted_std,
        label="class weights",
        color="#1f77b4",
        capsize=2,
    )
    b.set_xticks(classes)
    b.set_xlabel("digit")
    b.set_ylabel("validation recall")
    b.set_ylim(0, 1.3)
    b.set_title(f"Recall per digit, mean ± std over {len(r.seeds)} seeds", fontsize=10)
    b.legend(fontsize=8, loc="upper center", ncols=2)
    rows = np.arange(len(r.row_grad_norms))
    ignored = np.array(r.row_ignored)
    c.bar(rows[~ignored], np.array(r.row_grad_norms)[~ignored], color="#1f77b4", label="kept")
    c.plot(rows[ignored], np.zeros(ignored.sum()), "x", color="#d62728", label="ignore_index")
    c.set_xlabel("row of the batch")
    c.set_ylabel("|∂loss/∂logits| of the row")
    c.set_title(f"ignore_index = {r.ignore_index}")
    c.legend(fontsize=8)
    return [("class-weights.png", fig)]


def kl_asymmetry(r):
    fig, (a, b, c) = _figure(3, width=4.2)
    a.plot(r.ts, r.cross_entropy, label="H(P, Q_t)")
    a.plot(r.ts, r.kl_along, color="#2ca02c", label="D_KL(P‖Q_t) = H(P, Q_t) − H(P)")
    a.axhline(r.entropy, color="#d62728", ls="--", label=f"H(P) = {r.entropy:.3f}")
    a.axvline(r.t_at_min, color="#aaa", ls=":", lw=1)
    a.set_xlabel("t, with Q_t = softmax(t · log P): Q_1 = P")
    a.set_ylabel("nats")
    a.set_title("Cross-entropy ≥ entropy; KL is it minus H(P)")
    a.legend(fontsize=8)
    b.fill_between(r.x, r.p, color="#ccc", label=f"P (two peaks), std {r.p_std:.2f}")
    for fit in r.fits:
        b.plot(r.x, fit.q, label=f"Q by {fit.direction}, std {fit.std:.2f}")
    b.set_title("One Gaussian Q fit to two peaks")
    b.set_xlabel("x")
    b.legend(fontsize=7, loc="upper left")
    b.set_ylim(0, 1.45 * max(max(r.p), *(max(f.q) for f in r.fits)))
    for fit in r.fits:
        c.plot(np.arange(1, len(fit.history) + 1), fit.history, label=fit.direction)
    c.set_xlabel("Adam step")
    c.set_ylabel("divergence minimised (nats)")
    c.set_yscale("log")
    c.legend(fontsize=8)
    c.set_title("Training")
    return [("kl.png", fig)]


def _triplet_geometry(ax, t, margin, title):
    a, p, n = (np.array(v) for v in (t.anchor, t.positive, t.negative))
    for radius, style, label in (
        (t.d_ap, "-", "d(a, p)"),
        (t.d_ap + margin, "--", "d(a, p) + margin"),
    ):
        ax.add_patch(plt.Circle(a, radius, fill=False, ls=style, color="#888", label=label))
    ax.plot(*zip(a, p, strict=True), color="#2ca02c", lw=1)
    ax.plot(*zip(a, n, strict=True), color="#d62728", lw=1)
    # The negative and the positive first, small and filled; the anchor last, a large
    # open ring: a negative right on the anchor (the hard case) stays visible inside it.
    ax.plot(*p, "o", color="#2ca02c", ms=6, label="positive (same digit)", zorder=3)
    ax.plot(*n, "s", color="#d62728", ms=5, label="negative (other digit)", zorder=3)
    ax.plot(*a, "o", mfc="none", mec="black", mew=1.8, ms=13, label="anchor", zorder=4)
    reach = 1.15 * max(t.d_ap + margin, t.d_an)
    # Each point named beside it, nudged apart so that two close points stay readable.
    for point, name, color, (dx, dy) in (
        (a, "a", "black", (-0.09, 0.07)),
        (p, "p", "#2ca02c", (0.06, 0.05)),
        (n, "n", "#d62728", (0.07, -0.09)),
    ):
        ax.annotate(
            name,
            point,
            xytext=(point[0] + dx * reach, point[1] + dy * reach),
            color=color,
            fontsize=10,
            arrowprops={"arrowstyle": "-", "color": color, "lw": 0.6},
        )
    ax.set_xlim(a[0] - reach, a[0] + reach)
    ax.set_ylim(a[1] - reach, a[1] + reach)
    ax.set_aspect("equal")
    ax.set_title(
        f"{title}: loss {t.loss:.2f}\nd(a, p) = {t.d_ap:.2g}, d(a, n) = {t.d_an:.2g}", fontsize=10
    )


def triplet(r):
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.4))
    (g0, g1, c), (e0, e1, key) = axes
    _triplet_geometry(g0, r.triplet_before, r.margin, "Before training")
    _triplet_geometry(g1, r.triplet_after, r.margin, "After training")
    g0.legend(fontsize=7, loc="lower left")
    g1.legend(fontsize=7, loc="lower left")
    c.plot(np.arange(1, len(r.loss) + 1), r.loss)
    c.set_xlabel("Adam step")
    c.set_ylabel("batch triplet loss")
    c.set_title(f"Training ({r.mining}, margin {r.margin:g})")
    labels = np.array(r.labels)
    both = np.array(r.before + r.after)
    low, high = both.min(axis=0), both.max(axis=0)
    pad = 0.05 * (high - low)
    cmap = plt.get_cmap("tab10")
    for ax, emb, title, knn in (
        (e0, r.before, "before", r.knn_before),
        (e1, r.after, "after", r.knn_after),
    ):
        emb = np.array(emb)
        for digit in range(10):
            rows = labels == digit
            ax.scatter(emb[rows, 0], emb[rows, 1], s=5, color=cmap(digit), label=str(digit))
        ax.set_xlim(low[0] - pad[0], high[0] + pad[0])
        ax.set_ylim(low[1] - pad[1], high[1] + pad[1])
        ax.set_title(f"Embedding {title} (1-NN accuracy {100 * knn:.0f}%)")
    handles, names = e1.get_legend_handles_labels()
    key.legend(handles, names, title="digit", markerscale=3, ncols=2, loc="center")
    key.axis("off")
    return [("triplet.png", fig)]


def derivative(r):
    fig, (a, b) = _figure(2, width=5.2, height=3.8)
    a.plot(r.ws, r.loss, color="#444", label="L(w) = mse_loss(w·x, y)")
    for t in r.tangents:
        span = np.array([t.w - 0.7, t.w + 0.7])
        a.plot(
            span,
            t.loss + t.autograd * (span - t.w),
            lw=2,
            label=f"slope {t.autograd:.3g} at w={t.w:.2f}",
        )
        a.plot(t.w, t.loss, "o", color="black", ms=4)
    a.set_xlabel("w")
    a.set_ylabel("loss")
    a.set_title("The derivative is the tangent's slope")
    a.legend(fontsize=7)
    b.loglog(
        r.hs,
        np.where(np.array(r.forward_error) > 0, r.forward_error, np.nan),
        ".-",
        label="(L(w+h) − L(w)) / h",
    )
    b.loglog(
        r.hs,
        np.where(np.array(r.central_error) > 0, r.central_error, np.nan),
        ".-",
        label="(L(w+h) − L(w−h)) / 2h",
    )
    b.set_xlabel("h")
    b.set_ylabel("|difference − autograd|")
    b.set_title(f"Finite differences at w = {r.tangents[0].w:g}")
    b.legend(fontsize=8)
    return [("derivative.png", fig)]


def gd_vs_sgd(r):
    fig, (a, b, c) = _figure(3, width=4.2)
    gd, sgd = np.array(r.gd_loss), np.array(r.sgd_loss)
    a.plot(np.arange(len(gd)), gd, label=f"GD ({r.train_size} examples/step)", color=COLORS["sgd"])
    a.plot(
        np.arange(len(sgd)),
        sgd,
        label=f"SGD ({r.batch_size} examples/step)",
        color=COLORS["rmsprop"],
    )
    a.set_xlabel("step")
    a.set_ylabel("loss on the whole training set")
    a.set_title("Per step")
    a.legend(fontsize=8)
    # From step 1: a log axis has no place for the 0 examples read before it.
    b.plot(np.arange(1, len(gd)) * r.train_size, gd[1:], label="GD", color=COLORS["sgd"])
    b.plot(np.arange(1, len(sgd)) * r.batch_size, sgd[1:], label="SGD", color=COLORS["rmsprop"])
    b.set_xscale("log")
    b.set_xlabel("examples processed")
    b.set_ylabel("loss on the whole training set")
    b.set_title("Per example processed")
    b.legend(fontsize=8)
    c.plot(
        np.arange(1, len(r.sgd_gradient_noise) + 1), r.sgd_gradient_noise, color=COLORS["rmsprop"]
    )
    c.set_xlabel("SGD step")
    c.set_ylabel("|g_batch − g_full| / |g_full|")
    c.set_title("Noise of a mini-batch gradient")
    return [("gd-vs-sgd.png", fig)]


def _contours(ax, bounds, coefficients):
    """The quadratic bowl a x² + b y² the result names, drawn from its coefficients."""
    x0, x1, y0, y1 = bounds
    a, b = coefficients
    gx, gy = np.meshgrid(np.linspace(x0, x1, 200), np.linspace(y0, y1, 200))
    ax.contour(
        gx,
        gy,
        a * gx**2 + b * gy**2,
        levels=np.geomspace(0.02, 30, 14),
        colors="#bbb",
        linewidths=0.6,
    )
    ax.plot(0, 0, "k*", ms=10)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


def _path(ax, points, color, label=None, **style):
    pts = np.array(points)
    ax.plot(pts[:, 0], pts[:, 1], "o-", color=color, label=label, **{"ms": 3, "lw": 1.2, **style})


def _positive(values):
    # A log axis cannot show 0: leave such a point out rather than clip it to a floor.
    v = np.array(values, dtype=float)
    return np.where(v > 0, v, np.nan)


def optimizer_paths(r):
    count = len(r.paths) + 1
    cols = min(3, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.3 * rows), squeeze=False)
    axes = axes.flatten()
    for ax, path in zip(axes, r.paths, strict=False):
        _contours(ax, r.bounds, r.surface)
        _path(ax, path.points, COLORS.get(path.optimizer))
        ax.plot(*r.start, "o", color="black", ms=6)
        end = " (diverged)" if path.diverged else ""
        ax.set_title(
            f"{_label(path.optimizer)}, lr={path.lr:g}: crosses y=0 {path.crossings}×{end}",
            fontsize=10,
        )
    values = axes[len(r.paths)]
    for path in r.paths:
        values.plot(
            np.arange(len(path.values)),
            _positive(path.values),
            "o-",
            ms=2,
            color=COLORS.get(path.optimizer),
            label=_label(path.optimizer),
        )
    if r.matched is not None:
        values.plot(
            np.arange(len(r.matched.values)),
            _positive(r.matched.values),
            "--",
            color=COLORS["momentum"],
            label=f"Momentum, lr={r.matched.lr:.3g} (SGD's effective step)",
        )
    values.set_yscale("log")
    values.set_xlabel("step")
    values.set_ylabel("f(x, y)  (minimum 0)")
    values.set_title("Value along each path")
    values.legend(fontsize=8)
    for ax in axes[count:]:
        ax.axis("off")
    return [("paths.png", fig)]


def learning_rate(r):
    fig, (a, b, c) = _figure(3, width=4.2)
    _contours(a, (-10.0, 10.0, -5.0, 5.0), r.surface)
    for path, label in zip(r.paths, r.labels, strict=True):
        _path(a, path.points[:16], None, label=f"{label} (lr={path.lr:g})", ms=2)
        b.plot(
            np.arange(len(path.values)), _positive(path.values), label=f"{label} (lr={path.lr:g})"
        )
    a.set_title("SGD, three learning rates (first 15 steps)")
    a.legend(fontsize=7, loc="lower right")
    b.set_yscale("log")
    b.set_xlabel("step")
    b.set_ylabel("f(x, y)")
    b.set_title("Value along the path")
    b.legend(fontsize=7)
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


def momentum_forms(r):
    fig, (a, b, c) = _figure(3, width=4.2)
    for ax, run in zip((a, b), r.runs, strict=True):
        _contours(ax, (-8.0, 3.0, -2.5, 2.5), r.surface)
        _path(ax, run.lecture, COLORS["momentum"], label="v ← αv − ηg; W ← W + v", ms=5, alpha=0.6)
        _path(ax, run.torch_form, "#d62728", label="b ← μb + g; W ← W − ηb", ms=2)
        ax.legend(fontsize=7, loc="lower right")
    a.set_title(f"Constant η: max gap {r.runs[0].max_difference:.1e}")
    b.set_title(f"η ÷ 10 from step {r.drop_step}: max gap {r.runs[1].max_difference:.2g}")
    drop = r.runs[1]
    for points, label, color in (
        (drop.lecture, "lecture's form", COLORS["momentum"]),
        (drop.torch_form, "torch's form", "#d62728"),
    ):
        lengths = [math.dist(p, q) for p, q in zip(points, points[1:], strict=False)]
        c.plot(
            np.arange(1, len(lengths) + 1), _positive(lengths), "o-", ms=2, label=label, color=color
        )
    c.axvline(r.drop_step, color="#aaa", ls=":")
    c.set_yscale("log")
    c.set_xlabel("step")
    c.set_ylabel("step length |ΔW|")
    c.set_title("After the rate drops")
    c.legend(fontsize=8)
    return [("momentum.png", fig)]


def adaptive_steps(r):
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.2))
    (a, e), (b, d) = axes
    a.plot(r.steps, r.adagrad, label="AdaGrad η/(√h + ε)", color=COLORS["adagrad"])
    a.plot(
        r.steps,
        r.rmsprop,
        label=f"RMSProp η/(√G + ε), γ={r.rmsprop_alpha:g}",
        color=COLORS["rmsprop"],
    )
    a.set_yscale("log")
    a.set_xlabel("step")
    a.set_ylabel("effective learning rate")
    a.set_title("Same noisy gradients, two accumulators")
    a.legend(fontsize=8)
    steps = np.arange(1, len(r.adagrad_elements) + 1)
    rates = np.array(r.adagrad_elements)
    e.plot(steps, rates[:, 0], "o-", ms=2, label="x (flat: small gradients)", color="#1f77b4")
    e.plot(steps, rates[:, 1], "o-", ms=2, label="y (steep: large gradients)", color="#d62728")
    e.set_xlabel("step")
    e.set_ylabel("AdaGrad's rate η/(√h + ε)")
    e.set_title(f"AdaGrad per element on x²/20 + y², η = {r.adagrad_lr:g}")
    e.legend(fontsize=8)
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
    b.axhline(r.rmsprop_first_step, color=COLORS["rmsprop"], ls=":", label="RMSProp's first step")
    b.set_yscale("log")
    b.set_xlabel("step")
    b.set_ylabel("|step|")
    b.set_title("Adam's first steps")
    b.legend(fontsize=8)
    d.loglog(r.eps_gradients, r.eps_inside, "o-", ms=3, label="η g/√(G + ε) (the lecture)")
    d.loglog(r.eps_gradients, r.eps_outside, "s-", ms=3, label="η g/(√G + ε) (torch, measured)")
    d.set_xlabel("|g| on the first step")
    d.set_ylabel("|first step| of RMSProp")
    d.set_title(f"Where ε = {r.rmsprop_eps:g} sits")
    d.legend(fontsize=8)
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
    finite = [r for r in ranking if math.isfinite(r.metric_mean)]
    means = [r.metric_mean if math.isfinite(r.metric_mean) else np.nan for r in ranking]
    ax.barh(
        names[::-1],
        means[::-1],
        xerr=[r.metric_std if math.isfinite(r.metric_std) else 0 for r in ranking][::-1],
        color=[COLORS.get(r.optimizer) for r in ranking][::-1],
    )
    if finite:
        # Bars from 0 would hide 0.953 against 0.969: zoom to where the means lie.
        low = min(r.metric_mean - r.metric_std for r in finite)
        high = max(r.metric_mean + r.metric_std for r in finite)
        pad = max(0.1 * (high - low), 1e-3 * max(abs(low), abs(high), 1e-12))
        ax.set_xlim(low - pad, high + pad)
        for i, r in enumerate(ranking[::-1]):
            if math.isfinite(r.metric_mean):
                ax.annotate(
                    f"{r.metric_mean:.4f}",
                    (low - pad, i),
                    xytext=(3, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=8,
                    color="white",
                )
    ax.set_xlabel(metric)
    ax.set_title("Ranking (mean ± std; axis zoomed)")


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
