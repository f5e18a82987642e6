"""The loss explorables: L1 / L2 / Huber fits, softmax and cross-entropy,
entropy and the two KL divergences, and the triplet margin. Every value is
lossopt.losses' (fits by lossopt.optim)."""

from __future__ import annotations

import functools
import math

import torch

from lossopt import losses, optim
from lossopt.lab import pictures
from lossopt.lab.figures import Axis, Figure, Series
from lossopt.lab.i18n import N_, _
from lossopt.lab.knobs import Knob
from lossopt.lab.live.explorable import Explorable, View

F64 = torch.float64


# -- L1 / L2 / Huber ---------------------------------------------------------------------
REGRESSION_KNOBS = (
    Knob("outliers", N_("points pushed off the line"), 8, kind="int", lo=0, hi=20),
    Knob("offset", N_("how far the outliers are pushed (in y)"), 25.0, lo=-40.0, hi=40.0, step=0.5),
    Knob("noise", N_("spread of the other points around the line"), 0.5, lo=0.0, hi=3.0, step=0.05),
    Knob(
        "delta",
        N_("Huber's δ: quadratic below, linear above"),
        1.0,
        lo=0.05,
        hi=20.0,
        scale="log",
        label="δ",
    ),  # fmt: skip
    Knob("seed", N_("which random points"), 0, kind="int", lo=0, hi=10_000),
    # A point of the learner's own, fitted with the others: a click on the board places it.
    Knob("point-x", N_("x of your point (or click on the board)"), 0.0, lo=-5.0, hi=5.0, step=0.1),
    Knob(
        "point-y", N_("y of your point (or click on the board)"), 1.0, lo=-40.0, hi=60.0, step=0.5
    ),
)
TRUE_LINE = (2.0, 1.0)  # slope, intercept
POINTS = 60
FIT_STEPS = 200


def _points(outliers: int, offset: float, noise: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(POINTS, generator=g, dtype=F64) * 10 - 5
    y = TRUE_LINE[0] * x + TRUE_LINE[1] + noise * torch.randn(POINTS, generator=g, dtype=F64)
    off = torch.zeros(POINTS, dtype=torch.bool)
    off[torch.randperm(POINTS, generator=g)[:outliers]] = True
    return x, torch.where(off, y + offset, y), off


def fit_lines(x: torch.Tensor, y: torch.Tensor, delta: float) -> dict[str, tuple[float, float]]:
    """(slope, intercept) minimising each loss: lossopt's Adam with the rate annealed to 0
    (cosine), so that L1's fit settles instead of circling its kink."""
    names = ("L1", "L2 (MSE)", "Huber")
    # Start at the least-squares-free guess (0, median): Adam then does the fitting.
    w = torch.zeros(3, 2, dtype=F64)
    w[:, 1] = y.median()
    w.requires_grad_(True)
    opt = optim.Adam([w], lr=0.3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=FIT_STEPS)
    for _step in range(FIT_STEPS):
        opt.zero_grad()
        pred = w[:, :1] * x + w[:, 1:]  # (3, points)
        (
            losses.l1_loss(pred[0], y)
            + losses.mse_loss(pred[1], y)
            + losses.huber_loss(pred[2], y, delta=delta)
        ).backward()
        opt.step()
        schedule.step()
    return {name: tuple(w[i].tolist()) for i, name in enumerate(names)}


def regression(*, outliers, offset, noise, delta, seed, point_x, point_y) -> View:
    drawn_x, drawn_y, off = _points(outliers, offset, noise, seed)
    # The learner's point last: fitted with the others, drawn apart.
    x = torch.cat([drawn_x, torch.tensor([point_x], dtype=F64)])
    y = torch.cat([drawn_y, torch.tensor([point_y], dtype=F64)])
    fits = fit_lines(x, y, delta)
    numbers = {"x": x.tolist(), "y": y.tolist(), "outlier": off.tolist(), "fits": {},
               "point": [point_x, point_y],
               "click": {"figure": "fits", "x": "point-x", "y": "point-y"}}  # fmt: skip
    for name, (slope, intercept) in fits.items():
        pred = slope * x + intercept
        numbers["fits"][name] = {
            "slope": slope,
            "intercept": intercept,
            "error": math.hypot(slope - TRUE_LINE[0], intercept - TRUE_LINE[1]),
            "l1": losses.l1_loss(pred, y).item(),
            "l2": losses.mse_loss(pred, y).item(),
            "huber": losses.huber_loss(pred, y, delta=delta).item(),
        }
    fit_fig = pictures.line_fits(
        drawn_x.tolist(),
        drawn_y.tolist(),
        off.tolist(),
        TRUE_LINE,
        [(name, slope, intercept) for name, (slope, intercept) in fits.items()],
        placed=(point_x, point_y),
    )
    e = torch.linspace(-4, 4, 161, dtype=F64)
    zero = torch.zeros_like(e)
    shapes = {
        "L1 |e|": losses.l1_loss(e, zero, reduction="none"),
        "L2 e²": losses.mse_loss(e, zero, reduction="none"),
        f"Huber δ = {delta:g}": losses.huber_loss(e, zero, reduction="none", delta=delta),
    }
    shape_fig = pictures.loss_shapes(e.tolist(), *(v.tolist() for v in shapes.values()), delta)
    numbers["shapes"] = {"e": e.tolist(), **{n: v.tolist() for n, v in shapes.items()}}
    f = numbers["fits"]
    notes = [
        _(
            "{outliers} of {points} points pushed {offset} off the line y = 2x + 1; your point "
            "at ({x}, {y}) is fitted with them (click on the board to move it)."
        ).format(
            outliers=outliers, points=POINTS, offset=f"{offset:g}", x=f"{point_x:g}",
            y=f"{point_y:g}",
        ),
        _(
            "L2 squares each error, so the outliers pull its fit {l2} away from the true line; "
            "L1 {l1}, Huber {huber}."
        ).format(
            l2=f"{f['L2 (MSE)']['error']:.3g}", l1=f"{f['L1']['error']:.3g}",
            huber=f"{f['Huber']['error']:.3g}",
        ),
        _(
            "Huber is L2 within δ = {delta} of the line and L1 beyond: a large δ behaves as L2, "
            "a small one as L1."
        ).format(delta=f"{delta:g}"),
    ]  # fmt: skip
    return View([fit_fig, shape_fig], numbers, notes)


# -- softmax and cross-entropy -----------------------------------------------------------
CLASSES = 3
SOFTMAX_KNOBS = (
    *(
        Knob(f"z{c}", N_("logit of this class"), d, lo=-6.0, hi=6.0, step=0.05, label=f"z{c}")
        for c, d in zip(range(CLASSES), (2.0, 1.0, 0.1), strict=True)
    ),  # fmt: skip
    *(
        Knob(
            f"w{c}",
            N_("weight of this class (cross_entropy's weight)"),
            1.0,
            lo=0.01,
            hi=10.0,
            scale="log",
            label=f"w{c}",
        )
        for c in range(CLASSES)
    ),  # fmt: skip
    Knob(
        "ignore-index",
        N_("a true class whose rows count for nothing (none: -100)"),
        "none",
        kind="choice",
        choices=("none", *map(str, range(CLASSES))),
    ),  # fmt: skip
    Knob("label-smoothing", N_("ε of label smoothing"), 0.0, lo=0.0, hi=0.9, step=0.01, label="ε"),
)


def softmax(*, z0, z1, z2, w0, w1, w2, ignore_index, label_smoothing) -> View:
    logits = torch.tensor([z0, z1, z2], dtype=F64)
    probs = torch.softmax(logits, 0)
    rows = logits.expand(CLASSES, CLASSES)  # one row per possible true class
    target = torch.arange(CLASSES)
    weight = torch.tensor([w0, w1, w2], dtype=F64)
    ignored = -100 if ignore_index == "none" else int(ignore_index)
    plain = losses.cross_entropy(rows, target, reduction="none")
    each = losses.cross_entropy(rows, target, weight=weight, ignore_index=ignored,
                                label_smoothing=label_smoothing, reduction="none")  # fmt: skip
    mean = losses.cross_entropy(rows, target, weight=weight, ignore_index=ignored,
                                label_smoothing=label_smoothing).item()  # fmt: skip
    naive = each.sum().item() / CLASSES  # what dividing by every row, ignored ones too, gives
    classes = pictures.class_names(CLASSES)
    bars = pictures.softmax_bars(probs.tolist())
    loss_fig = Figure(
        _("cross-entropy if the true class were…"),
        Axis(_("true class")),
        Axis(_("loss")),
        [
            Series("bar", "−log softmax", x=classes, y=plain.tolist(), color="#aaaaaa"),
            Series(
                "bar",
                _("with weight, ignore_index, smoothing"),
                x=classes,
                y=each.tolist(),
                color="#d62728",
            ),  # fmt: skip
        ],
        name="loss",
    )
    kept = [c for c in range(CLASSES) if c != ignored]
    if ignored != -100:
        batch = _(
            "The batch of the three rows: mean {mean}, a weighted mean over the {kept} kept rows "
            "(Σ w_y ℓ / Σ w_y); dividing by all 3 rows, the ignored one too, would give {naive}."
        )
    else:
        batch = _(
            "The batch of the three rows: mean {mean}, a weighted mean over the {kept} kept rows "
            "(Σ w_y ℓ / Σ w_y)."
        )
    notes = [
        _("softmax = {probabilities} (sum {total}).").format(
            probabilities=", ".join(f"{p:.3f}" for p in probs.tolist()), total=f"{probs.sum():.3f}"
        ),
        _("The loss is −log of the probability given to the true class: {losses}.").format(
            losses=", ".join(f"{v:.3f}" for v in plain.tolist())
        ),
        batch.format(mean=f"{mean:.4f}", kept=len(kept), naive=f"{naive:.4f}"),
    ]
    if label_smoothing:
        notes.append(
            _(
                "Label smoothing ε = {epsilon} puts ε/C on every class: the loss no longer "
                "reaches 0 even for a confident right answer."
            ).format(epsilon=f"{label_smoothing:g}")
        )
    numbers = {"softmax": probs.tolist(), "plain": plain.tolist(), "rows": each.tolist(),
               "mean": mean, "naive_mean": naive, "ignore_index": ignored}  # fmt: skip
    return View([bars, loss_fig], numbers, notes)


# -- entropy, H(P, Q) >= H(P), forward and reverse KL ------------------------------------
GRID = torch.linspace(-6, 6, 241, dtype=F64)
P_MODES, P_SPREAD = 2.5, 0.5


def _log_mixture(x: torch.Tensor, mean, spread, mix) -> torch.Tensor:
    """log of (1 - mix) N(mean, spread) + mix N(-mean, spread), unnormalised on the grid;
    x broadcasts against mean (a scan over means)."""
    one = -0.5 * ((x - mean) / spread) ** 2
    two = -0.5 * ((x + mean) / spread) ** 2
    weights = torch.tensor([1 - mix, mix], dtype=F64).clamp_min(1e-300).log()
    return torch.logsumexp(torch.stack([one + weights[0], two + weights[1]]), dim=0)


def _normalised(logits: torch.Tensor) -> torch.Tensor:
    return torch.log_softmax(logits, dim=-1)


P_LOG = _normalised(_log_mixture(GRID, P_MODES, P_SPREAD, 0.5))


def _entropy(log_p: torch.Tensor) -> float:
    # H(P) = H(P, P): lossopt's cross-entropy with P as both target and prediction
    return losses.cross_entropy(log_p, log_p.exp()).item()


@functools.lru_cache(maxsize=1)
def best_gaussians(steps: int = 600) -> dict[str, tuple[float, float]]:
    """The single Gaussian (mean, spread) that minimises KL(P || Q) and KL(Q || P),
    fitted by lossopt's Adam through lossopt's kl_divergence; P is fixed, so once."""
    out = {}
    for direction, start in (("forward", 0.5), ("reverse", 0.5)):
        params = torch.tensor([start, 0.0], dtype=F64, requires_grad=True)
        opt = optim.Adam([params], lr=0.05)
        for _step in range(steps):
            opt.zero_grad()
            q = -0.5 * ((GRID - params[0]) / params[1].exp()) ** 2
            pair = (P_LOG, q) if direction == "forward" else (q, P_LOG)
            losses.kl_divergence(*pair).backward()
            opt.step()
        out[direction] = (params[0].item(), params[1].exp().item())
    return out


KL_KNOBS = (
    Knob(
        "q-mean",
        N_("Q's mode (its second mode, when mixed, sits at −mean)"),
        0.0,
        lo=-5.0,
        hi=5.0,
        step=0.05,
        label=N_("Q mean"),
    ),  # fmt: skip
    Knob(
        "q-spread",
        N_("Q's standard deviation"),
        1.5,
        lo=0.2,
        hi=5.0,
        scale="log",
        label=N_("Q spread"),
    ),
    Knob(
        "q-mix",
        N_("weight of Q's second mode (0: one Gaussian)"),
        0.0,
        lo=0.0,
        hi=1.0,
        step=0.01,
        label=N_("Q mix"),
    ),  # fmt: skip
)


def kl(*, q_mean, q_spread, q_mix) -> View:
    q_log = _normalised(_log_mixture(GRID, q_mean, q_spread, q_mix))
    p = P_LOG.exp()
    h_p = _entropy(P_LOG)
    h_pq = losses.cross_entropy(q_log, p).item()
    forward = losses.kl_divergence(P_LOG, q_log).item()
    reverse = losses.kl_divergence(q_log, P_LOG).item()
    best = best_gaussians()
    x = GRID.tolist()
    shown = [
        ("P", P_LOG.exp().tolist(), "#000000", False),
        ("Q", q_log.exp().tolist(), "#d62728", False),
    ]
    for name, color in (("forward", "#1f77b4"), ("reverse", "#2ca02c")):
        mean, spread = best[name]
        q_best = _normalised(-0.5 * ((GRID - mean) / spread) ** 2).exp().tolist()
        shown.append((f"argmin KL({'P‖Q' if name == 'forward' else 'Q‖P'})", q_best, color, True))
    dist = pictures.distributions(x, shown)
    # The same measures over Q's mean, the other knobs fixed.
    means = torch.linspace(-5, 5, 101, dtype=F64)
    scan_log = _normalised(_log_mixture(GRID[None, :], means[:, None], q_spread, q_mix))
    scan_h = losses.cross_entropy(scan_log, p.expand(len(means), -1), reduction="none")
    scan_f = losses.kl_divergence(P_LOG.expand(len(means), -1), scan_log, reduction="none")
    scan_r = losses.kl_divergence(scan_log, P_LOG.expand(len(means), -1), reduction="none")
    m = means.tolist()
    scan = pictures.cross_entropy_bound(
        m,
        scan_h.tolist(),
        h_p,
        [("KL(P‖Q)", scan_f.tolist(), "#1f77b4"), ("KL(Q‖P)", scan_r.tolist(), "#2ca02c")],
        axis=Axis(_("Q mean")),
        title=_("over Q's mean (spread and mix as set)"),
        mark=q_mean,
        mark_name=_("Q mean"),
        top=8,
    )
    notes = [
        _(
            "H(P) = {entropy} nats is fixed by the data; H(P, Q) = {cross_entropy} = H(P) + "
            "KL(P‖Q) (KL = {forward}). Minimising cross-entropy over Q minimises KL(P‖Q)."
        ).format(entropy=f"{h_p:.4f}", cross_entropy=f"{h_pq:.4f}", forward=f"{forward:.4f}"),
        _(
            "H(P, Q) ≥ H(P), with equality only at Q = P: set Q mean {modes}, spread {spread}, "
            "mix 0.5."
        ).format(modes=P_MODES, spread=P_SPREAD),
        _(
            "Reverse KL(Q‖P) = {reverse}: it punishes Q where P is small, so its best Gaussian "
            "sits on one mode (mean {reverse_mean}, spread {reverse_spread}); forward KL "
            "punishes missing P's mass, so its best covers both (mean {forward_mean}, spread "
            "{forward_spread})."
        ).format(
            reverse=f"{reverse:.4f}",
            reverse_mean=f"{best['reverse'][0]:.2f}",
            reverse_spread=f"{best['reverse'][1]:.2f}",
            forward_mean=f"{best['forward'][0]:.2f}",
            forward_spread=f"{best['forward'][1]:.2f}",
        ),
    ]
    numbers = {"x": x, "p": p.tolist(), "q": q_log.exp().tolist(), "entropy": h_p,
               "cross_entropy": h_pq, "forward_kl": forward, "reverse_kl": reverse,
               "best": {k: list(v) for k, v in best.items()},
               "scan": {"means": m, "cross_entropy": scan_h.tolist(),
                        "forward_kl": scan_f.tolist(), "reverse_kl": scan_r.tolist()}}  # fmt: skip
    return View([dist, scan], numbers, notes)


# -- triplet -----------------------------------------------------------------------------
TRIPLET_KNOBS = (
    Knob("ax", N_("anchor x"), 0.0, lo=-3.0, hi=3.0, step=0.05),
    Knob("ay", N_("anchor y"), 0.0, lo=-3.0, hi=3.0, step=0.05),
    Knob("px", N_("positive x"), 1.0, lo=-3.0, hi=3.0, step=0.05),
    Knob("py", N_("positive y"), 0.5, lo=-3.0, hi=3.0, step=0.05),
    Knob("nx", N_("negative x"), 1.5, lo=-3.0, hi=3.0, step=0.05),
    Knob("ny", N_("negative y"), -1.0, lo=-3.0, hi=3.0, step=0.05),
    Knob(
        "margin",
        N_("the margin (torch's and lossopt's must be > 0)"),
        1.0,
        lo=0.05,
        hi=3.0,
        step=0.05,
    ),  # fmt: skip
)
KIND_COLORS = pictures.KIND_COLORS
# The placed negative's note, one whole sentence per kind
KIND_SAID = {
    "easy": N_("d(a, p) = {d_ap}, d(a, n) = {d_an}: loss = max(d(a, p) − d(a, n) + {margin}, 0) "
               "= {loss}; this negative is easy."),
    "semi-hard": N_("d(a, p) = {d_ap}, d(a, n) = {d_an}: loss = max(d(a, p) − d(a, n) + "
                    "{margin}, 0) = {loss}; this negative is semi-hard."),
    "hard": N_("d(a, p) = {d_ap}, d(a, n) = {d_an}: loss = max(d(a, p) − d(a, n) + {margin}, 0) "
               "= {loss}; this negative is hard."),
}  # fmt: skip


@functools.lru_cache(maxsize=1)
def _others() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(40, 2, generator=g, dtype=F64) * 6 - 3


kind = pictures.negative_kind


def triplet(*, ax, ay, px, py, nx, ny, margin) -> View:
    a, pos = torch.tensor([[ax, ay]], dtype=F64), torch.tensor([[px, py]], dtype=F64)
    negatives = torch.cat([torch.tensor([[nx, ny]], dtype=F64), _others()])
    count = len(negatives)
    each = losses.triplet_margin_loss(a.expand(count, 2), pos.expand(count, 2), negatives,
                                      margin=margin, reduction="none")  # fmt: skip
    d_ap = losses.pairwise_distance(a, pos).item()
    d_an = losses.pairwise_distance(a.expand(count, 2), negatives)
    kinds = [kind(d_ap, d, margin) for d in d_an.tolist()]
    others = [(x, y, k) for (x, y), k in zip(negatives[1:].tolist(), kinds[1:], strict=True)]
    board = pictures.triplet_board(
        (ax, ay),
        (px, py),
        (nx, ny),
        margin=margin,
        d_ap=d_ap,
        kind=kinds[0],
        others=others,
        box=(-3.5, 3.5),
    )
    loss = each[0].item()
    counts = {k: kinds[1:].count(k) for k in KIND_COLORS}
    notes = [
        _(KIND_SAID[kinds[0]]).format(
            d_ap=f"{d_ap:.3f}", d_an=f"{d_an[0].item():.3f}", margin=f"{margin:g}",
            loss=f"{loss:.3f}",
        ),
        _(
            "Of the {others} other negatives, {hard} are hard (inside the solid circle), "
            "{semi_hard} semi-hard (between the circles: still a loss) and {easy} easy "
            "(outside: loss 0)."
        ).format(
            others=count - 1, hard=counts["hard"], semi_hard=counts["semi-hard"],
            easy=counts["easy"],
        ),
        _(
            "The loss compares distances only: moving all points apart together changes "
            "nothing but their scale; a larger margin turns easy negatives into semi-hard ones."
        ),
    ]  # fmt: skip
    numbers = {"d_ap": d_ap, "d_an": d_an[0].item(), "loss": loss, "kind": kinds[0],
               "negatives": [{"x": n[0], "y": n[1], "d": d, "loss": v, "kind": k}
                             for n, d, v, k in zip(negatives.tolist(), d_an.tolist(),
                                                   each.tolist(), kinds, strict=True)],
               "counts": counts,
               # a click moves the nearest of the three points there
               "click": {"figure": "embedding",
                         "points": [["ax", "ay"], ["px", "py"], ["nx", "ny"]]}}  # fmt: skip
    return View([board], numbers, notes)


EXPLORABLES = (
    Explorable(
        "regression",
        N_("L1, L2 and Huber"),
        N_(
            "Push some points off the line and watch three fits: L2 (MSE) follows the outliers, "
            "L1 ignores them, Huber is between, by δ."
        ),
        REGRESSION_KNOBS,
        regression,
    ),
    Explorable(
        "softmax",
        N_("Softmax and cross-entropy"),
        N_(
            "Move the logits: softmax turns them into probabilities, and cross-entropy is −log of "
            "the one the true class gets. Class weights, ignore_index and label smoothing change "
            "each row's loss and the batch mean."
        ),
        SOFTMAX_KNOBS,
        softmax,
    ),
    Explorable(
        "kl",
        N_("Entropy, cross-entropy and KL"),
        N_(
            "Move Q against a fixed two-mode P: H(P, Q) never falls below H(P), and the forward "
            "and reverse KL divergences prefer different Q."
        ),
        KL_KNOBS,
        kl,
    ),
    Explorable(
        "triplet",
        N_("The triplet margin"),
        N_(
            "Place anchor, positive and negative and set the margin: the loss, and which negatives "
            "are easy, semi-hard or hard."
        ),
        TRIPLET_KNOBS,
        triplet,
    ),
)
