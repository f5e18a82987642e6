"""Each experiment in quick mode: the data it returns shows what the lecture says,
and what the report's prose states about it holds."""

import dataclasses
import functools
import html
import json
import math
import re

import numpy as np
import pytest
import torch

from lossopt.lab import report
from lossopt.lab.config import Config
from lossopt.lab.experiments import EXPERIMENTS
from lossopt.lab.experiments.optimization import PATH_LRS, rank
from lossopt.lab.training import Run

QUICK = Config(quick=True)


@functools.cache
def _quick(name):
    return EXPERIMENTS[name](QUICK)


def _run(name, config=QUICK):
    return _quick(name) if config == QUICK else EXPERIMENTS[name](config)


def _prose(describe, result) -> str:
    return html.unescape(describe(result))


def test_experiments_in_the_lectures_order():
    assert list(EXPERIMENTS) == [
        "l1-vs-l2",
        "entropy",
        "class-weights",
        "kl",
        "triplet",
        "derivative",
        "gd-vs-sgd",
        "learning-rate",
        "paths",
        "momentum",
        "adaptive",
        "training",
    ]
    assert set(EXPERIMENTS) == set(report.SECTIONS)


def test_experiments_restore_the_thread_count():
    threads = torch.get_num_threads()
    _run("momentum")
    assert torch.get_num_threads() == threads


def test_l1_vs_l2():
    r = _run("l1-vs-l2")
    assert r.lecture == {"|3-1|": 2.0, "|11-1|": 10.0, "(3-1)^2": 4.0, "(11-1)^2": 100.0}
    fits = {f.loss: f for f in r.fits}
    assert fits["L1"].error < 0.5 and fits["Huber"].error < 0.5
    assert fits["L2 (MSE)"].error > 3 * max(fits["L1"].error, fits["Huber"].error)
    assert max(r.l2) == pytest.approx(9.0) and max(r.l1) == pytest.approx(3.0)
    text = _prose(report._describe_l1, r)
    assert "25 times as costly as the small one instead of 5" in text
    assert "they resist the outliers" in text


def test_l1_prose_follows_a_run_that_shows_no_robustness():
    # At a rate far too large for these fits no loss lands near the true line;
    # the prose must say so rather than claim that L1 resists the outliers.
    r = _run("l1-vs-l2", Config(quick=True, lr=100.0, steps=30))
    text = _prose(report._describe_l1, r)
    fits = {f.loss: f for f in r.fits}
    robust = fits["L1"].error < fits["L2 (MSE)"].error / 2
    assert ("they resist the outliers" in text) == robust
    assert "[" not in text and "]" not in text


def test_entropy():
    r = _run("entropy")
    peak = r.coin_p[r.coin_entropy.index(max(r.coin_entropy))]
    assert peak == pytest.approx(0.5) and max(r.coin_entropy) == pytest.approx(math.log(2))
    assert r.coin_entropy[0] == 0.0 and r.coin_entropy[-1] == 0.0
    assert r.fair_die == pytest.approx(math.log(6)) and r.loaded_die < r.fair_die / 3
    assert r.cross_entropy[0] == pytest.approx(-math.log(r.softmax[0]))
    for eps, p in r.best_p_true.items():
        e = float(eps)
        assert p == 1 - e + e / r.classes  # the formula, not a grid point
        assert r.grid_argmin[eps] == pytest.approx(p, abs=0.01)  # the curve agrees
    text = _prose(report._describe_entropy, r)
    # Softmax, then -log at the true class: each value against torch's own.
    logits = torch.tensor(r.logits, dtype=torch.float64)
    assert r.softmax == pytest.approx(torch.softmax(logits, 0).tolist(), rel=1e-12)
    reference = torch.nn.functional.cross_entropy(
        logits.expand(3, 3), torch.arange(3), reduction="none"
    )
    assert r.cross_entropy == pytest.approx(reference.tolist(), rel=1e-12)
    for c, (prob, loss) in enumerate(zip(r.softmax, r.cross_entropy, strict=True)):
        assert f"{loss:.3f} = −log {prob:.3f} if the true class is {c}" in text
    # Label smoothing stays an aside, marked as outside the lecture.
    assert "An aside the lecture does not cover" in text
    assert "0.910 for ε = 0.1" in text and "0.820 for ε = 0.2" in text
    assert "[" not in text  # no raw Python list in prose


def test_class_weights_and_ignore_index():
    r = _run("class-weights")
    m = r.minority
    assert r.train_counts[m] < min(c for k, c in enumerate(r.train_counts) if k != m) / 10
    counts, weights = np.array(r.train_counts), np.array(r.weights)
    assert weights == pytest.approx(counts.sum() / (len(counts) * counts))
    # Several seeds, and the change of the rare digit's recall stated over them.
    assert r.seeds == [0, 1, 2] and len(r.minority_plain) == len(r.accuracy_weighted) == 3
    changes = np.array(r.minority_weighted) - np.array(r.minority_plain)
    assert r.minority_change == pytest.approx((changes.mean(), changes.std(ddof=1)))
    assert r.recall_plain[m] == pytest.approx(np.mean(r.minority_plain))
    text = _prose(report._describe_class_weights, r)
    mean, std = r.minority_change
    assert f"by {100 * mean:+.1f} ± {100 * std:.1f} percentage points" in text
    assert ("a rise larger than its spread" in text) == (mean - std > 0)
    assert "seeds 0, 1 and 2" in text
    # ignore_index: lossopt's mean over the kept rows, against the naive one over all rows.
    assert r.ignored == sum(r.row_ignored) and r.kept == len(r.row_ignored) - r.ignored
    assert r.loss_with_ignored == pytest.approx(r.loss_kept_only, rel=1e-6)
    assert r.loss_all_rows == pytest.approx(r.loss_with_ignored * r.kept / (r.kept + r.ignored))
    assert r.loss_all_rows < r.loss_with_ignored
    assert r.ignored_grad_max == 0.0 and r.kept_grad_mean > 0
    norms = np.array(r.row_grad_norms)
    assert (norms[np.array(r.row_ignored)] == 0).all()
    assert f"is {r.loss_all_rows:.4g}, 0.667 times as much (32/48 = 0.667)" in text
    assert f"averages over the {r.kept} kept rows only: {r.loss_with_ignored:.4g}" in text


def test_class_weight_claim_follows_its_spread():
    # A change smaller than its spread over the seeds is not claimed either way.
    r = dataclasses.replace(
        _run("class-weights"),
        minority_plain=[0.4, 0.5, 0.3],
        minority_weighted=[0.5, 0.4, 0.35],
        minority_change=(0.05 / 3, float(np.std([0.1, -0.1, 0.05], ddof=1))),
    )
    text = _prose(report._describe_class_weights, r)
    assert "no reliable effect" in text and "a rise larger" not in text
    assert "up on 2 seeds, down on 1" in text
    # Another seed makes its own claim from its own runs.
    other = _run("class-weights", Config(quick=True, seed=2))
    assert other.seeds == [2, 3, 4]
    mean, std = other.minority_change
    text = _prose(report._describe_class_weights, other)
    assert ("a rise larger" in text) == (mean - std > 0)
    assert ("a fall larger" in text) == (mean + std < 0)


def test_cross_entropy_bound_and_kl_fits():
    r = _run("kl")
    p = np.array(r.outcomes)
    assert r.entropy == pytest.approx(-(p * np.log(p)).sum())
    assert min(r.cross_entropy) >= r.entropy - 1e-12  # H(P, Q) >= H(P) on the data
    assert r.t_at_min == 1.0 and abs(r.gap_at_p) < 1e-12  # equality at Q = P
    assert r.random_min_gap > 0
    # H(P) is a constant: cross-entropy and KL differ by it everywhere, with equal gradients.
    assert np.array(r.cross_entropy) - np.array(r.kl_along) == pytest.approx(r.entropy, abs=1e-12)
    assert r.constant_gap == pytest.approx((r.entropy, r.entropy), abs=1e-12)
    assert r.gradient_gap < 1e-12
    assert int(np.argmin(r.kl_along)) == int(np.argmin(r.cross_entropy))
    ts = torch.tensor(r.ts, dtype=torch.float64)
    q = torch.softmax(ts[:, None] * torch.tensor(p).log(), dim=1)
    reference = torch.nn.functional.kl_div(q.log(), torch.tensor(p).expand_as(q), reduction="none")
    assert r.kl_along == pytest.approx(reference.sum(1).tolist(), abs=1e-12)
    forward, reverse = r.fits
    # Q's std and mean straight from its probabilities on the grid, with numpy.
    x = np.array(r.x)
    for fit in r.fits:
        q = np.array(fit.q)
        mean = (q * x).sum()
        assert fit.mean == pytest.approx(mean, abs=1e-9)
        assert fit.std == pytest.approx(np.sqrt((q * (x - mean) ** 2).sum()), rel=1e-9)
    p_grid = np.array(r.p)
    assert r.p_std == pytest.approx(np.sqrt((p_grid * x**2).sum() - (p_grid * x).sum() ** 2))
    # Forward KL matches P's moments; its Gaussian, cut to the grid, has a wider sigma.
    assert abs(forward.mean) < 0.2 and forward.std == pytest.approx(r.p_std, rel=0.02)
    assert forward.sigma > forward.std + 0.1
    assert abs(abs(reverse.mean) - 2.5) < 0.2 and reverse.std < 0.8  # locks onto one peak
    assert forward.forward_kl < reverse.forward_kl and reverse.reverse_kl < forward.reverse_kl
    text = _prose(report._describe_kl, r)
    assert f"std {forward.std:.2f}" in text and f"std {reverse.std:.2f}" in text
    assert "never below 0" in text and "The forward fit spreads over both peaks" in text
    assert "minimising the cross-entropy minimises the KL divergence" in text
    assert f"between {r.constant_gap[0]:.6f} and {r.constant_gap[1]:.6f}" in text
    assert "both are lowest at t = 1, where Q = P" in text
    assert "-0.0" not in text  # a mean that rounds to zero is printed as 0


def test_triplet():
    r = _run("triplet")
    assert r.knn_after > r.knn_before + 0.3
    assert r.loss[-1] < r.loss[0]
    assert len(r.before) == len(r.after) == len(r.labels) and len(r.after[0]) == 2
    a, p, n = r.indices
    assert r.labels[a] == r.labels[p] != r.labels[n] and a != p
    for t, emb in ((r.triplet_before, r.before), (r.triplet_after, r.after)):
        assert t.anchor == emb[a] and t.positive == emb[p] and t.negative == emb[n]
        assert t.d_ap == pytest.approx(math.dist(emb[a], emb[p]), rel=1e-5)
        assert t.d_an == pytest.approx(math.dist(emb[a], emb[n]), rel=1e-5)
        assert t.loss == pytest.approx(max(t.d_ap - t.d_an + r.margin, 0), abs=1e-4)
    assert r.triplet_before.loss > 0  # the hard triplet violates the margin before training
    # The embedding's spread, from numpy; the prose measures the distances against it.
    for spread, emb in ((r.spread_before, r.before), (r.spread_after, r.after)):
        e = np.array(emb)
        assert spread == pytest.approx(np.sqrt(((e - e.mean(0)) ** 2).sum(1).mean()), rel=1e-5)
    tb, ta = r.triplet_before, r.triplet_after
    assert r.spread_after > 2 * r.spread_before  # the whole embedding grew
    assert ta.d_an / ta.d_ap > tb.d_an / tb.d_ap  # and the triplet improved relative to itself
    text = _prose(report._describe_triplet, r)
    assert f"({tb.d_ap:.3g} → {ta.d_ap:.3g})" in text
    assert f"from {r.spread_before:.3g} to {r.spread_after:.3g}" in text
    assert f"d(a, n)/d(a, p) from {tb.d_an / tb.d_ap:.3g} to {ta.d_an / ta.d_ap:.3g}" in text
    assert f"d(a, p) went from {tb.d_ap / r.spread_before:.3g} to" in text


def test_triplet_figure_shows_the_anchor_over_a_close_negative():
    from lossopt.lab import plots

    r = _run("triplet")
    assert r.triplet_before.d_an < 0.1 * r.triplet_before.d_ap  # the negative sits on the anchor
    [(_, fig)] = plots.triplet(r)
    before = fig.axes[0]
    drawn = list(before.collections)
    points = {c.get_label(): c for c in drawn}
    anchor, negative = points["anchor"], points["negative"]
    # Drawn after the negative, as an open ring larger than the negative's mark: both visible.
    assert drawn.index(anchor) > drawn.index(negative)
    assert len(anchor.get_facecolors()) == 0 and len(anchor.get_edgecolors()) == 1
    assert anchor.get_sizes()[0] > 2 * negative.get_sizes()[0]
    assert {t.get_text() for t in before.texts} >= {"a", "p", "n"}
    plots.plt.close(fig)


def test_derivative():
    r = _run("derivative")
    for t in r.tangents:
        assert t.forward_difference == pytest.approx(t.autograd, abs=10 * r.h)
    assert abs(r.tangents[1].autograd) < 1e-9 and r.tangents[1].w == r.w_star
    best = int(np.argmin(r.forward_error))
    assert 0 < best < len(r.hs) - 1  # the error falls with h, then rounding makes it rise
    assert r.forward_error[0] > 100 * r.forward_error[best]
    assert r.forward_error[-1] > 100 * r.forward_error[best]


def test_gd_vs_sgd():
    r = _run("gd-vs-sgd")
    assert len(r.gd_loss) == len(r.sgd_loss) == r.steps + 1
    assert r.gd_loss[-1] < r.gd_loss[0] and r.sgd_loss[-1] < r.sgd_loss[0]
    assert r.gd_rises == 0 and r.sgd_rises > 0  # full-batch steps never go up here
    assert min(r.sgd_gradient_noise) > 0
    seen = r.steps * r.batch_size
    k = round(seen / r.train_size)
    assert r.sgd_loss[-1] < r.gd_loss[k]  # per example read, SGD is ahead
    assert "per example read, SGD is ahead" in _prose(report._describe_gd_vs_sgd, r)
    plain, _ = report.split_timings(report._plain(r))
    assert not any(key.startswith("seconds") for key in plain)


def test_learning_rate():
    r = _run("learning-rate")
    small, right, large = r.paths
    assert r.curvature == pytest.approx(2.0)
    assert small.lr < right.lr < 2 / r.curvature < large.lr
    assert large.values[-1] > 1e3 * large.values[0]
    assert small.values[-1] > 0.1 * small.values[0]  # crawled
    assert right.values[-1] < 1e-2 * right.values[0]
    assert r.range_test.lrs[0] < r.range_test.suggested_lr < r.range_test.lrs[-1]
    text = _prose(report._describe_lr, r)
    assert "it diverges" in text and text.count("fell from") == 2


def _zigzag(points):
    """Total turning of the path: the sum of the angles between successive steps."""
    d = np.diff(np.array(points), axis=0)
    cos = (d[1:] * d[:-1]).sum(1) / (np.linalg.norm(d[1:], axis=1) * np.linalg.norm(d[:-1], axis=1))
    return np.arccos(np.clip(cos, -1, 1)).sum()


def test_optimizer_paths_teach_the_lecture():
    r = _run("paths")
    paths = {p.optimizer: p for p in r.paths}
    assert list(paths) == ["sgd", "momentum", "adagrad", "rmsprop", "adam"]
    for name, p in paths.items():
        assert p.lr == PATH_LRS[name] and len(p.points) == r.steps + 1 == 31
        assert p.points[0] == r.start and not p.diverged
        assert p.values[-1] < p.values[0] / 10  # every path gets well down the bowl
        ys = [y for _, y in p.points]
        assert p.crossings == sum(a * b < 0 for a, b in zip(ys, ys[1:], strict=False))
    sgd, momentum, adagrad = paths["sgd"], paths["momentum"], paths["adagrad"]
    # Momentum smooths SGD's zig-zag, by two measures.
    assert momentum.crossings < sgd.crossings / 3
    assert _zigzag(momentum.points) < _zigzag(sgd.points) / 3
    # AdaGrad's steps shrink, every one of them.
    lengths = adagrad.step_lengths
    assert all(b < a for a, b in zip(lengths, lengths[1:], strict=False))
    text = _prose(report._describe_paths, r)
    assert f"SGD crosses the valley floor y = 0 {sgd.crossings} times" in text
    assert "its velocity averages out" in text
    assert f"each of its {len(lengths) - 1} later steps is shorter" in text


def test_paths_compare_momentum_and_sgd_fairly():
    r = _run("paths")
    paths = {p.optimizer: p for p in r.paths}
    sgd, momentum, matched = paths["sgd"], paths["momentum"], r.matched
    assert r.curvatures == pytest.approx((0.1, 2.0))
    # Momentum's effective step lr / (1 - alpha), and Momentum run at SGD's.
    assert momentum.momentum == 0.9 and sgd.momentum == 0.0
    assert momentum.effective_lr == pytest.approx(momentum.lr / (1 - 0.9))
    assert sgd.effective_lr == sgd.lr
    assert matched.optimizer == "momentum"
    assert matched.effective_lr == pytest.approx(sgd.effective_lr)
    assert matched.lr == pytest.approx(sgd.lr * (1 - 0.9))
    # The factors: |1 - lr curvature| for SGD; the heavy ball's sqrt(alpha) when it swings.
    assert sgd.contraction == pytest.approx(tuple(abs(1 - sgd.lr * c) for c in r.curvatures))
    assert momentum.contraction == pytest.approx((math.sqrt(0.9), math.sqrt(0.9)))
    # ...which the runs follow: along x, the distance shrinks at about that factor.
    for p in (sgd, momentum):
        xs = np.abs([x for x, _ in p.points])
        measured = (xs[-1] / xs[0]) ** (1 / r.steps)
        assert measured <= p.contraction[0] * 1.05
    assert sgd.values[-1] < momentum.values[-1] and sgd.values[-1] < matched.values[-1]
    text = _prose(report._describe_paths, r)
    assert "Yet SGD ends lower" in text
    assert f"its effective step is η/(1 − α) = {momentum.effective_lr:.3g}" in text
    assert f"against SGD's {sgd.effective_lr:.3g}" in text
    assert f"Momentum ends at f {matched.values[-1]:.3g}, still above SGD's" in text
    assert "a smooth path, not a faster one" in text


def test_paths_prose_when_momentum_is_faster():
    # A small rate for both: Momentum's velocity then outruns SGD along the flat x.
    r = _run("paths", Config(quick=True, optimizers=("sgd", "momentum"), lr=0.05))
    sgd, momentum = r.paths
    assert max(momentum.contraction) < max(sgd.contraction)
    assert momentum.values[-1] < sgd.values[-1]
    text = _prose(report._describe_paths, r)
    assert "Momentum ends lower" in text and "it also converges faster" in text
    assert "Yet SGD" not in text


def test_paths_prose_with_a_rate_that_diverges():
    r = _run("paths", Config(quick=True, lr=100.0))
    assert all(p.lr == 100.0 for p in r.paths)
    assert r.paths[0].diverged  # SGD at lr 100 leaves the bowl
    text = _prose(report._describe_paths, r)
    sgd, momentum = r.paths[0], r.paths[1]
    assert ("its velocity averages out" in text) == (momentum.crossings < sgd.crossings)
    assert "(diverged)" in text


def test_momentum_forms():
    r = _run("momentum")
    constant, drop = r.runs
    assert constant.max_difference < 1e-12  # v = -lr b: the same path
    assert constant.max_relative_difference < 1e-12
    assert drop.max_difference > 0.1  # a changing rate separates them
    assert drop.lrs[r.drop_step - 2] == 10 * drop.lrs[r.drop_step - 1]
    i = r.drop_step - 1
    torch_steps = [
        math.dist(a, b) for a, b in zip(drop.torch_form, drop.torch_form[1:], strict=False)
    ]
    lecture_steps = [math.dist(a, b) for a, b in zip(drop.lecture, drop.lecture[1:], strict=False)]
    assert torch_steps[i] < torch_steps[i - 1] / 5  # all of b rescaled at once
    assert lecture_steps[i] > lecture_steps[i - 1] / 2  # old rates fade by alpha per step
    assert lecture_steps[:i] == pytest.approx(torch_steps[:i], rel=1e-9)
    text = _prose(report._describe_momentum, r)
    assert "up to float64 rounding" in text and "scales all of it at once" in text


def test_adaptive_steps():
    r = _run("adaptive")
    assert all(
        b < a for a, b in zip(r.adagrad, r.adagrad[1:], strict=False)
    )  # AdaGrad only shrinks
    assert r.rmsprop[-1] > 5 * r.adagrad[-1]
    tail = r.rmsprop[len(r.rmsprop) * 3 // 4 :]
    assert (max(tail) - min(tail)) / max(tail) < 0.2  # RMSProp levels off
    assert r.adam_actual == pytest.approx(r.adam_corrected, rel=1e-9)
    b1, b2 = r.adam_betas
    assert r.adam_uncorrected[0] == pytest.approx(
        r.adam_corrected[0] * (1 - b1) / math.sqrt(1 - b2), rel=1e-3
    )
    assert r.adam_corrected[0] == pytest.approx(r.lr, rel=1e-6)


def test_adaptive_lecture_points():
    r = _run("adaptive")
    b1, b2 = r.adam_betas
    gamma, eps = r.rmsprop_alpha, r.rmsprop_eps
    text = _prose(report._describe_adaptive, r)
    # AdaGrad: one rate per element, larger where the gradients are small (x, flat).
    rates = np.array(r.adagrad_elements)
    assert (rates[:, 0] > 2 * rates[:, 1]).all()
    # The first step: h = g², so each rate is lr / |g| with g = (x/10, 2y) at the start.
    x, y = (-7.0, 2.0)
    assert rates[0] == pytest.approx([r.adagrad_lr / abs(x / 10), r.adagrad_lr / abs(2 * y)])
    assert f"{rates[0][0] / rates[0][1]:.3g} times less" in text
    # RMSProp's first step is lr / sqrt(1 - gamma) whatever the gradient; Adam's is lr.
    assert r.rmsprop_first_step == pytest.approx(r.lr / math.sqrt(1 - gamma), rel=1e-6)
    assert f"η/√(1 − γ) = {1 / math.sqrt(1 - gamma):.3g} times" in text
    # Adam = Momentum + RMSProp, on lossopt's own states.
    assert r.adam_vs_momentum < 1e-12 and r.adam_vs_rmsprop < 1e-12
    assert "Adam = Momentum + RMSProp" in text
    # eps inside the root (the lecture) against outside (torch): the formula and the run.
    for g, inside, outside in zip(r.eps_gradients, r.eps_inside, r.eps_outside, strict=True):
        assert inside == pytest.approx(r.lr * g / math.sqrt((1 - gamma) * g * g + eps))
        assert outside == pytest.approx(r.lr * g / (math.sqrt((1 - gamma) * g * g) + eps))
    big, small = r.eps_gradients.index(1.0), r.eps_gradients.index(1e-6)
    assert r.eps_inside[big] == pytest.approx(r.eps_outside[big], rel=1e-5)
    assert r.eps_inside[small] < r.eps_outside[small] / 100
    assert f"the lecture's step is {r.eps_inside[small]:.3g} and torch's" in text


def test_training():
    r = _run("training")
    assert {x.optimizer for x in r.ranking} == set(QUICK.optimizers)
    means = [x.metric_mean for x in r.ranking]
    assert means == sorted(means, reverse=True)
    assert r.ranking[0].metric_mean > 0.8
    assert len(r.runs) == 2 * len(QUICK.optimizers) and r.lr_source == "grid-middle"
    text = _prose(report._describe_training, r)
    assert "the middle of the starting grid" in text and "default learning rate" not in text
    assert "SGD 0.1, Momentum 0.01" in text  # the rates the runs used
    # Momentum at 0.01 with alpha 0.9 takes SGD's effective step 0.1: said, with the gap.
    assert r.effective_lrs["momentum"] == pytest.approx(0.01 / (1 - r.momentum["momentum"]))
    assert r.effective_lrs["sgd"] == 0.1
    assert "= 0.1, the same as SGD's 0.1" in text
    found = {x.optimizer: x for x in r.ranking}
    gap = abs(found["sgd"].metric_mean - found["momentum"].metric_mean)
    assert f"differ by {gap:.4f}" in text


def test_training_with_one_user_rate_says_so():
    r = _run("training", Config(quick=True, optimizers=("sgd", "adam"), lr=0.05, steps=1))
    assert r.lr_source == "user" and all(run.lr == 0.05 for run in r.runs)
    assert "given by --lr, 0.05" in _prose(report._describe_training, r)


def _run_of(name, metric):
    return Run(name, 0.1, 0, [1.0], [1.0], [metric], 0.0)


def test_ties_share_a_place():
    ranking = rank(
        [_run_of("sgd", 0.9), _run_of("adam", 0.95), _run_of("momentum", 0.95)],
        higher_is_better=True,
    )
    assert [x.optimizer for x in ranking] == ["adam", "momentum", "sgd"]
    table = report._ranking_table(ranking, "accuracy")
    assert table.count("<td>1=</td>") == 2 and "<td>3</td>" in table and "<td>2" not in table
    assert report.places(["0.9500", "0.9500", "0.9000", "0.9000", "0.8"]) == [1, 1, 3, 3, 5]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_prose_is_plain_text_with_finite_numbers(name):
    text = re.sub("<[^>]+>", " ", _prose(report.SECTIONS[name].describe, _run(name)))
    assert "[" not in text and "]" not in text  # no raw Python list
    assert not re.search(r"\b(nan|inf|None)\b", text), text
    assert "-0.0" not in text.replace("e-0", "")


def test_results_json_identical_for_the_same_seed():
    def plain(results):
        kept, _ = report.split_timings(report._plain(results))
        return json.dumps(kept, sort_keys=True)

    fresh = {name: run(QUICK) for name, run in EXPERIMENTS.items()}
    assert plain(fresh) == plain({name: _run(name) for name in EXPERIMENTS})


def test_same_seed_same_results():
    def plain(config):
        results = {name: EXPERIMENTS[name](config) for name in ("paths", "gd-vs-sgd", "kl")}
        kept, _ = report.split_timings(report._plain(results))
        return json.dumps(kept, sort_keys=True)

    assert plain(Config(quick=True, seed=2)) == plain(Config(quick=True, seed=2))
    assert plain(Config(quick=True, seed=2)) != plain(Config(quick=True, seed=3))


def test_config_narrows_runs():
    config = Config(quick=True, optimizers=("sgd", "adam"), lr=0.05, steps=7)
    r = EXPERIMENTS["paths"](config)
    assert [p.optimizer for p in r.paths] == ["sgd", "adam"]
    assert all(p.lr == 0.05 and len(p.values) == 8 for p in r.paths)


def test_entropy_figure_is_softmax_and_cross_entropy():
    from lossopt.lab import plots

    r = _run("entropy")
    [(_, fig)] = plots.entropy(r)
    panel = fig.axes[2]
    heights = [bar.get_height() for bar in panel.patches]
    assert heights == pytest.approx(r.softmax)  # the softmax of the logits, one bar a class
    texts = " ".join(t.get_text() for t in panel.texts)
    for loss in r.cross_entropy:
        assert f"−log p = {loss:.3f}" in texts  # the loss if that class is the true one
    assert "smoothing" not in panel.get_title().lower()
    plots.plt.close(fig)


def test_sections_number_themselves_and_box_each_equation(tmp_path):
    for name, section in report.SECTIONS.items():
        assert not re.match(r"\s*\d", section.title), name  # no number typed by hand
        for equation in section.equations:
            # A "·" between two formulas reads as a product: one box per formula instead.
            assert "&nbsp;·&nbsp;" not in equation and " · " not in equation, name
    r = _run("entropy")
    index = report.write({"entropy": r}, tmp_path / "one", {"seed": 0})
    text = index.read_text()
    # The number is the section's place in the lecture, even alone on the page.
    assert "<h2>2. Entropy, softmax and cross-entropy</h2>" in text
    assert "nav id='contents'" not in text  # a page of one section needs no contents
    boxes = re.findall(r"<div class='eq'>(.*?)</div>", text)
    assert len(boxes) == len(report.SECTIONS["entropy"].equations) == 3
    both = report.write(
        {"kl": _run("kl"), "entropy": r}, tmp_path / "two", {"seed": 0}, try_lines=False
    ).read_text()
    assert "<a href='#kl'>4. KL divergence" in both and "<a href='#entropy'>2. Entropy" in both
    assert "class='try'" not in both
