"""The optimizer explorables: paths on a surface, the learning rate against the
stability limit, and adaptive step sizes. Every step is taken by lossopt.optim."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch

from lossopt import optim
from lossopt.lab import pictures
from lossopt.lab.experiments.optimization import (
    ESCAPE,
    PATH_LRS,  # the report's rates: the classic textbook figure's
    SURFACES,
    bowl,
    curvatures,
    trace,
)
from lossopt.lab.figures import Series
from lossopt.lab.i18n import N_, _
from lossopt.lab.knobs import Knob
from lossopt.lab.live.explorable import Explorable, View
from lossopt.lab.optimizers import OPTIMIZERS
from lossopt.lab.page import COLORS

NAMES = tuple(OPTIMIZERS)  # the lecture's five, by the lab's names
LABELS = {name: spec.label for name, spec in OPTIMIZERS.items()}
BOUNDS = pictures.BOUNDS  # the window every surface is drawn in


def build(name: str, params, *, lr, momentum, gamma, beta1, beta2, eps) -> torch.optim.Optimizer:
    """One of the lecture's optimizers with the explorable's hyperparameters.
    AdaGrad, RMSProp and Adam share one ε (torch adds it outside the root)."""
    if name == "sgd":
        return optim.SGD(params, lr=lr)
    if name == "momentum":
        return optim.SGD(params, lr=lr, momentum=momentum)
    if name == "adagrad":
        return optim.Adagrad(params, lr=lr, eps=eps)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, alpha=gamma, eps=eps)
    return optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps)


# -- surfaces --------------------------------------------------------------------------


@functools.lru_cache(maxsize=32)
def _contour(surface: str, condition: float) -> Series:
    x0, x1, y0, y1 = BOUNDS
    xs = torch.linspace(x0, x1, 61, dtype=torch.float64)
    ys = torch.linspace(y0, y1, 31, dtype=torch.float64)
    least = SURFACES[surface].least
    z = (SURFACES[surface].f(xs[None, :], ys[:, None], condition) - least).clamp_min(0).sqrt()
    return pictures.contour(xs.tolist(), ys.tolist(), z.tolist())


def curvature(surface: str, condition: float, at: tuple[float, float]) -> float:
    """The largest eigenvalue of the Hessian at `at` (constant on the bowl)."""
    return curvatures(lambda x, y: SURFACES[surface].f(x, y, condition), at)[1]


@dataclass
class Path:
    points: list[tuple[float, float]]  # the start, then one point per step
    values: list[float]
    diverged: bool


def descend(runs: list[tuple[str, dict]], surface: str, condition: float, start, steps: int):
    """One Path per (optimizer, its hyperparameters), all from `start`, by the report's
    loop (experiments.optimization.trace)."""
    f = SURFACES[surface].f
    makers = [functools.partial(build, name, **hyper) for name, hyper in runs]
    found = trace(makers, lambda x, y: f(x, y, condition), start, steps)
    return [Path(points, values, diverged) for points, values, diverged in found]


def _crossings(points) -> int:
    ys = [y for _, y in points]
    return sum(1 for a, b in zip(ys, ys[1:], strict=False) if a * b < 0)


# -- optimizer paths ----------------------------------------------------------------------
HYPER_KNOBS = (
    Knob("momentum", N_("Momentum's α: v ← αv − η∇f"), 0.9, lo=0.0, hi=0.99, step=0.01, label="α"),
    Knob(
        "gamma",
        N_("RMSProp's decay γ: G ← γG + (1 − γ)g²"),
        0.99,
        lo=0.0,
        hi=0.999,
        step=0.001,
        label="γ",
    ),  # fmt: skip
    Knob(
        "beta1",
        N_("Adam's β₁ (the gradient's average)"),
        0.9,
        lo=0.0,
        hi=0.999,
        step=0.001,
        label="β₁",
    ),  # fmt: skip
    Knob(
        "beta2",
        N_("Adam's β₂ (the squared gradient's average)"),
        0.999,
        lo=0.0,
        hi=0.9999,
        step=0.0001,
        label="β₂",
    ),  # fmt: skip
    Knob(
        "eps",
        N_("AdaGrad's, RMSProp's and Adam's ε (outside the root, as torch)"),
        1e-8,
        lo=1e-12,
        hi=1.0,
        scale="log",
        label="ε",
    ),  # fmt: skip
)
START_KNOBS = (
    Knob("x0", N_("start x (or click on the surface)"), -7.0, lo=-10.0, hi=10.0, step=0.1),
    Knob("y0", N_("start y (or click on the surface)"), 2.0, lo=-5.0, hi=5.0, step=0.1),
)
CONDITION = Knob(
    "condition", N_("how much flatter the bowl x²/κ + y² is along x (20: the lecture's)"), 20.0,
    lo=1.0, hi=1000.0, scale="log", label="κ",
)  # fmt: skip
LR_KNOBS = tuple(
    Knob(
        f"lr-{name}",
        N_("its learning rate η"),  # the label names the optimizer
        PATH_LRS[name],
        lo=1e-4,
        hi=10.0,
        scale="log",
        label=f"η {LABELS[name]}",
    )  # fmt: skip
    for name in NAMES
)
PATHS_KNOBS = (
    Knob(
        "optimizers",
        N_("the optimizers to overlay"),
        ",".join(NAMES),
        kind="subset",
        choices=NAMES,
        labels=LABELS,
    ),  # fmt: skip
    Knob(
        "surface",
        N_("the surface"),
        "bowl",
        kind="choice",
        choices=tuple(SURFACES),
        labels={"bowl": N_("bowl x²/κ + y²"), "rosenbrock": "Rosenbrock", "saddle": N_("saddle")},
    ),  # fmt: skip
    CONDITION,
    *LR_KNOBS,
    *HYPER_KNOBS,
    *START_KNOBS,
    Knob("steps", N_("steps of every optimizer"), 30, kind="int", lo=1, hi=500),
)


def paths(
    *, optimizers, surface, condition, momentum, gamma, beta1, beta2, eps, x0, y0, steps, **lrs
) -> View:
    shape = SURFACES[surface]
    start = (x0, y0)
    hyper = dict(momentum=momentum, gamma=gamma, beta1=beta1, beta2=beta2, eps=eps)
    lam = curvature(surface, condition, start)
    numbers = {"curvature": lam, "surface": surface, "minimum": list(shape.minimum)}
    numbers["stability_limit"] = 2 / lam if lam > 0 else math.inf
    numbers["momentum_stability_limit"] = 2 * (1 + momentum) / lam if lam > 0 else math.inf
    runs = {}
    chosen = [(name, dict(hyper, lr=lrs[f"lr_{name}"])) for name in optimizers]
    for (name, _hyper), path in zip(chosen, descend(chosen, surface, condition, start, steps),
                               strict=True):  # fmt: skip
        lr = lrs[f"lr_{name}"]
        runs[name] = {
            "lr": lr,
            "effective_lr": lr / (1 - momentum) if name == "momentum" else lr,
            "points": path.points,
            "values": path.values,
            "final": path.values[-1],
            "diverged": path.diverged,
            "crossings": _crossings(path.points),
        }
    drawn = [
        (LABELS[name], run["points"], run["values"], COLORS[name]) for name, run in runs.items()
    ]
    board = pictures.surface_board(
        f"f(x, y) = {shape.formula}",
        _contour(surface, condition),
        [(label, points, color) for label, points, _, color in drawn],
        start=start,
        minimum=shape.minimum,
    )
    progress = pictures.value_curves(
        [(label, values, color) for label, _, values, color in drawn], least=shape.least
    )
    numbers["runs"] = runs
    notes = [_("Largest curvature at the start λ = {lam}.").format(lam=f"{lam:.4g}")]
    if lam > 0:
        notes.append(
            _(
                "Plain SGD is stable on a quadratic below η = 2/λ = {limit}; with momentum "
                "α = {alpha}, below 2(1 + α)/λ = {momentum_limit}."
            ).format(
                limit=f"{2 / lam:.4g}",
                alpha=f"{momentum:g}",
                momentum_limit=f"{2 * (1 + momentum) / lam:.4g}",
            )
        )
    if "momentum" in runs:
        if "sgd" in runs:
            said = _("Momentum's effective step η/(1 − α) = {lr}/(1 − {alpha}) = {effective} "
                     "against SGD's η = {sgd}.")  # fmt: skip
        else:
            said = _("Momentum's effective step η/(1 − α) = {lr}/(1 − {alpha}) = {effective}.")
        notes.append(
            said.format(
                lr=f"{runs['momentum']['lr']:g}",
                alpha=f"{momentum:g}",
                effective=f"{runs['momentum']['effective_lr']:.4g}",
                sgd=f"{runs['sgd']['lr']:g}" if "sgd" in runs else "",
            )
        )
    for name, run in runs.items():
        if run["diverged"]:
            said = _("{optimizer}: diverged after {steps} steps, {crossings} crossings of y = 0.")
        else:
            said = _(
                "{optimizer}: f = {value} after {steps} steps, {crossings} crossings of y = 0."
            )
        numbers_said = {"optimizer": LABELS[name], "value": f"{run['final']:.4g}",
                        "steps": len(run["values"]) - 1, "crossings": run["crossings"]}  # fmt: skip
        notes.append(said.format(**numbers_said))
    numbers["play"] = {"figure": "paths", "steps": steps}
    numbers["click"] = {"figure": "paths", "x": "x0", "y": "y0"}  # a click starts there
    return View([board, progress], numbers, notes)


# -- the learning rate -------------------------------------------------------------------
RATE_KNOBS = (
    CONDITION,
    Knob(
        "lr-small", N_("a rate too small"), 0.02, lo=1e-4, hi=10.0, scale="log", label=N_("η small")
    ),
    Knob(
        "lr-right",
        N_("a rate about right"),
        0.5,
        lo=1e-4,
        hi=10.0,
        scale="log",
        label=N_("η right"),
    ),
    Knob(
        "lr-large", N_("a rate too large"), 1.05, lo=1e-4, hi=10.0, scale="log", label=N_("η large")
    ),
    *START_KNOBS,
    Knob("steps", N_("steps of every run"), 60, kind="int", lo=1, hi=500),
)
RATE_COLORS = pictures.RATE_COLORS


def _final_gaps(condition: float, start, steps: int, lrs: list[float]) -> list[float]:
    """f - f* after `steps` SGD steps at each rate: one lossopt SGD, one group per rate."""
    points = [torch.tensor(start, dtype=torch.float64, requires_grad=True) for _ in lrs]
    opt = optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(points, lrs, strict=True)], lr=1)
    for _step in range(steps):
        opt.zero_grad()
        stacked = torch.stack(points)
        bowl(stacked[:, 0], stacked[:, 1], condition).sum().backward()
        opt.step()
        with torch.no_grad():  # park what escaped where it cannot overflow further
            for p in points:
                p.clamp_(-ESCAPE, ESCAPE)
    final = torch.stack(points).detach()
    return [max(v, 1e-16) for v in bowl(final[:, 0], final[:, 1], condition).tolist()]


def learning_rate(*, condition, lr_small, lr_right, lr_large, x0, y0, steps) -> View:
    start = (x0, y0)
    lam = curvature("bowl", condition, start)
    limit = 2 / lam
    runs = []
    zero = dict(momentum=0.0, gamma=0.99, beta1=0.9, beta2=0.999, eps=1e-8)
    rates = (lr_small, lr_right, lr_large)
    found = descend([("sgd", dict(zero, lr=lr)) for lr in rates], "bowl", condition, start, steps)
    for label, lr, path in zip(("too small", "right", "too large"), rates, found, strict=True):
        runs.append({"label": label, "lr": lr, "points": path.points, "values": path.values,
                     "final": path.values[-1], "diverged": path.diverged,
                     "stable": lr < limit})  # fmt: skip
    names = [f"{_(run['label'])}: η = {run['lr']:g}" for run in runs]
    board = pictures.surface_board(
        _("SGD on x²/{condition} + y²").format(condition=f"{condition:g}"),
        _contour("bowl", condition),
        [(n, run["points"], c) for n, run, c in zip(names, runs, RATE_COLORS, strict=True)],
        start=start,
        minimum=(0.0, 0.0),
    )
    progress = pictures.value_curves(
        [(n, run["values"], c) for n, run, c in zip(names, runs, RATE_COLORS, strict=True)]
    )
    scan_lrs = torch.logspace(math.log10(limit) - 3, math.log10(limit * 1.3), 25,
                              dtype=torch.float64).tolist()  # fmt: skip
    scan = _final_gaps(condition, start, steps, scan_lrs)
    sweep = pictures.rate_sweep(
        scan_lrs,
        scan,
        limit,
        [
            (_(run["label"]), run["lr"], run["final"], c)
            for run, c in zip(runs, RATE_COLORS, strict=True)
        ],
        steps=steps,
    )
    notes = [
        _(
            "The largest curvature is λ = {lam} (along y), so SGD diverges above η = 2/λ = "
            "{limit}; the flat x direction (curvature {flat}) is what a small rate leaves "
            "unfinished."
        ).format(lam=f"{lam:.4g}", limit=f"{limit:.4g}", flat=f"{2 / condition:.4g}")
    ]
    # one whole sentence per case, for the catalog: below or above the limit, ended or diverged
    said = {
        (True, False): N_("η = {lr} ({label}, below 2/λ) ends at f = {value}."),
        (False, False): N_("η = {lr} ({label}, above 2/λ) ends at f = {value}."),
        (True, True): N_("η = {lr} ({label}, below 2/λ) diverged."),
        (False, True): N_("η = {lr} ({label}, above 2/λ) diverged."),
    }
    for run in runs:
        notes.append(
            _(said[run["stable"], run["diverged"]]).format(
                lr=f"{run['lr']:g}", label=_(run["label"]), value=f"{run['final']:.3g}"
            )
        )
    numbers = {"curvature": lam, "stability_limit": limit, "runs": runs,
               "sweep": {"lrs": scan_lrs, "final": scan},
               "click": {"figure": "paths", "x": "x0", "y": "y0"}}  # fmt: skip
    return View([board, progress, sweep], numbers, notes)


# -- adaptive step sizes -----------------------------------------------------------------
ADAPTIVE_KNOBS = (
    Knob(
        "lr", N_("the learning rate η of all three"), 0.01, lo=1e-4, hi=1.0, scale="log", label="η"
    ),
    HYPER_KNOBS[1],
    HYPER_KNOBS[2],
    HYPER_KNOBS[3],
    HYPER_KNOBS[4],
    Knob(
        "bias-correction",
        N_("Adam's bias correction m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ)"),
        True,
        kind="bool",
    ),  # fmt: skip
    Knob("noise", N_("spread of the gradient stream around 1"), 0.5, lo=0.0, hi=3.0, step=0.05),
    Knob("steps", N_("steps"), 200, kind="int", lo=2, hi=2000, scale="log"),
    Knob("seed", N_("seed of the gradient stream"), 0, kind="int", lo=0, hi=10_000),
)


def _stream_steps(name: str, stream: list[float], **hyper) -> tuple[list[float], list[dict]]:
    """|Δθ| at each step of a lossopt optimizer fed `stream`, and its state after each."""
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = build(name, [theta], momentum=0.0, **hyper)
    sizes, states = [], []
    for g in stream:
        before = theta.item()
        theta.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        sizes.append(abs(theta.item() - before))
        states.append({k: v.item() for k, v in opt.state[theta].items()})
    return sizes, states


def adaptive(*, lr, gamma, beta1, beta2, eps, bias_correction, noise, steps, seed) -> View:
    g = torch.Generator().manual_seed(seed)
    stream = (1.0 + noise * torch.randn(steps, generator=g, dtype=torch.float64)).tolist()
    hyper = dict(lr=lr, gamma=gamma, beta1=beta1, beta2=beta2, eps=eps)
    adagrad, _states = _stream_steps("adagrad", stream, **hyper)
    rmsprop, _states = _stream_steps("rmsprop", stream, **hyper)
    adam, states = _stream_steps("adam", stream, **hyper)
    if not bias_correction:
        # Adam without correction keeps the same m and v (they do not depend on θ here);
        # its step would be η m / (√v + ε): read from lossopt's Adam state.
        adam = [lr * abs(s["exp_avg"]) / (math.sqrt(s["exp_avg_sq"]) + eps) for s in states]
    t = list(range(1, steps + 1))
    adam_name = "Adam" if bias_correction else _("Adam (no bias correction)")
    stream_fig = pictures.adaptive_stream(
        t,
        [("AdaGrad", adagrad, COLORS["adagrad"]), ("RMSProp", rmsprop, COLORS["rmsprop"]),
         (adam_name, adam, COLORS["adam"])],
        lr=lr,
    )  # fmt: skip
    # AdaGrad's per-element steps on the lecture's bowl: x's gradient is 20 times smaller,
    # so its sum of squares grows slower and its step stays larger.
    xy = torch.tensor((-7.0, 2.0), dtype=torch.float64, requires_grad=True)
    opt = optim.Adagrad([xy], lr=1.5, eps=eps)
    per_x, per_y = [], []
    count = min(steps, 100)
    for _step in range(count):
        opt.zero_grad()
        bowl(xy[0], xy[1], 20.0).backward()
        opt.step()
        h = opt.state[xy]["sum"]
        per_x.append(1.5 / (math.sqrt(h[0].item()) + eps))
        per_y.append(1.5 / (math.sqrt(h[1].item()) + eps))
    elements = pictures.adagrad_elements(per_x, per_y, 1.5)
    if bias_correction:
        adam_said = _(
            "Adam = Momentum + RMSProp: m averages g (β₁ = {beta1}), v averages g² (β₂ = "
            "{beta2}). Its first step is {first} long (corrected: η)."
        )
    else:
        adam_said = _(
            "Adam = Momentum + RMSProp: m averages g (β₁ = {beta1}), v averages g² (β₂ = "
            "{beta2}). Its first step is {first} long; uncorrected, η(1 − β₁)/√(1 − β₂) = "
            "{uncorrected}."
        )
    notes = [
        _(
            "RMSProp's first step is η/√(1 − γ) = {step} long (measured {measured}), {times} "
            "times η: G starts at 0 and nothing corrects it. That spike is what Adam's bias "
            "correction removes."
        ).format(
            step=f"{lr / math.sqrt(1 - gamma):.4g}",
            measured=f"{rmsprop[0]:.4g}",
            times=f"{1 / math.sqrt(1 - gamma):.3g}",
        ),
        adam_said.format(
            beta1=f"{beta1:g}",
            beta2=f"{beta2:g}",
            first=f"{adam[0]:.4g}",
            uncorrected=f"{lr * (1 - beta1) / math.sqrt(1 - beta2):.4g}",
        ),
        _("AdaGrad's step falls as 1/√t: {first} at t = 1, {last} at t = {steps}.").format(
            first=f"{adagrad[0]:.3g}", last=f"{adagrad[-1]:.3g}", steps=steps
        ),
        _(
            "Per element, AdaGrad ends with a step {ratio} times larger along the flat x than "
            "along the steep y."
        ).format(ratio=f"{per_x[-1] / per_y[-1]:.3g}"),
    ]
    numbers = {"adagrad": adagrad, "rmsprop": rmsprop, "adam": adam, "stream": stream,
               "per_element": {"x": per_x, "y": per_y}}  # fmt: skip
    return View([stream_fig, elements], numbers, notes)


EXPLORABLES = (
    Explorable(
        "paths",
        N_("Optimizer paths"),
        N_(
            "Overlay SGD, Momentum, AdaGrad, RMSProp and Adam on one surface. Change each rate, α, "
            "γ, β₁, β₂ and ε; click the surface to start elsewhere; play the path step by step. "
            "Compare Momentum's effective step η/(1 − α) with SGD's η before comparing their paths."
        ),
        PATHS_KNOBS,
        paths,
    ),
    Explorable(
        "learning-rate",
        N_("The learning rate"),
        N_(
            "Too small, about right, too large: three SGD runs on the same bowl, and the final "
            "loss over a sweep of rates with the stability limit 2/λ marked."
        ),
        RATE_KNOBS,
        learning_rate,
    ),
    Explorable(
        "adaptive",
        N_("Adaptive step sizes"),
        N_(
            "AdaGrad's step shrinks as 1/√t; RMSProp forgets (γ) but spikes on its first step; "
            "Adam adds momentum (β₁) and corrects both averages' start at zero. Turn the "
            "correction off to see what it fixes; below, AdaGrad's per-element steps on the "
            "elongated bowl."
        ),
        ADAPTIVE_KNOBS,
        adaptive,
    ),
)
