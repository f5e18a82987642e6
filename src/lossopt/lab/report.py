"""The lab's report: results.json (every number shown), timings.json (the
machine-dependent ones), the figures as PNG, and index.html tying them together.
The page has no external assets and opens offline.

Every sentence, heading and table header is a message of the lab's catalogs
(`lossopt lab --lang ko`): written in English with named placeholders, translated,
then filled with this run's numbers, so that a language is a catalog and the prose's
logic is written once."""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lossopt.lab import i18n, knobs, page
from lossopt.lab.i18n import N_, _, ngettext
from lossopt.lab.knobs import Knob
from lossopt.lab.optimizers import OPTIMIZERS
from lossopt.lab.page import Section

LABELS = {name: spec.label for name, spec in OPTIMIZERS.items()}

# Words the experiments return as data and the page shows: translated where shown.
SHOWN_WORDS = (
    N_("forward KL(P||Q)"),  # the two fits of the KL experiment
    N_("reverse KL(Q||P)"),
    N_("too small"),  # the learning-rate experiment's three rates
    N_("right"),
    N_("too large"),
    N_("validation accuracy"),  # the training experiment's metric
)


def _label(name: str) -> str:
    return page.label(name, LABELS)


_table, _p = page.table, page.p


def _num(value: float, digits: int = 3) -> str:
    """A number for prose: g-format, 'not finite' spelled out."""
    return f"{value:.{digits}g}" if math.isfinite(value) else _("not finite")


def _fixed(value: float, digits: int) -> str:
    """Fixed-point text without a '-0.00' for a value that rounds to zero."""
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _join(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c': lists in prose, never Python's brackets."""
    if len(items) == 1:
        return items[0]
    return _("{items} and {last}").format(items=", ".join(items[:-1]), last=items[-1])


def _sentences(*parts: str) -> str:
    """Sentences one after another, the empty ones left out."""
    return " ".join(part for part in parts if part)


def _describe_l1(r) -> str:
    fits = {f.loss: f for f in r.fits}
    l2 = fits["L2 (MSE)"]
    ratio_l2 = r.lecture["(11-1)^2"] / r.lecture["(3-1)^2"]
    ratio_l1 = r.lecture["|11-1|"] / r.lecture["|3-1|"]
    robust = [n for n in ("L1", "Huber") if fits[n].error < l2.error / 2]
    if robust:
        verdict = ngettext(
            "{names} stays closer to the true line ({distances} away, against L2's {l2:.2f}): "
            "they resist the outliers.",
            "{names} stay closer to the true line ({distances} away, against L2's {l2:.2f}): "
            "they resist the outliers.",
            len(robust),
        ).format(
            names=_join(robust),
            distances=_join([f"{n} {fits[n].error:.2f}" for n in robust]),
            l2=l2.error,
        )
    else:
        verdict = _(
            "In this run no loss stays within half of L2's distance from the true line "
            "(L2 {l2:.2f}, L1 {l1:.2f}, Huber {huber:.2f}), so the run does not show L1's "
            "robustness."
        ).format(l2=l2.error, l1=fits["L1"].error, huber=fits["Huber"].error)
    return (
        _p(
            _(
                "lossopt's losses reproduce the slide: |3 − 1| = {small_l1:g}, |11 − 1| = "
                "{large_l1:g}, while (3 − 1)² = {small_l2:g} and (11 − 1)² = {large_l2:g}: "
                "squaring makes the large error {ratio_l2:g} times as costly as the small one "
                "instead of {ratio_l1:g}."
            ).format(
                small_l1=r.lecture["|3-1|"],
                large_l1=r.lecture["|11-1|"],
                small_l2=r.lecture["(3-1)^2"],
                large_l2=r.lecture["(11-1)^2"],
                ratio_l2=ratio_l2,
                ratio_l1=ratio_l1,
            )
        )
        + _p(
            _(
                "A line fit to {points} points, {outliers} of them outliers, under each loss "
                "(true intercept {intercept:g}; L2's fit {l2_intercept}). {verdict}"
            ).format(
                points=len(r.x),
                outliers=sum(r.outlier),
                intercept=r.true_line[1],
                l2_intercept=_num(l2.intercept),
                verdict=verdict,
            )
        )
        + _table(
            [_("loss"), _("slope"), _("intercept"), _("distance from true line")],
            [[f.loss, f"{f.slope:.3f}", f"{f.intercept:.3f}", f"{f.error:.3f}"] for f in r.fits],
        )
    )


def _describe_entropy(r) -> str:
    peak = r.coin_p[r.coin_entropy.index(max(r.coin_entropy))]
    logits = ", ".join(f"{v:g}" for v in r.logits)
    soft = ", ".join(f"{v:.3f}" for v in r.softmax)
    best = min(range(len(r.cross_entropy)), key=r.cross_entropy.__getitem__)
    per_class = _join(
        [
            _("{loss:.3f} = −log {prob:.3f} if the true class is {c}").format(
                loss=loss, prob=prob, c=c
            )
            for c, (prob, loss) in enumerate(zip(r.softmax, r.cross_entropy, strict=True))
        ]
    )
    smoothed = _join(
        [
            _("{p:.3f} for ε = {eps}").format(p=p, eps=e)
            for e, p in r.best_p_true.items()
            if float(e) > 0
        ]
    )
    return (
        _p(
            _(
                "A coin's entropy is highest at P(heads) = {peak:g}: {highest:.3f} nats "
                "(log 2 = {log2:.3f}). A fair die has entropy {fair:.3f} nats; the die with five "
                "faces showing 1 has {loaded:.3f}, {share:.0%} of it: it is easier to predict."
            ).format(
                peak=peak,
                highest=max(r.coin_entropy),
                log2=math.log(2),
                fair=r.fair_die,
                loaded=r.loaded_die,
                share=r.loaded_die / r.fair_die,
            )
        )
        + _p(
            _(
                "Cross-entropy on logits first turns them into probabilities with softmax "
                "(torch's CrossEntropyLoss, and lossopt's cross_entropy, include it): logits "
                "({logits}) give ({softmax}). With a one-hot target the sum −Σ p log q keeps one "
                "term, −log of the softmax at the true class: {per_class}. The loss is smallest "
                "when the largest logit is the true class ({best}), and grows without bound as "
                "the true class's probability goes to 0."
            ).format(logits=logits, softmax=soft, per_class=per_class, best=best)
        )
        + _p(
            _(
                "An aside the lecture does not cover: with label smoothing ε over C = {classes} "
                "classes the target puts 1 − ε + ε/C on the true class, so the loss is lowest "
                "there, not at certainty: at {smoothed}."
            ).format(classes=r.classes, smoothed=smoothed)
        )
    )


def _pm(values: list[float]) -> str:
    """'90.6% ± 1.0' over the seeds: a mean and its standard deviation in points."""
    mean = sum(values) / len(values)
    std = (
        math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))
        if len(values) > 1
        else 0.0
    )
    return f"{mean:.1%} ± {100 * std:.1f}"


def _describe_class_weights(r) -> str:
    m = r.minority
    mean, std = r.minority_change
    changes = [w - p for p, w in zip(r.minority_plain, r.minority_weighted, strict=True)]
    up, down = sum(c > 0 for c in changes), sum(c < 0 for c in changes)
    if mean - std > 0:
        verdict = _("a rise larger than its spread over the seeds")
    elif mean + std < 0:
        verdict = _("a fall larger than its spread over the seeds")
    else:
        verdict = _(
            "a change within its spread over the seeds: on these runs the weights have no "
            "reliable effect on the rare digit's recall"
        )
    others = [w for k, w in enumerate(r.weights) if k != m]
    first = _p(
        _(
            "Digit {digit} keeps {kept} of its training examples, the others {low} to {high}. "
            "Class weights w_c = n/(C·n_c) (digit {digit}: {weight:.2f}, the others "
            "{others_low:.2f} to {others_high:.2f}) scale each example's loss by its class's "
            "weight. Over seeds {seeds}, each its own split and initialisation, they change digit "
            "{digit}'s validation recall by {change:+.1f} ± {spread:.1f} percentage points (mean "
            "± standard deviation; {counts}): {verdict}. Overall accuracy is {plain} without the "
            "weights and {weighted} with."
        ).format(
            digit=m,
            kept=r.train_counts[m],
            low=min(c for k, c in enumerate(r.train_counts) if k != m),
            high=max(r.train_counts),
            weight=r.weights[m],
            others_low=min(others),
            others_high=max(others),
            seeds=_join([str(s) for s in r.seeds]),
            change=100 * mean,
            spread=100 * std,
            counts=ngettext(
                "up on {up} seed, down on {down}", "up on {up} seeds, down on {down}", up
            ).format(up=up, down=down),
            verdict=verdict,
            plain=_pm(r.accuracy_plain),
            weighted=_pm(r.accuracy_weighted),
        )
    )
    share = r.kept / (r.kept + r.ignored)
    naive = r.loss_all_rows / r.loss_with_ignored if r.loss_with_ignored else math.nan
    same = math.isclose(r.loss_with_ignored, r.loss_kept_only, rel_tol=1e-6, abs_tol=1e-12)
    second = _p(
        _(
            "ignore_index: in a batch of {rows} validation rows, {ignored} labels are "
            "{ignore_index}. lossopt, as torch, averages over the {kept} kept rows only: "
            "{loss:.4g}{check}. The naive mean over all {rows} rows, each ignored one counted as "
            "0, is {naive_loss:.4g}, {naive:.3g} times as much ({kept}/{rows} = {share:.3g}): it "
            "would shrink the loss, and every gradient, as more labels go missing. The largest "
            "gradient on an ignored row's logits is {ignored_gradient:g}; a kept row's averages "
            "{kept_gradient:.3g}."
        ).format(
            rows=r.ignored + r.kept,
            ignored=r.ignored,
            ignore_index=r.ignore_index,
            kept=r.kept,
            loss=r.loss_with_ignored,
            check=" " + _("(the kept rows alone, computed apart, give the same)") if same else "",
            naive_loss=r.loss_all_rows,
            naive=naive,
            share=share,
            ignored_gradient=r.ignored_grad_max,
            kept_gradient=r.kept_grad_mean,
        )
    )
    return first + second


def _describe_kl(r) -> str:
    f, b = r.fits
    outcomes = ", ".join(f"{v:g}" for v in r.outcomes)
    compared = (
        _("equals H(P)") if r.gap_at_p == 0 else _("is {gap:.2g} above H(P)").format(gap=r.gap_at_p)
    )
    first = _p(
        _(
            "For P = ({outcomes}), H(P) = {entropy:.4f} nats. Along Q_t = softmax(t · log P) the "
            "cross-entropy H(P, Q_t) is lowest at t = {t:g}, where Q = P and it {compared}. Among "
            "{count} random Q the smallest H(P, Q) − H(P) = D_KL(P‖Q) is {smallest:.4f}: {bound}"
        ).format(
            outcomes=outcomes,
            entropy=r.entropy,
            t=r.t_at_min,
            compared=compared,
            count=r.random_q,
            smallest=r.random_min_gap,
            bound=_("never below 0.")
            if r.random_min_gap >= 0
            else _("below 0, against the bound."),
        )
    )
    low, high = r.constant_gap
    kl_min = r.ts[min(range(len(r.kl_along)), key=r.kl_along.__getitem__)]
    lowest = (
        _("both are lowest at t = {t:g}, where Q = P.").format(t=kl_min)
        if kl_min == r.t_at_min == 1
        else _("both are lowest at t = {kl:g} and t = {cross_entropy:g}.").format(
            kl=kl_min, cross_entropy=r.t_at_min
        )
    )
    constant = _p(
        _(
            "H(P) does not depend on Q. Along Q_t, H(P, Q_t) − D_KL(P‖Q_t) stays between "
            "{low:.6f} and {high:.6f}, H(P) itself, and over the {count} random Q the gradients "
            "of H(P, Q) and of D_KL(P‖Q) with respect to Q's logits differ by at most "
            "{gradient_gap:.2g}. So minimising the cross-entropy minimises the KL divergence: "
            "{lowest}"
        ).format(low=low, high=high, count=r.random_q, gradient_gap=r.gradient_gap, lowest=lowest)
    )
    shape = (
        _(
            "The forward fit spreads over both peaks (Q must cover wherever P has mass); the "
            "reverse fit locks onto one (Q is punished wherever P is small)."
        )
        if f.std > b.std
        else _("In this run the forward fit is not the wider one.")
    )
    second = _p(
        _(
            "P, two peaks, has std {p_std:.2f}. Minimising the forward KL(P‖Q) fits Q with mean "
            "{forward_mean} and std {forward_std:.2f}; minimising the reverse KL(Q‖P) gives mean "
            "{reverse_mean} and std {reverse_std:.2f}. {shape} Q is a Gaussian cut to the grid, "
            "so its std is computed from Q itself, not read off its σ parameter "
            "({forward_sigma} and {reverse_sigma})."
        ).format(
            p_std=r.p_std,
            forward_mean=_fixed(f.mean, 2),
            forward_std=f.std,
            reverse_mean=_fixed(b.mean, 2),
            reverse_std=b.std,
            shape=shape,
            forward_sigma=_num(f.sigma),
            reverse_sigma=_num(b.sigma),
        )
    )
    return (
        first
        + constant
        + second
        + _table(
            [_("fit by"), _("mean"), _("std of Q"), _("σ parameter"), "KL(P‖Q)", "KL(Q‖P)"],
            [
                [
                    _(x.direction),
                    _fixed(x.mean, 3),
                    f"{x.std:.3f}",
                    _num(x.sigma, 4),
                    f"{x.forward_kl:.4f}",
                    f"{x.reverse_kl:.4f}",
                ]
                for x in r.fits
            ],
        )
    )


def _triplet_sentence(t, margin: float) -> str:
    state = (
        _("the negative is at least a margin farther than the positive: loss 0")
        if t.loss == 0
        else _("the negative is not a margin farther than the positive: loss {loss:.3f}").format(
            loss=t.loss
        )
    )
    return _("d(a, p) = {d_ap:.4g}, d(a, n) = {d_an:.4g}, margin {margin:g}: {state}").format(
        d_ap=t.d_ap, d_an=t.d_an, margin=margin, state=state
    )


def _describe_triplet(r) -> str:
    tb, ta = r.triplet_before, r.triplet_after
    grew = r.spread_after / r.spread_before
    ratio = [t.d_an / t.d_ap if t.d_ap > 0 else math.inf for t in (tb, ta)]
    moved = (
        _(
            "The positive moved away from the anchor ({before:.3g} → {after:.3g}), yet the "
            "triplet got better"
        )
        if ta.d_ap > tb.d_ap
        else _(
            "The positive moved toward the anchor ({before:.3g} → {after:.3g}), yet the triplet "
            "got better"
        )
    ).format(before=tb.d_ap, after=ta.d_ap)
    return (
        _p(
            _(
                "The top panels show the loss's geometry on one triplet of validation digits: the "
                "anchor, a positive (the same digit, the farthest one before training) and a "
                "negative (another digit, the nearest one before training). The solid circle has "
                "radius d(a, p); the negative must lie outside the dashed one, d(a, p) + margin. "
                "Before training {before}; after, {after}."
            ).format(before=_triplet_sentence(tb, r.margin), after=_triplet_sentence(ta, r.margin))
        )
        + _p(
            _(
                "{moved}: the loss compares d(a, p) with d(a, n), not with a fixed ruler, and the "
                "whole embedding grew. Its points' root-mean-square distance from their centre "
                "went from {spread_before:.3g} to {spread_after:.3g}, {grew:.3g} times, since the "
                "margin is a fixed length and spreading everything out is one way to meet it. "
                "Measured in that spread, d(a, p) went from {ap_before:.3g} to {ap_after:.3g} and "
                "d(a, n) from {an_before:.3g} to {an_after:.3g}; the ratio d(a, n)/d(a, p) from "
                "{ratio_before} to {ratio_after}."
            ).format(
                moved=moved,
                spread_before=r.spread_before,
                spread_after=r.spread_after,
                grew=grew,
                ap_before=tb.d_ap / r.spread_before,
                ap_after=ta.d_ap / r.spread_after,
                an_before=tb.d_an / r.spread_before,
                an_after=ta.d_an / r.spread_after,
                ratio_before=_num(ratio[0]),
                ratio_after=_num(ratio[1]),
            )
        )
        + _p(
            _(
                "A small network maps each 8×8 digit to 2-D and is trained with "
                "batch_triplet_loss (mining '{mining}', margin {margin:g}) for {steps} steps; the "
                "loss goes from {first:.3f} to {last:.3f}. On one scale, the bottom panels show "
                "the embedding before and after: 1-nearest-neighbour validation accuracy goes "
                "from {knn_before:.1%} to {knn_after:.1%}."
            ).format(
                mining=r.mining,
                margin=r.margin,
                steps=len(r.loss),
                first=r.loss[0],
                last=r.loss[-1],
                knn_before=r.knn_before,
                knn_after=r.knn_after,
            )
        )
    )


def _describe_derivative(r) -> str:
    t0, tmin = r.tangents[0], r.tangents[1]
    best = min(range(len(r.hs)), key=lambda i: r.forward_error[i])
    exact = [h for h, e in zip(r.hs, r.central_error, strict=True) if e == 0]
    if exact:
        # L is a parabola in w, and a parabola's central difference has no truncation error.
        central = _(
            "The central difference (L(w+h) − L(w−h))/2h is exact at h = {h:g}: L is a "
            "parabola in w, whose central difference has no truncation error."
        ).format(h=exact[-1])
    else:
        central = _("The central difference's error falls to {error:.2g}.").format(
            error=min(r.central_error)
        )
    return _p(
        _(
            "L(w) = mse_loss(w·x, y) on {points} grid points. At w = {w:g} autograd gives "
            "dL/dw = {autograd:.6f}; the slide's difference quotient with h = {h:g} gives "
            "{quotient:.6f}. At the minimum w* = Σxy/Σx² = {w_star:.4f} the slope is "
            "{slope:.2g}: flat, as the lecture says of a minimum."
        ).format(
            points=len(r.ws),
            w=t0.w,
            autograd=t0.autograd,
            h=r.h,
            quotient=t0.forward_difference,
            w_star=r.w_star,
            slope=tmin.autograd,
        )
    ) + _p(
        _(
            "Shrinking h makes the quotient approach the derivative only so far: its error is "
            "smallest, {best_error:.2g}, at h = {best_h:.2g}, and grows for smaller h "
            "({small_error:.2g} at h = {small_h:g}) as float64 rounding takes over. {central} "
            "Autograd has no h at all."
        ).format(
            best_error=r.forward_error[best],
            best_h=r.hs[best],
            small_error=r.forward_error[0],
            small_h=r.hs[0],
            central=central,
        )
    )


def _first_below(curve: list[float], level: float) -> int | None:
    return next((i for i, v in enumerate(curve) if v <= level), None)


def _describe_gd_vs_sgd(r) -> str:
    gd, sgd = r.gd_loss, r.sgd_loss
    done = [
        _("{name} stopped after {steps} steps (the loss left the finite numbers)").format(
            name=name, steps=len(c) - 1
        )
        for name, c in (("GD", gd), ("SGD", sgd))
        if len(c) - 1 < r.steps
    ]
    seen = (len(sgd) - 1) * r.batch_size
    k = min(len(gd) - 1, max(1, round(seen / r.train_size)))
    per_step = _(
        "After {steps} steps at lr {lr:g}, GD's loss on the whole training set is {gd} and "
        "SGD's {sgd}."
    ).format(steps=r.steps, lr=r.lr, gd=_num(gd[-1], 4), sgd=_num(sgd[-1], 4))
    ahead = _("SGD is ahead") if sgd[-1] < gd[k] else _("SGD is not ahead")
    noise = r.sgd_gradient_noise
    mean_noise = sum(noise) / len(noise) if noise else float("nan")
    work = r.train_size / r.batch_size
    time_ratio = r.seconds_per_gd_step / r.seconds_per_sgd_step
    times = {
        "gd_ms": 1000 * r.seconds_per_gd_step,
        "sgd_ms": 1000 * r.seconds_per_sgd_step,
        "ratio": time_ratio,
        "work": work,
    }
    timing = (
        _(
            "On this machine a GD step took {gd_ms:.2f} ms and an SGD step {sgd_ms:.2f} ms: "
            "{ratio:.1f} times the time for {work:.0f} times the examples, since fixed per-step "
            "costs weigh heavily on a model this small."
        )
        if time_ratio < work / 4
        else _(
            "On this machine a GD step took {gd_ms:.2f} ms and an SGD step {sgd_ms:.2f} ms: "
            "{ratio:.1f} times the time for {work:.0f} times the examples."
        )
    ).format(**times)
    return _p(
        _sentences(
            per_step,
            _join(done) + "." if done else "",
            ngettext(
                "A GD step reads all {train} training examples, an SGD step {batch}: SGD's "
                "{sgd_steps} steps read {seen} examples, about GD's first {k} step, where GD's "
                "loss was {gd_then}: per example read, {ahead} ({sgd_last}).",
                "A GD step reads all {train} training examples, an SGD step {batch}: SGD's "
                "{sgd_steps} steps read {seen} examples, about GD's first {k} steps, where GD's "
                "loss was {gd_then}: per example read, {ahead} ({sgd_last}).",
                k,
            ).format(
                train=r.train_size,
                batch=r.batch_size,
                sgd_steps=len(sgd) - 1,
                seen=seen,
                k=k,
                gd_then=_num(gd[k], 4),
                ahead=ahead,
                sgd_last=_num(sgd[-1], 4),
            ),
        )
    ) + _p(
        _sentences(
            _(
                "The price is noise: a mini-batch gradient differs from the full one by {noise} "
                "times the full gradient's length on average, and SGD's whole-set loss went up "
                "after {sgd_rises} of its steps, GD's after {gd_rises}."
            ).format(noise=_num(mean_noise), sgd_rises=r.sgd_rises, gd_rises=r.gd_rises),
            timing,
        )
    )


def _outcome(path) -> str:
    start, end = path.values[0], path.values[-1]
    steps = len(path.values) - 1
    if path.diverged:
        return _(
            "grew to {end:.3g} and a coordinate passed 10⁶ after {steps} steps: it diverges"
        ).format(end=end, steps=steps)
    if end > start:
        return _("grew from {start:.3g} to {end:.3g} in {steps} steps: it diverges").format(
            start=start, end=end, steps=steps
        )
    return _(
        "fell from {start:.3g} to {end:.3g} in {steps} steps ({share:.2g}% of the start)"
    ).format(start=start, end=end, steps=steps, share=100 * end / start)


def _describe_lr(r) -> str:
    runs = " ".join(
        _("At lr {lr:g} ({label}), f {outcome}.").format(
            lr=p.lr, label=_(label), outcome=_outcome(p)
        )
        for label, p in zip(r.labels, r.paths, strict=True)
    )
    return _p(
        _(
            "Plain SGD on x²/20 + y² from the same start. {runs} The steepest direction has "
            "curvature {curvature:g}, so a rate above 2/{curvature:g} = {limit:g} overshoots by "
            "more than it corrects at every step, and one far below it creeps along the flat "
            "direction."
        ).format(runs=runs, curvature=r.curvature, limit=2 / r.curvature)
    ) + _p(
        _(
            "The range test raises the learning rate exponentially during one short run of the "
            "digits network and records the loss: lowest at lr {lowest:.3g}, rising beyond it. A "
            "tenth of that, {suggested:.3g}, is a safe start."
        ).format(lowest=r.range_test.lr_at_minimum, suggested=r.range_test.suggested_lr)
    )


def _momentum_against_sgd(r, s, m) -> str:
    """SGD against Momentum, fairly: crossings, where each ends, the effective steps,
    Momentum at SGD's effective step, and the factor each shrinks the error by."""
    smoother = m.crossings < s.crossings
    crossings = (
        _(
            "SGD crosses the valley floor y = 0 {sgd} times, Momentum {momentum_crossings} times: "
            "its velocity averages out the alternating y-gradient and keeps the steady "
            "x-gradient, and its path is {momentum_length:.3g} long against SGD's {sgd_length:.3g}."
        )
        if smoother
        else _(
            "SGD crosses the valley floor y = 0 {sgd} times, Momentum {momentum_crossings} times: "
            "at these rates momentum does not smooth the path."
        )
    ).format(
        sgd=s.crossings,
        momentum_crossings=m.crossings,
        momentum_length=sum(m.step_lengths),
        sgd_length=sum(s.step_lengths),
    )
    if s.values[-1] < m.values[-1]:
        ends = _("Yet SGD ends lower") if smoother else _("SGD ends lower")
    else:
        ends = _("Momentum ends lower")
    steps = _(
        "{ends} (f {sgd} against {momentum_f}), and the two do not take the same step: on a "
        "steady slope Momentum's velocity builds up to 1/(1 − α) steps' worth, so at η = {lr:g} "
        "and α = {alpha:g} its effective step is η/(1 − α) = {effective:.3g}, against SGD's "
        "{sgd_effective:.3g}."
    ).format(
        ends=ends,
        sgd=_num(s.values[-1]),
        momentum_f=_num(m.values[-1]),
        lr=m.lr,
        alpha=m.momentum,
        effective=m.effective_lr,
        sgd_effective=s.effective_lr,
    )
    matched = ""
    if r.matched is not None and not r.matched.diverged and not s.diverged:
        q = r.matched
        matched = (
            _(
                "At SGD's effective step (η = {lr:.3g}, η/(1 − α) = {effective:.3g}) Momentum "
                "ends at f {value}, still above SGD's, crossing y = 0 {crossings} times."
            )
            if q.values[-1] > s.values[-1]
            else _(
                "At SGD's effective step (η = {lr:.3g}, η/(1 − α) = {effective:.3g}) Momentum "
                "ends at f {value}, below SGD's, crossing y = 0 {crossings} times."
            )
        ).format(lr=q.lr, effective=q.effective_lr, value=_num(q.values[-1]), crossings=q.crossings)
    factors = verdict = ""
    if s.contraction and m.contraction and not s.diverged and not m.diverged:
        (sx, sy), (mx, my) = s.contraction, m.contraction
        slow_s, slow_m = max(sx, sy), max(mx, my)
        low, high = r.curvatures
        heavy = math.isclose(slow_m, math.sqrt(m.momentum), rel_tol=1e-9)
        factors = (
            _(
                "Per step, SGD shrinks the distance to the minimum by a factor {sgd_x:.3g} along "
                "x (curvature {low:g}) and {sgd_y:.3g} along y (curvature {high:g}); Momentum by "
                "{momentum_x:.3g} and {momentum_y:.3g} (= √α: the heavy ball overshoots and "
                "swings back)."
            )
            if heavy
            else _(
                "Per step, SGD shrinks the distance to the minimum by a factor {sgd_x:.3g} along "
                "x (curvature {low:g}) and {sgd_y:.3g} along y (curvature {high:g}); Momentum by "
                "{momentum_x:.3g} and {momentum_y:.3g}."
            )
        ).format(sgd_x=sx, sgd_y=sy, low=low, high=high, momentum_x=mx, momentum_y=my)
        if slow_s < slow_m:
            verdict = _(
                "Over {steps} steps the slower factor decides ({sgd:.3g}^{steps} = "
                "{sgd_power:.2g} against {momentum_factor:.3g}^{steps} = {momentum_power:.2g}): at "
                "α = {alpha:g} Momentum buys a smooth path, not a faster one here."
            ).format(
                steps=r.steps,
                sgd=slow_s,
                sgd_power=slow_s**r.steps,
                momentum_factor=slow_m,
                momentum_power=slow_m**r.steps,
                alpha=m.momentum,
            )
        else:
            verdict = _("Momentum's slower factor is the smaller: it also converges faster.")
    return _p(_sentences(crossings, steps, matched, factors, verdict))


def _describe_paths(r) -> str:
    paths = {p.optimizer: p for p in r.paths}
    start = ", ".join(f"{v:g}" for v in r.start)
    low, high = r.curvatures
    out = _p(
        _(
            "Each optimizer starts at ({start}) and takes {steps} steps on {formula} at one fixed "
            "learning rate (in each panel's title). The curvature is {low:g} along x and "
            "{high:g} along y: the surface is {ratio:.3g} times flatter along x, so the gradient "
            "points mostly across the valley."
        ).format(
            start=start, steps=r.steps, formula=r.formula, low=low, high=high, ratio=high / low
        )
    )
    if "sgd" in paths and "momentum" in paths:
        out += _momentum_against_sgd(r, paths["sgd"], paths["momentum"])
    if "adagrad" in paths and paths["adagrad"].step_lengths:
        lengths = paths["adagrad"].step_lengths
        shrinking = sum(1 for a, b in zip(lengths, lengths[1:], strict=False) if b < a)
        later = len(lengths) - 1
        which = (
            _("each of its {later} later steps is shorter than the one before").format(later=later)
            if shrinking == later
            else _("{shrinking} of its {later} later steps are shorter than the one before").format(
                shrinking=shrinking, later=later
            )
        )
        out += _p(
            _(
                "AdaGrad's steps go from {first:.3g} to {last:.3g} ({which}): its accumulator h "
                "only grows."
            ).format(first=lengths[0], last=lengths[-1], which=which)
        )
    shown = list(r.paths) + ([r.matched] if r.matched is not None else [])
    rows = [
        [
            _("{optimizer} at SGD's effective step").format(optimizer=_label(p.optimizer))
            if p is r.matched
            else _label(p.optimizer),
            f"{p.lr:.3g}",
            f"{p.effective_lr:.3g}" if p.optimizer in ("sgd", "momentum") else _("adaptive"),
            p.crossings,
            f"{sum(p.step_lengths):.3g}",
            f"({p.points[-1][0]:.3g}, {p.points[-1][1]:.3g})",
            _("{value} (diverged)").format(value=f"{p.values[-1]:.3g}")
            if p.diverged
            else f"{p.values[-1]:.3g}",
        ]
        for p in shown
    ]
    return out + _table(
        [
            _("optimizer"),
            _("lr η"),
            _("effective step η/(1 − α)"),
            _("crossings of y = 0"),
            _("path length"),
            _("last point"),
            _("last f"),
        ],
        rows,
    )


def _describe_momentum(r) -> str:
    constant, drop = r.runs
    lecture = [math.dist(p, q) for p, q in zip(drop.lecture, drop.lecture[1:], strict=False)]
    torch_ = [math.dist(p, q) for p, q in zip(drop.torch_form, drop.torch_form[1:], strict=False)]
    i = r.drop_step - 1  # index of the first step at the lowered rate
    after = ""
    if 0 < i < len(lecture):
        explained = torch_[i] < torch_[i - 1] / 5 and lecture[i] > lecture[i - 1] / 2
        after = (
            _(
                "At the first step at the lowered rate, the lecture's form moves {lecture:.3g} "
                "(after {lecture_before:.3g}) and torch's {torch:.3g} (after {torch_before:.3g}): "
                "torch's velocity b holds raw gradients, so the new rate scales all of it at "
                "once, while the lecture's v already holds each old step's rate and lets it fade "
                "by α per step."
            )
            if explained
            else _(
                "At the first step at the lowered rate, the lecture's form moves {lecture:.3g} "
                "(after {lecture_before:.3g}) and torch's {torch:.3g} (after {torch_before:.3g})."
            )
        ).format(
            lecture=lecture[i],
            lecture_before=lecture[i - 1],
            torch=torch_[i],
            torch_before=torch_[i - 1],
        )
    same = (
        _("v = −ηb at every step, up to float64 rounding")
        if constant.max_relative_difference < 1e-12
        else _("a relative difference of {difference:.2g}").format(
            difference=constant.max_relative_difference
        )
    )
    return _p(
        _(
            "The lecture writes momentum as v ← αv − η∂L/∂W, W ← W + v; torch (and lossopt) as "
            "b ← μb + g, W ← W − ηb. With α = μ = {momentum:g} and a constant η = {lr:g} for "
            "{steps} steps on the lecture's surface, the two paths differ by at most "
            "{difference:.2g}: {same}."
        ).format(
            momentum=r.momentum,
            lr=constant.lrs[0],
            steps=len(constant.lrs),
            difference=constant.max_difference,
            same=same,
        )
    ) + _p(
        _sentences(
            _(
                "Dividing η by 10 from step {step}, as a learning-rate schedule does, separates "
                "them by up to {difference:.3g}."
            ).format(step=r.drop_step, difference=drop.max_difference),
            after,
        )
    )


def _describe_adaptive(r) -> str:
    quarter = r.rmsprop[len(r.rmsprop) * 3 // 4 :]
    spread = (max(quarter) - min(quarter)) / max(quarter) if quarter else 0.0
    b1, b2 = r.adam_betas
    ratio = r.adam_uncorrected[0] / r.adam_corrected[0]
    (x0, y0), (x1, y1) = r.adagrad_elements[0], r.adagrad_elements[-1]
    gamma = r.rmsprop_alpha
    adagrad = _p(
        _(
            "AdaGrad's point is a rate per element: η/(√h + ε), with h each element's own sum of "
            "squared gradients. On the lecture's surface at η = {lr:g}, x (the flat direction, "
            "small gradients) gets a rate of {x_first:.3g} after the first step and y "
            "{y_first:.3g} ({ratio_first:.3g} times less); after {steps} steps {x_last:.3g} "
            "against {y_last:.3g} ({ratio_last:.3g} times). Elements whose gradients were large "
            "get the smaller rate, as the lecture says."
        ).format(
            lr=r.adagrad_lr,
            x_first=x0,
            y_first=y0,
            ratio_first=x0 / y0,
            steps=len(r.adagrad_elements),
            x_last=x1,
            y_last=y1,
            ratio_last=x1 / y1,
        )
    )
    shrink = _p(
        _(
            "Fed the same noisy gradients at lr {lr:g}, AdaGrad's effective learning rate falls "
            "from {first:.3g} to {last:.3g} after {steps} steps ({share:.1%} of its first), since "
            "h only grows. RMSProp's moving average (γ = {gamma:g}) forgets old gradients: its "
            "rate ends at {rmsprop:.3g}, {times:.1f} times AdaGrad's, and over its last {count} "
            "steps varies by {spread:.0%}."
        ).format(
            lr=r.lr,
            first=r.adagrad[0],
            last=r.adagrad[-1],
            steps=len(r.steps),
            share=r.adagrad[-1] / r.adagrad[0],
            gamma=gamma,
            rmsprop=r.rmsprop[-1],
            times=r.rmsprop[-1] / r.adagrad[-1],
            count=len(quarter),
            spread=spread,
        )
    )
    spike = _p(
        _(
            "RMSProp has no bias correction: G starts at 0, so after one step it holds only "
            "(1 − γ)g² and the first step is η/√(1 − γ) = {first:.3g} times η, whatever the "
            "gradient (measured: {measured:.3g} at η = {lr:g}). Adam keeps the same average of "
            "squares and divides it by 1 − β2ᵗ: its first step is {adam:.4f} times η. Without "
            "that correction Adam's first step would be {ratio:.3g} times the corrected one (m "
            "shrinks by 1 − β1 = {m_shrinks:.3g}, √v by √(1 − β2) = {v_shrinks:.3g}). The steps "
            "measured on lossopt's Adam differ from the corrected formula by at most {gap:.2g}."
        ).format(
            first=r.rmsprop_first_step / r.lr,
            measured=r.rmsprop_first_step,
            lr=r.lr,
            adam=r.adam_corrected[0] / r.lr,
            ratio=ratio,
            m_shrinks=1 - b1,
            v_shrinks=math.sqrt(1 - b2),
            gap=max(abs(a - c) for a, c in zip(r.adam_actual, r.adam_corrected, strict=True)),
        )
    )
    both = _p(
        _(
            "Adam = Momentum + RMSProp. On the same gradients, lossopt's Adam's m equals "
            "(1 − β1) times the buffer of Momentum at μ = β1 = {beta1:g} (largest relative "
            "difference {m_gap:.2g}), and its v equals RMSProp's G at γ = β2 = {beta2:g} "
            "({v_gap:.2g}): Momentum's direction divided by RMSProp's scale, with both averages "
            "corrected for their start at 0."
        ).format(beta1=b1, m_gap=r.adam_vs_momentum, beta2=b2, v_gap=r.adam_vs_rmsprop)
    )
    shown = [k for k, g in enumerate(r.eps_gradients) if g in (1e-2, 1e-4, 1e-6)]
    eps = _p(
        _(
            "Where ε sits: the lecture writes RMSProp's step as η g/√(G + ε), torch (and lossopt) "
            "as η g/(√G + ε), ε = {eps:g}. On a first step (G = (1 − γ)g²) at η = {lr:g} the two "
            "agree for large gradients and part below |g| ≈ √(ε/(1 − γ)) = {parting:.2g}: "
            "{cases}. Inside the root ε caps the rate at η/√ε for tiny gradients; outside it "
            "matters only when √G itself nears ε."
        ).format(
            eps=r.rmsprop_eps,
            lr=r.lr,
            parting=math.sqrt(r.rmsprop_eps / (1 - gamma)),
            cases=_join(
                [
                    _(
                        "at |g| = {g:g} the lecture's step is {inside:.3g} and torch's "
                        "{outside:.3g}"
                    ).format(g=r.eps_gradients[k], inside=r.eps_inside[k], outside=r.eps_outside[k])
                    for k in shown
                ]
            ),
        )
    )
    return adagrad + shrink + spike + both + eps


def _describe_training(r) -> str:
    if r.lr_source == "user":
        rates = _("every optimizer at the learning rate given by --lr, {lr:g}").format(
            lr=r.ranking[0].lr
        )
    else:
        used = {x.optimizer: x.lr for x in r.ranking}
        names = sorted(used, key=list(OPTIMIZERS).index)
        rates = _(
            "each optimizer at one fixed rate, the middle of the starting grid that 'lossopt lab "
            "compare' searches ({rates}), not torch's defaults"
        ).format(rates=", ".join(f"{_label(n)} {used[n]:g}" for n in names))
    top = r.ranking[0]
    close = [
        _label(x.optimizer)
        for x in r.ranking[1:]
        if math.isfinite(x.metric_mean)
        and top.metric_mean - x.metric_mean <= top.metric_std + x.metric_std
    ]
    spread = (
        ngettext(
            "{names} is within the seeds' spread of {best} (the means differ by less than the two "
            "standard deviations added): on these seeds that is no meaningful difference.",
            "{names} are within the seeds' spread of {best} (the means differ by less than the "
            "two standard deviations added): on these seeds that is no meaningful difference.",
            len(close),
        ).format(names=_join(close), best=_label(top.optimizer))
        if close
        else ""
    )
    return (
        _p(
            _sentences(
                _(
                    "A 64-64-10 network on scikit-learn's digits for {epochs} epochs, {rates}, "
                    "with seeds {seeds}. Ranked by {metric} (equal means share a place)."
                ).format(
                    epochs=r.epochs,
                    rates=rates,
                    seeds=_join([str(s) for s in r.seeds]),
                    metric=_(r.metric),
                ),
                spread,
            )
        )
        + _same_step(r)
        + _ranking_table(r.ranking, r.metric)
    )


def _same_step(r) -> str:
    """Momentum against SGD on the network: the same effective step or not, and what
    their scores then say."""
    found = {x.optimizer: x for x in r.ranking}
    if "sgd" not in found or "momentum" not in found:
        return ""
    s, m = found["sgd"], found["momentum"]
    alpha, effective = r.momentum["momentum"], r.effective_lrs["momentum"]
    same = math.isclose(effective, r.effective_lrs["sgd"], rel_tol=1e-9)
    gap = abs(s.metric_mean - m.metric_mean)
    within = gap <= s.metric_std + m.metric_std
    step = (
        _(
            "Momentum at lr {lr:g} with α = {alpha:g} takes an effective step η/(1 − α) = "
            "{lr:g}/(1 − {alpha:g}) = {effective:.3g}, the same as SGD's {sgd_lr:g}: the two move "
            "equally far on a steady slope and differ only in how the step is spread over time."
        )
        if same
        else _(
            "Momentum at lr {lr:g} with α = {alpha:g} takes an effective step η/(1 − α) = "
            "{lr:g}/(1 − {alpha:g}) = {effective:.3g}, against SGD's {sgd_effective:.3g}."
        )
    ).format(
        lr=m.lr,
        alpha=alpha,
        effective=effective,
        sgd_lr=s.lr,
        sgd_effective=r.effective_lrs["sgd"],
    )
    if within and same:
        scores = _(
            "Their means of {metric} differ by {gap:.4f}, within the seeds' spread: no surprise "
            "at the same effective step."
        )
    elif within:
        scores = _("Their means of {metric} differ by {gap:.4f}, within the seeds' spread.")
    else:
        scores = _(
            "Their means of {metric} differ by {gap:.4f}, more than the seeds' spread "
            "({sgd_std:.4f} and {momentum_std:.4f})."
        )
    return _p(
        _sentences(
            step,
            scores.format(
                metric=_(r.metric), gap=gap, sgd_std=s.metric_std, momentum_std=m.metric_std
            ),
        )
    )


def places(values: list[str]) -> list[int]:
    """Competition ranking of already sorted, displayed values: equal ones share a place."""
    out = []
    for i, value in enumerate(values):
        out.append(out[-1] if i and value == values[i - 1] else i + 1)
    return out


def _ranking_table(ranking, metric) -> str:
    shown = [f"{x.metric_mean:.4f} ± {x.metric_std:.4f}" for x in ranking]
    means = [f"{x.metric_mean:.4f}" for x in ranking]
    ranks = places(means)
    tied = {p for p in ranks if ranks.count(p) > 1}
    rows = [
        [
            f"{place}=" if place in tied else place,
            _label(x.optimizer),
            f"{x.lr:g}",
            text,
            _("{seconds:.2f} s").format(seconds=x.seconds_mean),
        ]
        for place, x, text in zip(ranks, ranking, shown, strict=True)
    ]
    return _table(
        [_("rank"), _("optimizer"), "lr", _(metric), _("time per run (this machine)")], rows
    )


def _drawn_by(name: str) -> Callable[[Any], list]:
    """plots.<name>, imported only when a figure is drawn: the prose, the section
    titles and `lossopt lab --help` never load the plotting stack."""

    def draw(result: Any) -> list:
        from lossopt.lab import plots

        return getattr(plots, name)(result)

    return draw


# The lecture's order; each section's number is its place here, never typed. Titles, and
# the equations' words (never their symbols), are translated where the page shows them.
SECTIONS: dict[str, Section] = {
    "l1-vs-l2": Section(
        N_("L1 against L2"),
        (
            "l<sub>n</sub> = |x<sub>n</sub> − y<sub>n</sub>| (L1)",
            "l<sub>n</sub> = (x<sub>n</sub> − y<sub>n</sub>)² (L2)",
        ),
        _describe_l1,
        _drawn_by("l1_vs_l2"),
    ),
    "entropy": Section(
        N_("Entropy, softmax and cross-entropy"),
        (
            "H(P) = −Σ<sub>x</sub> P(x) log P(x)",
            "softmax(x)<sub>c</sub> = e<sup>x<sub>c</sub></sup> / Σ<sub>k</sub> e<sup>x<sub>k</sub></sup>",
            "H(p, q) = −Σ<sub>c</sub> p(y<sub>c</sub>) log q(y<sub>c</sub>)",
        ),
        _describe_entropy,
        _drawn_by("entropy"),
    ),
    "class-weights": Section(
        N_("Class weights and ignore_index in cross-entropy"),
        (
            "l<sub>n</sub> = −w<sub>y<sub>n</sub></sub> log softmax(x<sub>n</sub>)<sub>y<sub>n</sub></sub>",
            N_(
                "mean = Σ<sub>n kept</sub> l<sub>n</sub> / Σ<sub>n kept</sub> "
                "w<sub>y<sub>n</sub></sub>, kept: y<sub>n</sub> ≠ ignore_index"
            ),
        ),
        _describe_class_weights,
        _drawn_by("class_weights"),
    ),
    "kl": Section(
        N_("KL divergence: H(P, Q) ≥ H(P), and it is not symmetric"),
        (
            "D<sub>KL</sub>(P‖Q) = Σ P(x) log(P(x)/Q(x))",
            "D<sub>KL</sub>(P‖Q) = H(P, Q) − H(P) ≥ 0",
        ),
        _describe_kl,
        _drawn_by("kl_asymmetry"),
    ),
    "triplet": Section(
        N_("Triplet margin loss"),
        ("l = max(d(a, p) − d(a, n) + margin, 0)",),
        _describe_triplet,
        _drawn_by("triplet"),
    ),
    "derivative": Section(
        N_("The derivative is a slope"),
        ("df/dx = lim<sub>h→0</sub> (f(x + h) − f(x)) / h",),
        _describe_derivative,
        _drawn_by("derivative"),
    ),
    "gd-vs-sgd": Section(
        N_("Gradient descent against mini-batch SGD"),
        (N_("W ← W − η ∂L/∂W, the gradient over all examples or over a mini-batch"),),
        _describe_gd_vs_sgd,
        _drawn_by("gd_vs_sgd"),
    ),
    "learning-rate": Section(
        N_("The learning rate"),
        (N_("W ← W − η ∂L/∂W: η decides how far"),),
        _describe_lr,
        _drawn_by("learning_rate"),
    ),
    "paths": Section(
        N_("Optimizer paths on the lecture's surface"),
        (
            "f(x, y) = x²/20 + y²",
            N_("Momentum's step on a steady slope: η/(1 − α) times the gradient"),
        ),
        _describe_paths,
        _drawn_by("optimizer_paths"),
    ),
    "momentum": Section(
        N_("Momentum: the lecture's form and torch's"),
        (
            N_("v ← αv − η ∂L/∂W, W ← W + v (the lecture)"),
            "b ← μb + g, W ← W − ηb (torch)",
        ),
        _describe_momentum,
        _drawn_by("momentum_forms"),
    ),
    "adaptive": Section(
        N_("Adaptive step sizes"),
        (
            "h ← h + g², W ← W − η g / √h (AdaGrad)",
            "G ← γG + (1 − γ)g², W ← W − η g / √(G + ε) (RMSProp)",
            "m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g² (Adam)",
            "m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ), W ← W − η m̂/(√v̂ + ε)",
        ),
        _describe_adaptive,
        _drawn_by("adaptive_steps"),
    ),
    "training": Section(
        N_("Training a real model"),
        (N_("try several optimizers: Adam or RMSProp usually does well"),),
        _describe_training,
        _drawn_by("training"),
    ),
}


def _seed(meta: Mapping[str, Any]) -> int:
    return meta.get("seed", 0)


def _triplet_at(r, meta) -> dict[str, Any]:
    t = r.triplet_before  # the hard triplet, to the live sliders' precision
    (ax, ay), (px, py), (nx, ny) = t.anchor, t.positive, t.negative
    points = {"ax": ax, "ay": ay, "px": px, "py": py, "nx": nx, "ny": ny}
    return {**{k: round(v, 2) for k, v in points.items()}, "margin": r.margin}


def _paths_at(r, meta) -> dict[str, Any]:
    values: dict[str, Any] = {
        "optimizers": ",".join(p.optimizer for p in r.paths),
        "x0": r.start[0],
        "y0": r.start[1],
        "steps": r.steps,
    }
    for p in r.paths:
        values[f"lr-{p.optimizer}"] = p.lr
        if p.momentum:
            values["momentum"] = p.momentum
    return values


def _lr_at(r, meta) -> dict[str, Any]:
    values = {f"lr-{label.split()[-1]}": p.lr for label, p in zip(r.labels, r.paths, strict=True)}
    x0, y0 = r.paths[0].points[0]
    return {**values, "x0": x0, "y0": y0, "steps": len(r.paths[0].values) - 1}


# Each section's explorable in the live lab, and the settings of this run in its
# knobs' names (a knob whose range the run left is given its own default there).
LIVE: dict[str, tuple[str, Callable[[Any, Mapping[str, Any]], dict[str, Any]]]] = {
    "l1-vs-l2": ("regression", lambda r, m: {"outliers": sum(r.outlier), "seed": _seed(m)}),
    "entropy": ("softmax", lambda r, m: {f"z{k}": v for k, v in enumerate(r.logits)}),
    "class-weights": ("softmax", lambda r, m: {}),
    "kl": ("kl", lambda r, m: {}),
    "triplet": ("triplet", _triplet_at),
    "derivative": (
        "derivative",
        lambda r, m: {"h": r.h, "w": r.tangents[0].w, "seed": _seed(m)},
    ),
    "gd-vs-sgd": (
        "gd-vs-sgd",
        lambda r, m: {"batch-size": r.batch_size, "lr": r.lr, "steps": r.steps, "seed": _seed(m)},
    ),
    "learning-rate": ("learning-rate", _lr_at),
    "paths": ("paths", _paths_at),
    "momentum": (
        "paths",
        lambda r, m: {
            "optimizers": "momentum",
            "lr-momentum": r.runs[0].lrs[0],
            "momentum": r.momentum,
            "steps": len(r.runs[0].lrs),
        },
    ),
    "adaptive": (
        "adaptive",
        lambda r, m: {
            "lr": r.lr,
            "gamma": r.rmsprop_alpha,
            "beta1": r.adam_betas[0],
            "beta2": r.adam_betas[1],
            "steps": len(r.steps),
            "seed": _seed(m),
        },
    ),
    "training": (
        "training",
        lambda r, m: {
            "optimizer": r.ranking[0].optimizer,
            "lr": r.ranking[0].lr,
            "epochs": r.epochs,
            "seed": _seed(m),
        },
    ),
}


def _accepted(controls: Sequence[Knob], values: Mapping[str, Any]) -> dict[str, Any]:
    """The values the live lab's knobs take; one outside a knob's range is left out."""
    by_name = {k.name: k for k in controls}
    kept = {}
    for name, value in values.items():
        if name in by_name:
            try:
                by_name[name].parse(value)
            except ValueError:
                continue
            kept[name] = value
    return kept


def try_it(
    name: str, result: Any, meta: Mapping[str, Any], live: Mapping[str, Sequence[Knob]]
) -> str:
    """The line under a figure: this run's settings in the live lab (when it has the
    explorable; live maps its names to their knobs), and the command that redraws it."""
    flags = f" --seed {_seed(meta)}"
    if meta.get("optimizers") and meta["optimizers"] != ",".join(OPTIMIZERS):
        flags += f" --optimizers {meta['optimizers']}"
    for key in ("lr", "steps"):
        if meta.get(key) is not None:
            flags += f" --{key} {meta[key]}"
    command = f"lossopt lab {name}{flags}" + (" --quick" if meta.get("quick") else "")
    # The message is escaped, then filled with the HTML of the command and the link
    redraw = _html(_("redraw this section with {command}")).format(
        command=f"<code class='cli'>{html.escape(command)}</code>"
    )
    explorable, settings = LIVE.get(name, (None, None))
    if explorable not in live:
        line = _html(_("Try it: {redraw}.")).format(redraw=redraw)
        return f"<p class='try'>{line}</p>"
    knob_list = live[explorable]
    url = knobs.live_url(explorable, knob_list, _accepted(knob_list, settings(result, meta)))
    line = _html(_("Try it: run {serve} and open {address}, or {redraw}.")).format(
        serve="<code>lossopt lab serve</code>",
        address=f"<a class='live' href='{html.escape(url, quote=True)}'>{html.escape(url)}</a>",
        redraw=redraw,
    )
    return f"<p class='try'>{line}</p>"


def _html(message: str) -> str:
    """A translated message as HTML text, its {placeholders} kept for .format."""
    return html.escape(message, quote=False)


def _plain(value: Any) -> Any:
    """JSON-ready: dataclasses as dicts, non-finite floats as null."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def split_timings(value: Any, path: str = "") -> tuple[Any, dict[str, float]]:
    """Remove every wall-clock field (named seconds*) so that the same seed gives
    the same results.json; return them apart, by their path."""
    timings: dict[str, float] = {}
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            if key.startswith("seconds"):
                timings[f"{path}.{key}".lstrip(".")] = item
            else:
                kept[key], inner = split_timings(item, f"{path}.{key}")
                timings.update(inner)
        return kept, timings
    if isinstance(value, list):
        items = []
        for i, item in enumerate(value):
            kept, inner = split_timings(item, f"{path}[{i}]")
            items.append(kept)
            timings.update(inner)
        return items, timings
    return value, timings


INTRO = N_(
    "Every idea of the lecture on losses and optimizers, shown on real runs of lossopt's own "
    "losses and optimizers."
)
HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")


def write(
    results: dict[str, Any],
    folder: Path,
    meta: dict[str, Any],
    *,
    sections: Mapping[str, Section] = SECTIONS,
    numbered: bool = True,
    try_lines: bool = True,
    live: Mapping[str, Sequence[Knob]] | None = None,
    title: str = "lossopt lab",
    intro: str | None = None,
) -> Path:
    """Write the report of results (section name -> experiment result) into folder.

    Each result is shown by sections[name]; with numbered, a section's number is
    its place in sections (the lecture's order, whichever sections ran). A page of
    more than one section opens with a table of contents. With try_lines, each
    figure has its "try it" line: the command that redraws it and, for the
    explorables live names (name -> its knobs), the live lab's address. The page speaks
    the lab's language (i18n); one with Korean in it carries the font for its characters."""
    from lossopt.lab import plots

    folder.mkdir(parents=True, exist_ok=True)
    plain, timings = split_timings(_plain(results))
    (folder / "results.json").write_text(
        json.dumps({"meta": meta, "results": plain}, indent=1, sort_keys=True)
    )
    (folder / "timings.json").write_text(json.dumps(timings, indent=1, sort_keys=True))
    order = list(sections)
    titles = {name: _(sections[name].title) for name in results}
    headings = {
        name: f"{order.index(name) + 1}. {titles[name]}" if numbered else titles[name]
        for name in results
    }
    parts = []
    for name, result in results.items():
        section = sections[name]
        images = plots.save(section.draw(result), folder)
        figures = "".join(
            f'<img src="{html.escape(img)}" alt="{html.escape(titles[name])}">' for img in images
        )
        shown = tuple(_(line) for line in section.equations)  # the words; the symbols stay
        parts.append(
            f'<section id="{html.escape(name, quote=True)}"><h2>{html.escape(headings[name])}</h2>'
            f"{page.equations(shown)}{figures}"
            f"{try_it(name, result, meta, live or {}) if try_lines else ''}{section.describe(result)}</section>"
        )
    contents = page.contents(list(headings.items()), _("Contents")) if len(results) > 1 else ""
    options = ", ".join(f"{k}={v}" for k, v in meta.items())
    numbers = _(
        "Every number on this page is in results.json; times, which depend on the machine, are "
        "in timings.json."
    )
    body = (
        f"<h1>{html.escape(title)}</h1><p>{html.escape(_(INTRO) if intro is None else intro)}</p>"
        f"<p class='meta'>{html.escape(options)}. {html.escape(numbers)}</p>"
        + contents
        + "".join(parts)
    )
    style = page.STYLE
    if HANGUL.search(body):  # its glyphs travel with the page: the reader may have no such font
        from lossopt.lab import fonts

        style += f"{fonts.embed(folder, body)}\nbody{{font-family:{fonts.css_family()}}}\n"
    text = (
        f"<!doctype html><html lang='{i18n.get_language()}'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{style}</style></head><body>"
        + body
        + "</body></html>"
    )
    index = folder / "index.html"
    index.write_text(text, encoding="utf-8")
    return index
