"""The static report's figures: each section's pictures, built by lossopt.lab.pictures
(the same functions the live lab's explorables build theirs with) from the
experiment's result, drawn side by side in one PNG by figures.draw_matplotlib.

Nothing here computes a loss or a step, and no picture is drawn by hand: this
module only chooses which pictures a section shows, from which numbers, and lays
them out. Its words are wrapped in `_()` and said in the report's language, numbers filled
in after translation; the experiments' own names (a fit's direction, a rate's label, the
metric) are marked for the catalog where they are made (report.py) and translated here.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # no display, no interactive backend: the lab runs anywhere

import matplotlib.pyplot as plt  # noqa: E402

from lossopt.lab import fonts, page, pictures  # noqa: E402
from lossopt.lab.figures import Axis, Figure, Series, draw_matplotlib  # noqa: E402
from lossopt.lab.i18n import _, ngettext  # noqa: E402
from lossopt.lab.optimizers import OPTIMIZERS  # noqa: E402
from lossopt.lab.page import COLORS  # noqa: E402

LABELS = {name: spec.label for name, spec in OPTIMIZERS.items()}
TANGENT_COLORS = ("#1f77b4", "#2ca02c", "#d62728")
KL_COLORS = ("#1f77b4", "#2ca02c")  # forward, reverse: as in the live lab


def _label(name: str) -> str:
    return page.label(name, LABELS)


def panels(specs: list[Figure], cols: int | None = None, width: float = 4.2, height: float = 3.4):
    """One matplotlib figure with each spec drawn on a panel of its own, row by row."""
    fonts.register()  # Korean glyphs, whatever the machine has; before any text is made
    cols = cols or len(specs)
    rows = math.ceil(len(specs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = axes.flatten()
    for ax, spec in zip(flat, specs, strict=False):
        draw_matplotlib(spec, ax)
        ax.title.set_fontsize(10)
    for ax in flat[len(specs) :]:
        ax.axis("off")
    return fig


def l1_vs_l2(r):
    delta = 1.0  # the experiment's Huber runs at torch's default δ
    fits = [(f.loss, f.slope, f.intercept) for f in r.fits]
    specs = [
        pictures.loss_shapes(r.errors, r.l1, r.l2, r.huber, delta, top=max(r.l2)),
        pictures.line_fits(r.x, r.y, r.outlier, r.true_line, fits, ends=(min(r.x), max(r.x))),
    ]
    return [("l1-vs-l2.png", panels(specs))]


def entropy(r):
    coin = pictures.curve(
        _("Entropy of a coin"),
        _("P(heads)"),
        _("entropy (nats)"),
        [("", r.coin_entropy, "#1f77b4")],
        x=r.coin_p,
        lines=[Series("vline", "", x=[0.5], color="#aaaaaa", dash=True)],
    )
    dice = pictures.bars(
        _("Two dice"),
        "",
        _("entropy (nats)"),
        [("", [_("fair die"), "5×'1', 1×'6'"], [r.fair_die, r.loaded_die], "#1f77b4")],
    )
    softmax = pictures.softmax_bars(r.softmax, r.cross_entropy)
    return [("entropy.png", panels([coin, dice, softmax], width=3.8))]


def class_weights(r):
    classes = [str(k) for k in range(len(r.train_counts))]
    counts = pictures.bars(
        _("Digit {digit} kept rare; weights n/(C·n_c)").format(digit=r.minority),
        _("digit"),
        _("training examples"),
        [("", classes, r.train_counts, "#888888")],
        text=[[f"w={w:.2g}" for w in r.weights]],
        y_range=(0, 1.25 * max(r.train_counts)),
    )
    recall = pictures.bars(
        ngettext(
            "Recall per digit, mean ± std over {seeds} seed",
            "Recall per digit, mean ± std over {seeds} seeds",
            len(r.seeds),
        ).format(seeds=len(r.seeds)),
        _("digit"),
        _("validation recall"),
        [
            (_("no weights"), classes, r.recall_plain, "#888888"),
            (_("class weights"), classes, r.recall_weighted, "#1f77b4"),
        ],
        errors=[r.recall_plain_std, r.recall_weighted_std],
        y_range=(0, 1.3),
    )
    rows = list(range(len(r.row_grad_norms)))
    gradients = pictures.bars(
        _("ignore_index = {index} (× an ignored row)").format(index=r.ignore_index),
        _("row of the batch"),
        _("|∂loss/∂logits| of the row"),
        [("", rows, r.row_grad_norms, "#1f77b4")],
        text=[["×" if ignored else "" for ignored in r.row_ignored]],
    )
    return [("class-weights.png", panels([counts, recall, gradients]))]


def kl_asymmetry(r):
    bound = pictures.cross_entropy_bound(
        r.ts,
        r.cross_entropy,
        r.entropy,
        [("D_KL(P‖Q_t) = H(P, Q_t) − H(P)", r.kl_along, "#2ca02c")],
        axis=Axis(_("t, with Q_t = softmax(t · log P): Q_1 = P")),
        title=_("Cross-entropy ≥ entropy; KL is it minus H(P)"),
        mark=r.t_at_min,
    )
    shown = [(_("P (two peaks), std {std}").format(std=f"{r.p_std:.2f}"), r.p, "#000000", False)]
    shown += [
        (
            _("Q by {direction}, std {std}").format(
                direction=_(fit.direction), std=f"{fit.std:.2f}"
            ),
            fit.q,
            color,
            True,
        )
        for fit, color in zip(r.fits, KL_COLORS, strict=False)
    ]
    fits = pictures.distributions(r.x, shown, title=_("One Gaussian Q fit to two peaks"))
    training = pictures.curve(
        _("Training"),
        _("Adam step"),
        _("divergence minimised (nats)"),
        [(_(fit.direction), fit.history, c) for fit, c in zip(r.fits, KL_COLORS, strict=False)],
        y_scale="log",
    )
    return [("kl.png", panels([bound, fits, training]))]


def _triplet_board(t, margin: float, title: str) -> Figure:
    return pictures.triplet_board(
        tuple(t.anchor),
        tuple(t.positive),
        tuple(t.negative),
        margin=margin,
        d_ap=t.d_ap,
        kind=pictures.negative_kind(t.d_ap, t.d_an, margin),
        title=_("{title}: loss {loss}").format(title=title, loss=f"{t.loss:.2f}")
        + f"\nd(a, p) = {t.d_ap:.2g}, d(a, n) = {t.d_an:.2g}",
    )


def triplet(r):
    both = r.before + r.after
    low = [min(p[i] for p in both) for i in (0, 1)]
    high = [max(p[i] for p in both) for i in (0, 1)]
    pad = [0.05 * (h - lo) for lo, h in zip(low, high, strict=True)]
    bounds = (low[0] - pad[0], high[0] + pad[0], low[1] - pad[1], high[1] + pad[1])
    specs = [
        _triplet_board(r.triplet_before, r.margin, _("Before training")),
        _triplet_board(r.triplet_after, r.margin, _("After training")),
        pictures.curve(
            _("Training ({mining}, margin {margin})").format(
                mining=r.mining, margin=f"{r.margin:g}"
            ),
            _("Adam step"),
            _("batch triplet loss"),
            [("", r.loss, "#1f77b4")],
        ),
        pictures.embedding(
            r.before,
            r.labels,
            title=_("Embedding before (1-NN accuracy {accuracy})").format(
                accuracy=f"{r.knn_before:.0%}"
            ),
            bounds=bounds,
        ),  # fmt: skip
        pictures.embedding(
            r.after,
            r.labels,
            title=_("Embedding after (1-NN accuracy {accuracy})").format(
                accuracy=f"{r.knn_after:.0%}"
            ),
            bounds=bounds,
        ),  # fmt: skip
    ]
    return [("triplet.png", panels(specs, cols=3, height=4.2))]


def derivative(r):
    lines = [
        (
            _("slope {slope} at w={w}").format(slope=f"{t.autograd:.3g}", w=f"{t.w:.2f}"),
            t.w,
            t.loss,
            t.autograd,
            color,
            False,
        )
        for t, color in zip(r.tangents, TANGENT_COLORS, strict=False)
    ]
    specs = [
        pictures.slope(
            r.ws, r.loss, lines, half_width=0.7, title=_("The derivative is the tangent's slope")
        ),
        pictures.difference_errors(
            r.hs,
            r.forward_error,
            r.central_error,
            h=r.h,
            title=_("Finite differences at w = {w}").format(w=f"{r.tangents[0].w:g}"),
        ),
    ]
    return [("derivative.png", panels(specs, width=5.2, height=3.8))]


def gd_vs_sgd(r):
    specs = pictures.gd_vs_sgd(
        r.gd_loss,
        r.sgd_loss,
        train_size=r.train_size,
        batch_size=r.batch_size,
        noise=r.sgd_gradient_noise,
    )
    return [("gd-vs-sgd.png", panels(specs))]


def learning_rate(r):
    names = [f"{_(label)} (lr={p.lr:g})" for label, p in zip(r.labels, r.paths, strict=True)]
    colors = pictures.RATE_COLORS
    board = pictures.surface_board(
        _("SGD, three learning rates (first {steps} steps)").format(steps=15),
        pictures.bowl_contour(*r.surface),
        [(n, p.points[:16], c) for n, p, c in zip(names, r.paths, colors, strict=True)],
        start=r.paths[0].points[0],
        minimum=(0.0, 0.0),
    )
    values = pictures.value_curves(
        [(n, p.values, c) for n, p, c in zip(names, r.paths, colors, strict=True)],
        title=_("Value along the path"),
        label="f(x, y)",
    )
    rt = r.range_test
    return [
        (
            "learning-rate.png",
            panels([board, values, pictures.range_test(rt.lrs, rt.loss, rt.suggested_lr)]),
        )
    ]


def optimizer_paths(r):
    rings = pictures.bowl_contour(*r.surface, bounds=r.bounds)
    specs = []
    for path in r.paths:
        if path.diverged:
            said = _("{optimizer}, lr={lr}: crosses y=0 {crossings}× (diverged)")
        else:
            said = _("{optimizer}, lr={lr}: crosses y=0 {crossings}×")
        title = said.format(
            optimizer=_label(path.optimizer), lr=f"{path.lr:g}", crossings=path.crossings
        )
        specs.append(
            pictures.surface_board(
                title,
                rings,
                [(_label(path.optimizer), path.points, COLORS.get(path.optimizer))],
                start=r.start,
                minimum=r.minimum,
                bounds=r.bounds,
            )
        )
    curves = [(_label(p.optimizer), p.values, COLORS.get(p.optimizer)) for p in r.paths]
    dashed = []
    if r.matched is not None:
        name = _("Momentum, lr={lr} (SGD's effective step)").format(lr=f"{r.matched.lr:.3g}")
        curves.append((name, r.matched.values, COLORS["momentum"]))
        dashed.append(name)
    specs.append(
        pictures.value_curves(
            curves,
            title=_("Value along each path"),
            label=_("f(x, y)  (minimum 0)"),
            dashed=dashed,
        )
    )
    return [("paths.png", panels(specs, cols=min(3, len(specs)), width=4.4, height=3.3))]


def momentum_forms(r):
    bounds = (-8.0, 3.0, -2.5, 2.5)
    rings = pictures.bowl_contour(*r.surface, bounds=bounds)
    forms = ("v ← αv − ηg; W ← W + v", "b ← μb + g; W ← W − ηb")
    colors = (COLORS["momentum"], "#d62728")
    titles = (
        _("Constant η: max gap {gap}").format(gap=f"{r.runs[0].max_difference:.1e}"),
        _("η ÷ 10 from step {step}: max gap {gap}").format(
            step=r.drop_step, gap=f"{r.runs[1].max_difference:.2g}"
        ),
    )
    specs = [
        pictures.surface_board(
            title,
            rings,
            [(forms[0], run.lecture, colors[0]), (forms[1], run.torch_form, colors[1])],
            start=run.lecture[0],
            minimum=(0.0, 0.0),
            bounds=bounds,
        )
        for title, run in zip(titles, r.runs, strict=True)
    ]
    drop = r.runs[1]
    specs.append(
        pictures.step_lengths(
            [
                (_("lecture's form"), drop.lecture, colors[0]),
                (_("torch's form"), drop.torch_form, colors[1]),
            ],
            mark=r.drop_step,
        )
    )
    return [("momentum.png", panels(specs))]


def adaptive_steps(r):
    stream = pictures.adaptive_stream(
        r.steps,
        [
            ("AdaGrad η/(√h + ε)", r.adagrad, COLORS["adagrad"]),
            (f"RMSProp η/(√G + ε), γ={r.rmsprop_alpha:g}", r.rmsprop, COLORS["rmsprop"]),
        ],
        title=_("Same noisy gradients, two accumulators"),
        label=_("effective learning rate"),
        log_steps=False,
    )
    x, y = zip(*r.adagrad_elements, strict=True)
    elements = pictures.adagrad_elements(list(x), list(y), r.adagrad_lr)
    adam = pictures.curve(
        _("Adam's first steps"),
        _("step"),
        _("|step|"),
        [
            (_("with bias correction"), r.adam_corrected, COLORS["adam"]),
            (_("without"), r.adam_uncorrected, "#444444"),
        ],
        x=r.adam_steps,
        y_scale="log",
        lines=[
            Series(
                "scatter",
                _("measured on lossopt's Adam"),
                x=r.adam_steps,
                y=r.adam_actual,
                color=COLORS["adam"],
                size=3,
            ),
            Series(
                "hline",
                _("RMSProp's first step"),
                y=[r.rmsprop_first_step],
                color=COLORS["rmsprop"],
                dash=True,
            ),
        ],  # fmt: skip
    )
    eps = pictures.curve(
        _("Where ε = {eps} sits").format(eps=f"{r.rmsprop_eps:g}"),
        _("|g| on the first step"),
        _("|first step| of RMSProp"),
        [
            (_("η g/√(G + ε) (the lecture)"), r.eps_inside, "#1f77b4"),
            (_("η g/(√G + ε) (torch, measured)"), r.eps_outside, "#ff7f0e"),
        ],
        x=r.eps_gradients,
        x_scale="log",
        y_scale="log",
    )
    return [("adaptive.png", panels([stream, elements, adam, eps], cols=2, width=5.0, height=3.6))]


def _runs(runs, values, title: str, label: str, scale: str) -> Figure:
    seen, curves = set(), []
    for run in runs:
        name = "" if run.optimizer in seen else f"{_label(run.optimizer)} lr={run.lr:g}"
        seen.add(run.optimizer)
        curves.append((name, values(run), COLORS.get(run.optimizer)))
    return pictures.epoch_curves(title, label, curves, y_scale=scale)


def _ranking(ranking, metric: str) -> Figure:
    finite = [r for r in ranking if math.isfinite(r.metric_mean)]
    y_range = None
    if finite:
        # Bars from 0 would hide 0.953 against 0.969: zoom to where the means lie.
        low = min(r.metric_mean - r.metric_std for r in finite)
        high = max(r.metric_mean + r.metric_std for r in finite)
        pad = max(0.1 * (high - low), 1e-3 * max(abs(low), abs(high), 1e-12))
        y_range = (low - pad, high + pad)
    return Figure(
        _("Ranking (mean ± std; axis zoomed)"),
        Axis(_("optimizer")),
        Axis(_(metric), range=y_range),
        [
            Series(
                "bar",
                "",
                x=[_label(r.optimizer) for r in ranking],
                y=[r.metric_mean for r in ranking],
                error=[r.metric_std if math.isfinite(r.metric_std) else 0.0 for r in ranking],
                color="#1f77b4",
                legend=False,
            )
        ],
        name="ranking",
    )


def training(r):
    specs = [
        _runs(
            r.runs,
            lambda run: run.train_loss,
            _("Training loss (each seed)"),
            _("training loss"),
            "log",
        ),
        _runs(r.runs, lambda run: run.val_metric, _(r.metric).capitalize(), _(r.metric), "linear"),
        _ranking(r.ranking, r.metric),
    ]
    # Wide enough for five optimizers' names under the ranking's bars; the table under
    # the figure gives each mean to four places.
    return [("training.png", panels(specs, width=4.6))]


def save(figures, folder):
    """Write each (name, figure) as a PNG under folder; returns the names."""
    names = []
    for name, fig in figures:
        fig.tight_layout()
        fig.savefig(folder / name, dpi=90)
        plt.close(fig)
        names.append(name)
    return names
