"""The lab's report: results.json (every number shown), timings.json (the
machine-dependent ones), the figures as PNG, and index.html tying them together.
The page has no external assets and opens offline."""

from __future__ import annotations

import dataclasses
import html
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lossopt.lab import knobs, page
from lossopt.lab.knobs import Knob
from lossopt.lab.optimizers import OPTIMIZERS
from lossopt.lab.page import Section

LABELS = {name: spec.label for name, spec in OPTIMIZERS.items()}


def _label(name: str) -> str:
    return page.label(name, LABELS)


_table, _p = page.table, page.p


def _num(value: float, digits: int = 3) -> str:
    """A number for prose: g-format, 'not finite' spelled out."""
    return f"{value:.{digits}g}" if math.isfinite(value) else "not finite"


def _fixed(value: float, digits: int) -> str:
    """Fixed-point text without a '-0.00' for a value that rounds to zero."""
    text = f"{value:.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def _join(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c': lists in prose, never Python's brackets."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _describe_l1(r) -> str:
    fits = {f.loss: f for f in r.fits}
    l2 = fits["L2 (MSE)"]
    ratio_l2 = r.lecture["(11-1)^2"] / r.lecture["(3-1)^2"]
    ratio_l1 = r.lecture["|11-1|"] / r.lecture["|3-1|"]
    robust = [n for n in ("L1", "Huber") if fits[n].error < l2.error / 2]
    if robust:
        verdict = (
            f"{_join(robust)} stay{'s' if len(robust) == 1 else ''} closer to the true line "
            f"({_join([f'{n} {fits[n].error:.2f}' for n in robust])} away, against L2's "
            f"{l2.error:.2f}): they resist the outliers."
        )
    else:
        verdict = (
            "In this run no loss stays within half of L2's distance from the true line "
            f"(L2 {l2.error:.2f}, L1 {fits['L1'].error:.2f}, Huber {fits['Huber'].error:.2f}), "
            "so the run does not show L1's robustness."
        )
    return (
        _p(
            f"lossopt's losses reproduce the slide: |3 − 1| = {r.lecture['|3-1|']:g}, |11 − 1| = "
            f"{r.lecture['|11-1|']:g}, while (3 − 1)² = {r.lecture['(3-1)^2']:g} and (11 − 1)² = "
            f"{r.lecture['(11-1)^2']:g}: squaring makes the large error {ratio_l2:g} times as "
            f"costly as the small one instead of {ratio_l1:g}."
        )
        + _p(
            f"A line fit to {len(r.x)} points, {sum(r.outlier)} of them outliers, under each loss "
            f"(true intercept {r.true_line[1]:g}; L2's fit {_num(l2.intercept)}). {verdict}"
        )
        + _table(
            ["loss", "slope", "intercept", "distance from true line"],
            [[f.loss, f"{f.slope:.3f}", f"{f.intercept:.3f}", f"{f.error:.3f}"] for f in r.fits],
        )
    )


def _describe_entropy(r) -> str:
    peak = r.coin_p[r.coin_entropy.index(max(r.coin_entropy))]
    logits = ", ".join(f"{v:g}" for v in r.logits)
    soft = ", ".join(f"{v:.3f}" for v in r.softmax)
    best = min(range(len(r.cross_entropy)), key=r.cross_entropy.__getitem__)
    return (
        _p(
            f"A coin's entropy is highest at P(heads) = {peak:g}: {max(r.coin_entropy):.3f} nats "
            f"(log 2 = {math.log(2):.3f}). A fair die has entropy {r.fair_die:.3f} nats; the die "
            f"with five faces showing 1 has {r.loaded_die:.3f}, "
            f"{r.loaded_die / r.fair_die:.0%} of it: it is easier to predict."
        )
        + _p(
            f"Cross-entropy on logits first turns them into probabilities with softmax (torch's "
            f"CrossEntropyLoss, and lossopt's cross_entropy, include it): logits ({logits}) give "
            f"({soft}). With a one-hot target the sum −Σ p log q keeps one term, −log of the "
            f"softmax at the true class: "
            + _join(
                [
                    f"{loss:.3f} = −log {prob:.3f} if the true class is {c}"
                    for c, (prob, loss) in enumerate(zip(r.softmax, r.cross_entropy, strict=True))
                ]
            )
            + f". The loss is smallest when the largest logit is the true class ({best}), and "
            "grows without bound as the true class's probability goes to 0."
        )
        + _p(
            "An aside the lecture does not cover: with label smoothing ε over C = "
            f"{r.classes} classes the target puts 1 − ε + ε/C on the true class, so the loss is "
            "lowest there, not at certainty: at "
            + _join([f"{p:.3f} for ε = {e}" for e, p in r.best_p_true.items() if float(e) > 0])
            + "."
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
        verdict = "a rise larger than its spread over the seeds"
    elif mean + std < 0:
        verdict = "a fall larger than its spread over the seeds"
    else:
        verdict = (
            "a change within its spread over the seeds: on these runs the weights have no "
            "reliable effect on the rare digit's recall"
        )
    others = [w for k, w in enumerate(r.weights) if k != m]
    first = _p(
        f"Digit {m} keeps {r.train_counts[m]} of its training examples, the others "
        f"{min(c for k, c in enumerate(r.train_counts) if k != m)} to "
        f"{max(r.train_counts)}. Class weights w_c = n/(C·n_c) (digit {m}: "
        f"{r.weights[m]:.2f}, the others {min(others):.2f} to {max(others):.2f}) scale each "
        f"example's loss by its class's weight. Over seeds {_join([str(s) for s in r.seeds])}, "
        f"each its own split and initialisation, they change digit {m}'s validation recall by "
        f"{100 * mean:+.1f} ± {100 * std:.1f} percentage points (mean ± standard deviation; up "
        f"on {up} seed{'s' if up != 1 else ''}, down on {down}): {verdict}. Overall accuracy "
        f"is {_pm(r.accuracy_plain)} without the weights and {_pm(r.accuracy_weighted)} with."
    )
    share = r.kept / (r.kept + r.ignored)
    naive = r.loss_all_rows / r.loss_with_ignored if r.loss_with_ignored else math.nan
    same = math.isclose(r.loss_with_ignored, r.loss_kept_only, rel_tol=1e-6, abs_tol=1e-12)
    second = _p(
        f"ignore_index: in a batch of {r.ignored + r.kept} validation rows, {r.ignored} labels "
        f"are {r.ignore_index}. lossopt, as torch, averages over the {r.kept} kept rows only: "
        f"{r.loss_with_ignored:.4g}"
        + (" (the kept rows alone, computed apart, give the same)" if same else "")
        + f". The naive mean over all {r.kept + r.ignored} rows, each ignored one counted as 0, "
        f"is {r.loss_all_rows:.4g}, {naive:.3g} times as much ({r.kept}/{r.kept + r.ignored} = "
        f"{share:.3g}): it would shrink the loss, and every gradient, as more labels go missing. "
        f"The largest gradient on an ignored row's logits is {r.ignored_grad_max:g}; a kept "
        f"row's averages {r.kept_grad_mean:.3g}."
    )
    return first + second


def _describe_kl(r) -> str:
    f, b = r.fits
    outcomes = ", ".join(f"{v:g}" for v in r.outcomes)
    equal = "equals" if r.gap_at_p == 0 else f"is {r.gap_at_p:.2g} above"
    first = _p(
        f"For P = ({outcomes}), H(P) = {r.entropy:.4f} nats. Along Q_t = softmax(t · log P) "
        f"the cross-entropy H(P, Q_t) is lowest at t = {r.t_at_min:g}, where Q = P and it "
        f"{equal} H(P). Among {r.random_q} random Q the smallest H(P, Q) − H(P) = D_KL(P‖Q) is "
        f"{r.random_min_gap:.4f}: "
        + ("never below 0." if r.random_min_gap >= 0 else "below 0, against the bound.")
    )
    low, high = r.constant_gap
    kl_min = r.ts[min(range(len(r.kl_along)), key=r.kl_along.__getitem__)]
    constant = _p(
        f"H(P) does not depend on Q. Along Q_t, H(P, Q_t) − D_KL(P‖Q_t) stays between "
        f"{low:.6f} and {high:.6f}, H(P) itself, and over the {r.random_q} random Q the "
        f"gradients of H(P, Q) and of D_KL(P‖Q) with respect to Q's logits differ by at most "
        f"{r.gradient_gap:.2g}. So minimising the cross-entropy minimises the KL divergence: "
        f"both are lowest at t = {kl_min:g}"
        + (", where Q = P." if kl_min == r.t_at_min == 1 else f" and t = {r.t_at_min:g}.")
    )
    wider = f.std > b.std
    second = _p(
        f"P, two peaks, has std {r.p_std:.2f}. Minimising the forward KL(P‖Q) fits Q with mean "
        f"{_fixed(f.mean, 2)} and std {f.std:.2f}; minimising the reverse KL(Q‖P) gives mean "
        f"{_fixed(b.mean, 2)} and std {b.std:.2f}. "
        + (
            "The forward fit spreads over both peaks (Q must cover wherever P has mass); the "
            "reverse fit locks onto one (Q is punished wherever P is small)."
            if wider
            else "In this run the forward fit is not the wider one."
        )
        + " Q is a Gaussian cut to the grid, so its std is computed from Q itself, not "
        f"read off its σ parameter ({_num(f.sigma)} and {_num(b.sigma)})."
    )
    return (
        first
        + constant
        + second
        + _table(
            ["fit by", "mean", "std of Q", "σ parameter", "KL(P‖Q)", "KL(Q‖P)"],
            [
                [
                    x.direction,
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
        "the negative is at least a margin farther than the positive: loss 0"
        if t.loss == 0
        else f"the negative is not a margin farther than the positive: loss {t.loss:.3f}"
    )
    return f"d(a, p) = {t.d_ap:.4g}, d(a, n) = {t.d_an:.4g}, margin {margin:g}: {state}"


def _describe_triplet(r) -> str:
    tb, ta = r.triplet_before, r.triplet_after
    grew = r.spread_after / r.spread_before
    ratio = [t.d_an / t.d_ap if t.d_ap > 0 else math.inf for t in (tb, ta)]
    moved = "away from" if ta.d_ap > tb.d_ap else "toward"
    return (
        _p(
            "The top panels show the loss's geometry on one triplet of validation digits: the "
            "anchor, a positive (the same digit, the farthest one before training) and a negative "
            "(another digit, the nearest one before training). The solid circle has radius d(a, p); "
            "the negative must lie outside the dashed one, d(a, p) + margin. Before training "
            f"{_triplet_sentence(tb, r.margin)}; after, {_triplet_sentence(ta, r.margin)}."
        )
        + _p(
            f"The positive moved {moved} the anchor ({tb.d_ap:.3g} → {ta.d_ap:.3g}), yet the "
            "triplet got better: the loss compares d(a, p) with d(a, n), not with a fixed ruler, "
            f"and the whole embedding grew. Its points' root-mean-square distance from their "
            f"centre went from {r.spread_before:.3g} to {r.spread_after:.3g}, {grew:.3g} times, "
            "since the margin is a fixed length and spreading everything out is one way to meet "
            f"it. Measured in that spread, d(a, p) went from {tb.d_ap / r.spread_before:.3g} to "
            f"{ta.d_ap / r.spread_after:.3g} and d(a, n) from {tb.d_an / r.spread_before:.3g} to "
            f"{ta.d_an / r.spread_after:.3g}; the ratio d(a, n)/d(a, p) from {_num(ratio[0])} to "
            f"{_num(ratio[1])}."
        )
        + _p(
            f"A small network maps each 8×8 digit to 2-D and is trained with batch_triplet_loss "
            f"(mining '{r.mining}', margin {r.margin:g}) for {len(r.loss)} steps; the loss goes "
            f"from {r.loss[0]:.3f} to {r.loss[-1]:.3f}. On one scale, the bottom panels show the "
            f"embedding before and after: 1-nearest-neighbour validation accuracy goes from "
            f"{r.knn_before:.1%} to {r.knn_after:.1%}."
        )
    )


def _describe_derivative(r) -> str:
    t0, tmin = r.tangents[0], r.tangents[1]
    best = min(range(len(r.hs)), key=lambda i: r.forward_error[i])
    exact = [h for h, e in zip(r.hs, r.central_error, strict=True) if e == 0]
    if exact:
        # L is a parabola in w, and a parabola's central difference has no truncation error.
        central = (
            f"The central difference (L(w+h) − L(w−h))/2h is exact at h = {exact[-1]:g}: L is a "
            "parabola in w, whose central difference has no truncation error."
        )
    else:
        central = f"The central difference's error falls to {min(r.central_error):.2g}."
    return _p(
        f"L(w) = mse_loss(w·x, y) on {len(r.ws)} grid points. At w = {t0.w:g} autograd gives "
        f"dL/dw = {t0.autograd:.6f}; the slide's difference quotient with h = {r.h:g} gives "
        f"{t0.forward_difference:.6f}. At the minimum w* = Σxy/Σx² = {r.w_star:.4f} the slope "
        f"is {tmin.autograd:.2g}: flat, as the lecture says of a minimum."
    ) + _p(
        f"Shrinking h makes the quotient approach the derivative only so far: its error is "
        f"smallest, {r.forward_error[best]:.2g}, at h = {r.hs[best]:.2g}, and grows for smaller "
        f"h ({r.forward_error[0]:.2g} at h = {r.hs[0]:g}) as float64 rounding takes over. "
        + central
        + " Autograd has no h at all."
    )


def _first_below(curve: list[float], level: float) -> int | None:
    return next((i for i, v in enumerate(curve) if v <= level), None)


def _describe_gd_vs_sgd(r) -> str:
    gd, sgd = r.gd_loss, r.sgd_loss
    done = [
        f"{name} stopped after {len(c) - 1} steps (the loss left the finite numbers)"
        for name, c in (("GD", gd), ("SGD", sgd))
        if len(c) - 1 < r.steps
    ]
    seen = (len(sgd) - 1) * r.batch_size
    k = min(len(gd) - 1, max(1, round(seen / r.train_size)))
    per_step = (
        f"After {r.steps} steps at lr {r.lr:g}, GD's loss on the whole training set is "
        f"{_num(gd[-1], 4)} and SGD's {_num(sgd[-1], 4)}. "
    )
    if done:
        per_step += _join(done) + ". "
    ahead = "SGD is ahead" if sgd[-1] < gd[k] else "SGD is not ahead"
    noise = r.sgd_gradient_noise
    mean_noise = sum(noise) / len(noise) if noise else float("nan")
    work = r.train_size / r.batch_size
    time_ratio = r.seconds_per_gd_step / r.seconds_per_sgd_step
    return _p(
        per_step + f"A GD step reads all {r.train_size} training examples, an SGD step "
        f"{r.batch_size}: SGD's {len(sgd) - 1} steps read {seen} examples, about GD's first "
        f"{k} step{'s' if k != 1 else ''}, where GD's loss was {_num(gd[k], 4)}: per example "
        f"read, {ahead} ({_num(sgd[-1], 4)})."
    ) + _p(
        f"The price is noise: a mini-batch gradient differs from the full one by "
        f"{_num(mean_noise)} times the full gradient's length on average, and SGD's whole-set "
        f"loss went up after {r.sgd_rises} of its steps, GD's after {r.gd_rises}. On this "
        f"machine a GD step took {1000 * r.seconds_per_gd_step:.2f} ms and an SGD step "
        f"{1000 * r.seconds_per_sgd_step:.2f} ms: {time_ratio:.1f} times the time for "
        f"{work:.0f} times the examples"
        + (
            ", since fixed per-step costs weigh heavily on a model this small."
            if time_ratio < work / 4
            else "."
        )
    )


def _outcome(path) -> str:
    start, end = path.values[0], path.values[-1]
    steps = len(path.values) - 1
    if path.diverged:
        return f"grew to {end:.3g} and a coordinate passed 10⁶ after {steps} steps: it diverges"
    if end > start:
        return f"grew from {start:.3g} to {end:.3g} in {steps} steps: it diverges"
    return (
        f"fell from {start:.3g} to {end:.3g} in {steps} steps "
        f"({100 * end / start:.2g}% of the start)"
    )


def _describe_lr(r) -> str:
    runs = " ".join(
        f"At lr {p.lr:g} ({label}), f {_outcome(p)}."
        for label, p in zip(r.labels, r.paths, strict=True)
    )
    return _p(
        f"Plain SGD on x²/20 + y² from the same start. {runs} The steepest direction has "
        f"curvature {r.curvature:g}, so a rate above 2/{r.curvature:g} = {2 / r.curvature:g} "
        "overshoots by more than it corrects at every step, and one far below it creeps along "
        "the flat direction."
    ) + _p(
        "The range test raises the learning rate exponentially during one short run of the "
        f"digits network and records the loss: lowest at lr {r.range_test.lr_at_minimum:.3g}, "
        f"rising beyond it. A tenth of that, {r.range_test.suggested_lr:.3g}, is a safe start."
    )


def _momentum_against_sgd(r, s, m) -> str:
    """SGD against Momentum, fairly: crossings, where each ends, the effective steps,
    Momentum at SGD's effective step, and the factor each shrinks the error by."""
    out = f"SGD crosses the valley floor y = 0 {s.crossings} times, Momentum {m.crossings} times"
    if m.crossings < s.crossings:
        out += (
            ": its velocity averages out the alternating y-gradient and keeps the steady "
            f"x-gradient, and its path is {sum(m.step_lengths):.3g} long against SGD's "
            f"{sum(s.step_lengths):.3g}. "
        )
    else:
        out += ": at these rates momentum does not smooth the path. "
    ends = "SGD ends lower" if s.values[-1] < m.values[-1] else "Momentum ends lower"
    out += (
        f"{'Yet ' if s.values[-1] < m.values[-1] and m.crossings < s.crossings else ''}{ends} "
        f"(f {_num(s.values[-1])} against {_num(m.values[-1])}), and the two do not take the "
        f"same step: on a steady slope Momentum's velocity builds up to 1/(1 − α) steps' "
        f"worth, so at η = {m.lr:g} and α = {m.momentum:g} its effective step is "
        f"η/(1 − α) = {m.effective_lr:.3g}, against SGD's {s.effective_lr:.3g}."
    )
    if r.matched is not None and not r.matched.diverged and not s.diverged:
        q = r.matched
        lower = "still above" if q.values[-1] > s.values[-1] else "below"
        out += (
            f" At SGD's effective step (η = {q.lr:.3g}, η/(1 − α) = {q.effective_lr:.3g}) "
            f"Momentum ends at f {_num(q.values[-1])}, {lower} SGD's, crossing y = 0 "
            f"{q.crossings} times."
        )
    if s.contraction and m.contraction and not s.diverged and not m.diverged:
        (sx, sy), (mx, my) = s.contraction, m.contraction
        slow_s, slow_m = max(sx, sy), max(mx, my)
        low, high = r.curvatures
        heavy = (
            " (= √α: the heavy ball overshoots and swings back)"
            if math.isclose(slow_m, math.sqrt(m.momentum), rel_tol=1e-9)
            else ""
        )
        out += (
            f" Per step, SGD shrinks the distance to the minimum by a factor {sx:.3g} along x "
            f"(curvature {low:g}) and {sy:.3g} along y (curvature {high:g}); Momentum by "
            f"{mx:.3g} and {my:.3g}{heavy}."
        )
        if slow_s < slow_m:
            out += (
                f" Over {r.steps} steps the slower factor decides ({slow_s:.3g}^{r.steps} = "
                f"{slow_s**r.steps:.2g} against {slow_m:.3g}^{r.steps} = {slow_m**r.steps:.2g}): "
                f"at α = {m.momentum:g} Momentum buys a smooth path, not a faster one here."
            )
        else:
            out += " Momentum's slower factor is the smaller: it also converges faster."
    return _p(out)


def _describe_paths(r) -> str:
    paths = {p.optimizer: p for p in r.paths}
    start = ", ".join(f"{v:g}" for v in r.start)
    low, high = r.curvatures
    out = _p(
        f"Each optimizer starts at ({start}) and takes {r.steps} steps on {r.formula} at one "
        f"fixed learning rate (in each panel's title). The curvature is {low:g} along x and "
        f"{high:g} along y: the surface is {high / low:.3g} times flatter along x, so the "
        "gradient points mostly across the valley."
    )
    if "sgd" in paths and "momentum" in paths:
        out += _momentum_against_sgd(r, paths["sgd"], paths["momentum"])
    if "adagrad" in paths and paths["adagrad"].step_lengths:
        lengths = paths["adagrad"].step_lengths
        shrinking = sum(1 for a, b in zip(lengths, lengths[1:], strict=False) if b < a)
        later = len(lengths) - 1
        which = (
            f"each of its {later} later steps is shorter than the one before"
            if shrinking == later
            else f"{shrinking} of its {later} later steps are shorter than the one before"
        )
        out += _p(
            f"AdaGrad's steps go from {lengths[0]:.3g} to {lengths[-1]:.3g} ({which}): its "
            "accumulator h only grows."
        )
    shown = list(r.paths) + ([r.matched] if r.matched is not None else [])
    rows = [
        [
            _label(p.optimizer) + (" at SGD's effective step" if p is r.matched else ""),
            f"{p.lr:.3g}",
            f"{p.effective_lr:.3g}" if p.optimizer in ("sgd", "momentum") else "adaptive",
            p.crossings,
            f"{sum(p.step_lengths):.3g}",
            f"({p.points[-1][0]:.3g}, {p.points[-1][1]:.3g})",
            f"{p.values[-1]:.3g}" + (" (diverged)" if p.diverged else ""),
        ]
        for p in shown
    ]
    return out + _table(
        [
            "optimizer",
            "lr η",
            "effective step η/(1 − α)",
            "crossings of y = 0",
            "path length",
            "last point",
            "last f",
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
        after = (
            f" At the first step at the lowered rate, the lecture's form moves "
            f"{lecture[i]:.3g} (after {lecture[i - 1]:.3g}) and torch's {torch_[i]:.3g} (after "
            f"{torch_[i - 1]:.3g})"
        )
        if torch_[i] < torch_[i - 1] / 5 and lecture[i] > lecture[i - 1] / 2:
            after += (
                ": torch's velocity b holds raw gradients, so the new rate scales all of it at "
                "once, while the lecture's v already holds each old step's rate and lets it "
                "fade by α per step."
            )
        else:
            after += "."
    same = (
        "v = −ηb at every step, up to float64 rounding"
        if constant.max_relative_difference < 1e-12
        else f"a relative difference of {constant.max_relative_difference:.2g}"
    )
    return _p(
        f"The lecture writes momentum as v ← αv − η∂L/∂W, W ← W + v; torch (and lossopt) as "
        f"b ← μb + g, W ← W − ηb. With α = μ = {r.momentum:g} and a constant η = "
        f"{constant.lrs[0]:g} for {len(constant.lrs)} steps on the lecture's surface, the two "
        f"paths differ by at most {constant.max_difference:.2g}: {same}."
    ) + _p(
        f"Dividing η by 10 from step {r.drop_step}, as a learning-rate schedule does, separates "
        f"them by up to {drop.max_difference:.3g}.{after}"
    )


def _describe_adaptive(r) -> str:
    quarter = r.rmsprop[len(r.rmsprop) * 3 // 4 :]
    spread = (max(quarter) - min(quarter)) / max(quarter) if quarter else 0.0
    b1, b2 = r.adam_betas
    ratio = r.adam_uncorrected[0] / r.adam_corrected[0]
    (x0, y0), (x1, y1) = r.adagrad_elements[0], r.adagrad_elements[-1]
    gamma = r.rmsprop_alpha
    adagrad = _p(
        f"AdaGrad's point is a rate per element: η/(√h + ε), with h each element's own sum of "
        f"squared gradients. On the lecture's surface at η = {r.adagrad_lr:g}, x (the flat "
        f"direction, small gradients) gets a rate of {x0:.3g} after the first step and y "
        f"{y0:.3g} ({x0 / y0:.3g} times less); after {len(r.adagrad_elements)} steps {x1:.3g} "
        f"against {y1:.3g} ({x1 / y1:.3g} times). Elements whose gradients were large get the "
        "smaller rate, as the lecture says."
    )
    shrink = _p(
        f"Fed the same noisy gradients at lr {r.lr:g}, AdaGrad's effective learning rate falls "
        f"from {r.adagrad[0]:.3g} to {r.adagrad[-1]:.3g} after {len(r.steps)} steps "
        f"({r.adagrad[-1] / r.adagrad[0]:.1%} of its first), since h only grows. RMSProp's "
        f"moving average (γ = {gamma:g}) forgets old gradients: its rate ends at "
        f"{r.rmsprop[-1]:.3g}, {r.rmsprop[-1] / r.adagrad[-1]:.1f} times AdaGrad's, and over "
        f"its last {len(quarter)} steps varies by {spread:.0%}."
    )
    spike = _p(
        f"RMSProp has no bias correction: G starts at 0, so after one step it holds only "
        f"(1 − γ)g² and the first step is η/√(1 − γ) = {r.rmsprop_first_step / r.lr:.3g} times "
        f"η, whatever the gradient (measured: {r.rmsprop_first_step:.3g} at η = {r.lr:g}). Adam "
        f"keeps the same average of squares and divides it by 1 − β2ᵗ: its first step is "
        f"{r.adam_corrected[0] / r.lr:.4f} times η. Without that correction Adam's first step "
        f"would be {ratio:.3g} times the corrected one (m shrinks by 1 − β1 = {1 - b1:.3g}, √v "
        f"by √(1 − β2) = {math.sqrt(1 - b2):.3g}). The steps measured on lossopt's Adam differ "
        f"from the corrected formula by at most "
        f"{max(abs(a - c) for a, c in zip(r.adam_actual, r.adam_corrected, strict=True)):.2g}."
    )
    both = _p(
        f"Adam = Momentum + RMSProp. On the same gradients, lossopt's Adam's m equals (1 − β1) "
        f"times the buffer of Momentum at μ = β1 = {b1:g} (largest relative difference "
        f"{r.adam_vs_momentum:.2g}), and its v equals RMSProp's G at γ = β2 = {b2:g} "
        f"({r.adam_vs_rmsprop:.2g}): Momentum's direction divided by RMSProp's scale, with "
        "both averages corrected for their start at 0."
    )
    shown = [k for k, g in enumerate(r.eps_gradients) if g in (1e-2, 1e-4, 1e-6)]
    eps = _p(
        f"Where ε sits: the lecture writes RMSProp's step as η g/√(G + ε), torch (and lossopt) "
        f"as η g/(√G + ε), ε = {r.rmsprop_eps:g}. On a first step (G = (1 − γ)g²) at η = "
        f"{r.lr:g} the two agree for large gradients and part below |g| ≈ √(ε/(1 − γ)) = "
        f"{math.sqrt(r.rmsprop_eps / (1 - gamma)):.2g}: "
        + _join(
            [
                f"at |g| = {r.eps_gradients[k]:g} the lecture's step is {r.eps_inside[k]:.3g} "
                f"and torch's {r.eps_outside[k]:.3g}"
                for k in shown
            ]
        )
        + ". Inside the root ε caps the rate at η/√ε for tiny gradients; outside it matters "
        "only when √G itself nears ε."
    )
    return adagrad + shrink + spike + both + eps


def _describe_training(r) -> str:
    if r.lr_source == "user":
        rates = f"every optimizer at the learning rate given by --lr, {r.ranking[0].lr:g}"
    else:
        used = {x.optimizer: x.lr for x in r.ranking}
        names = sorted(used, key=list(OPTIMIZERS).index)
        rates = (
            "each optimizer at one fixed rate, the middle of the starting grid that 'lossopt lab "
            "compare' searches ("
            + ", ".join(f"{_label(n)} {used[n]:g}" for n in names)
            + "), not torch's defaults"
        )
    top = r.ranking[0]
    close = [
        _label(x.optimizer)
        for x in r.ranking[1:]
        if math.isfinite(x.metric_mean)
        and top.metric_mean - x.metric_mean <= top.metric_std + x.metric_std
    ]
    spread = (
        f" {_join(close)} {'is' if len(close) == 1 else 'are'} within the seeds' spread of "
        f"{_label(top.optimizer)} (the means differ by less than the two standard deviations "
        "added): on these seeds that is no meaningful difference."
        if close
        else ""
    )
    return (
        _p(
            f"A 64-64-10 network on scikit-learn's digits for {r.epochs} epochs, {rates}, with "
            f"seeds {_join([str(s) for s in r.seeds])}. Ranked by {r.metric} (equal means share a "
            f"place).{spread}"
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
    text = (
        f"Momentum at lr {m.lr:g} with α = {alpha:g} takes an effective step "
        f"η/(1 − α) = {m.lr:g}/(1 − {alpha:g}) = {effective:.3g}, "
        + (
            f"the same as SGD's {s.lr:g}: the two move equally far on a steady slope and differ "
            "only in how the step is spread over time. "
            if same
            else f"against SGD's {r.effective_lrs['sgd']:.3g}. "
        )
        + f"Their means of {r.metric} differ by {gap:.4f}, "
        + (
            "within the seeds' spread"
            + (": no surprise at the same effective step." if same else ".")
            if within
            else f"more than the seeds' spread ({s.metric_std:.4f} and {m.metric_std:.4f})."
        )
    )
    return _p(text)


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
            f"{x.seconds_mean:.2f} s",
        ]
        for place, x, text in zip(ranks, ranking, shown, strict=True)
    ]
    return _table(["rank", "optimizer", "lr", metric, "time per run (this machine)"], rows)


def _drawn_by(name: str) -> Callable[[Any], list]:
    """plots.<name>, imported only when a figure is drawn: the prose, the section
    titles and `lossopt lab --help` never load the plotting stack."""

    def draw(result: Any) -> list:
        from lossopt.lab import plots

        return getattr(plots, name)(result)

    return draw


# The lecture's order; each section's number is its place here, never typed.
SECTIONS: dict[str, Section] = {
    "l1-vs-l2": Section(
        "L1 against L2",
        (
            "l<sub>n</sub> = |x<sub>n</sub> − y<sub>n</sub>| (L1)",
            "l<sub>n</sub> = (x<sub>n</sub> − y<sub>n</sub>)² (L2)",
        ),
        _describe_l1,
        _drawn_by("l1_vs_l2"),
    ),
    "entropy": Section(
        "Entropy, softmax and cross-entropy",
        (
            "H(P) = −Σ<sub>x</sub> P(x) log P(x)",
            "softmax(x)<sub>c</sub> = e<sup>x<sub>c</sub></sup> / Σ<sub>k</sub> e<sup>x<sub>k</sub></sup>",
            "H(p, q) = −Σ<sub>c</sub> p(y<sub>c</sub>) log q(y<sub>c</sub>)",
        ),
        _describe_entropy,
        _drawn_by("entropy"),
    ),
    "class-weights": Section(
        "Class weights and ignore_index in cross-entropy",
        (
            "l<sub>n</sub> = −w<sub>y<sub>n</sub></sub> log softmax(x<sub>n</sub>)<sub>y<sub>n</sub></sub>",
            "mean = Σ<sub>n kept</sub> l<sub>n</sub> / Σ<sub>n kept</sub> w<sub>y<sub>n</sub></sub>,"
            " kept: y<sub>n</sub> ≠ ignore_index",
        ),
        _describe_class_weights,
        _drawn_by("class_weights"),
    ),
    "kl": Section(
        "KL divergence: H(P, Q) ≥ H(P), and it is not symmetric",
        (
            "D<sub>KL</sub>(P‖Q) = Σ P(x) log(P(x)/Q(x))",
            "D<sub>KL</sub>(P‖Q) = H(P, Q) − H(P) ≥ 0",
        ),
        _describe_kl,
        _drawn_by("kl_asymmetry"),
    ),
    "triplet": Section(
        "Triplet margin loss",
        ("l = max(d(a, p) − d(a, n) + margin, 0)",),
        _describe_triplet,
        _drawn_by("triplet"),
    ),
    "derivative": Section(
        "The derivative is a slope",
        ("df/dx = lim<sub>h→0</sub> (f(x + h) − f(x)) / h",),
        _describe_derivative,
        _drawn_by("derivative"),
    ),
    "gd-vs-sgd": Section(
        "Gradient descent against mini-batch SGD",
        ("W ← W − η ∂L/∂W, the gradient over all examples or over a mini-batch",),
        _describe_gd_vs_sgd,
        _drawn_by("gd_vs_sgd"),
    ),
    "learning-rate": Section(
        "The learning rate",
        ("W ← W − η ∂L/∂W: η decides how far",),
        _describe_lr,
        _drawn_by("learning_rate"),
    ),
    "paths": Section(
        "Optimizer paths on the lecture's surface",
        (
            "f(x, y) = x²/20 + y²",
            "Momentum's step on a steady slope: η/(1 − α) times the gradient",
        ),
        _describe_paths,
        _drawn_by("optimizer_paths"),
    ),
    "momentum": Section(
        "Momentum: the lecture's form and torch's",
        (
            "v ← αv − η ∂L/∂W, W ← W + v (the lecture)",
            "b ← μb + g, W ← W − ηb (torch)",
        ),
        _describe_momentum,
        _drawn_by("momentum_forms"),
    ),
    "adaptive": Section(
        "Adaptive step sizes",
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
        "Training a real model",
        ("try several optimizers: Adam or RMSProp usually does well",),
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
    redraw = f"redraw this section with <code class='cli'>{html.escape(command)}</code>"
    explorable, settings = LIVE.get(name, (None, None))
    if explorable not in live:
        return f"<p class='try'>Try it: {redraw}.</p>"
    knob_list = live[explorable]
    url = knobs.live_url(explorable, knob_list, _accepted(knob_list, settings(result, meta)))
    return (
        "<p class='try'>Try it: run <code>lossopt lab serve</code> and open "
        f"<a class='live' href='{html.escape(url, quote=True)}'>{html.escape(url)}</a>, "
        f"or {redraw}.</p>"
    )


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
    intro: str = "Every idea of the lecture on losses and optimizers, shown on real runs of "
    "lossopt's own losses and optimizers.",
) -> Path:
    """Write the report of results (section name -> experiment result) into folder.

    Each result is shown by sections[name]; with numbered, a section's number is
    its place in sections (the lecture's order, whichever sections ran). A page of
    more than one section opens with a table of contents. With try_lines, each
    figure has its "try it" line: the command that redraws it and, for the
    explorables live names (name -> its knobs), the live lab's address."""
    from lossopt.lab import plots

    folder.mkdir(parents=True, exist_ok=True)
    plain, timings = split_timings(_plain(results))
    (folder / "results.json").write_text(
        json.dumps({"meta": meta, "results": plain}, indent=1, sort_keys=True)
    )
    (folder / "timings.json").write_text(json.dumps(timings, indent=1, sort_keys=True))
    order = list(sections)
    headings = {
        name: f"{order.index(name) + 1}. {sections[name].title}"
        if numbered
        else sections[name].title
        for name in results
    }
    parts = []
    for name, result in results.items():
        section = sections[name]
        images = plots.save(section.draw(result), folder)
        figures = "".join(
            f'<img src="{html.escape(img)}" alt="{html.escape(section.title)}">' for img in images
        )
        parts.append(
            f'<section id="{html.escape(name, quote=True)}"><h2>{html.escape(headings[name])}</h2>'
            f"{page.equations(section.equations)}{figures}"
            f"{try_it(name, result, meta, live or {}) if try_lines else ''}{section.describe(result)}</section>"
        )
    contents = page.contents(list(headings.items())) if len(results) > 1 else ""
    options = ", ".join(f"{k}={v}" for k, v in meta.items())
    text = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{page.STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"
        f"<p class='meta'>{html.escape(options)}. Every number on this page is in results.json; times, "
        "which depend on the machine, are in timings.json.</p>"
        + contents
        + "".join(parts)
        + "</body></html>"
    )
    index = folder / "index.html"
    index.write_text(text, encoding="utf-8")
    return index
