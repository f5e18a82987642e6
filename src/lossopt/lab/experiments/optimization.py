"""Experiments 5-8: the lecture's optimizers on surfaces and on a real network.

Each function takes a Config and returns plain data; nothing here draws.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import torch

from lossopt import losses, optim
from lossopt.lab.config import Config
from lossopt.lab.data import digits
from lossopt.lab.optimizers import OPTIMIZERS
from lossopt.lab.training import Run, mlp, train


# -- surfaces --------------------------------------------------------------------
@dataclass(frozen=True)
class Surface:
    name: str
    formula: str
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    tol: float
    bounds: tuple[float, float, float, float]  # x0, x1, y0, y1 of the contour plot
    lrs: tuple[float, ...]  # the grid every optimizer picks its best from
    steps: int


SURFACES = {
    s.name: s
    for s in (
        Surface(
            "lecture",
            "f(x, y) = x^2/20 + y^2",
            lambda x, y: x**2 / 20 + y**2,
            (-7.0, 2.0),
            ((0.0, 0.0),),
            0.1,
            (-10, 10, -5, 5),
            (0.03, 0.1, 0.3, 0.9, 1.5),
            300,
        ),
        Surface(
            "rosenbrock",
            "f(x, y) = (1 - x)^2 + 100 (y - x^2)^2",
            lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2,
            (-1.2, 1.0),
            ((1.0, 1.0),),
            0.05,
            (-2, 2, -1, 3),
            (3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
            1500,
        ),
        Surface(
            "saddle",
            "f(x, y) = x^2 + y^4/4 - y^2/2 (saddle at 0, minima at y = +-1)",
            lambda x, y: x**2 + y**4 / 4 - y**2 / 2,
            (2.0, 0.01),
            ((0.0, 1.0), (0.0, -1.0)),
            0.05,
            (-2.5, 2.5, -2, 2),
            (0.01, 0.03, 0.1, 0.3),
            300,
        ),
    )
}


@dataclass
class Path:
    optimizer: str
    lr: float
    points: list[tuple[float, float]]
    values: list[float]
    steps_to_minimum: int | None  # None: never within tol of a minimum


def descend(surface: Surface, optimizer: str, lr: float, steps: int) -> Path:
    xy = torch.tensor(surface.start, dtype=torch.float64, requires_grad=True)
    opt = OPTIMIZERS[optimizer].build([xy], lr)
    minima = torch.tensor(surface.minima, dtype=torch.float64)
    points, values, reached = [surface.start], [], None
    for step in range(1, steps + 1):
        opt.zero_grad()
        value = surface.f(xy[0], xy[1])
        value.backward()
        opt.step()
        values.append(value.item())
        x, y = xy.tolist()
        if not (math.isfinite(x) and math.isfinite(y)) or abs(x) + abs(y) > 1e6:
            break  # diverged
        points.append((x, y))
        if reached is None and (minima - xy.detach()).norm(dim=1).min() < surface.tol:
            reached = step
            break
    return Path(optimizer, lr, points, values, reached)


def _better(a: Path, b: Path) -> bool:
    """Reaching a minimum sooner wins; else the lower final value."""

    def key(p: Path) -> tuple[bool, int, float]:
        return (
            p.steps_to_minimum is None,
            p.steps_to_minimum or 0,
            p.values[-1] if p.values else math.inf,
        )

    return key(a) < key(b)


@dataclass
class SurfacePaths:
    surface: str
    formula: str
    start: tuple[float, float]
    minima: list[tuple[float, float]]
    bounds: tuple[float, float, float, float]
    paths: list[Path]


def optimizer_paths(config: Config) -> list[SurfacePaths]:
    results = []
    for surface in SURFACES.values():
        steps = config.steps_or(surface.steps // 3 if config.quick else surface.steps)
        lrs = surface.lrs[1::2] if config.quick else surface.lrs
        lrs = (config.lr,) if config.lr is not None else lrs
        paths = []
        for name in config.optimizers:
            best = None
            for lr in lrs:
                path = descend(surface, name, lr, steps)
                if best is None or _better(path, best):
                    best = path
            paths.append(best)
        results.append(
            SurfacePaths(
                surface.name,
                surface.formula,
                surface.start,
                list(surface.minima),
                surface.bounds,
                paths,
            )
        )
    return results


# -- 6. Learning rate ---------------------------------------------------------------
@dataclass
class RangeTest:
    lrs: list[float]
    loss: list[float]  # smoothed
    suggested_lr: float


@dataclass
class LearningRate:
    paths: list[Path]  # too small, right, too large, on the lecture surface
    labels: list[str]
    range_test: RangeTest


def learning_rate(config: Config) -> LearningRate:
    surface = SURFACES["lecture"]
    steps = config.steps_or(60 if config.quick else 150)
    chosen = [("too small", 0.02), ("right", 0.5), ("too large", 1.05)]
    paths = [descend(surface, "sgd", lr, steps) for _, lr in chosen]

    data = digits(config.seed)
    model = mlp(64, 10, seed=config.seed)
    count = 40 if config.quick else 100
    lrs = torch.logspace(-4, 1, count, dtype=torch.float64).tolist()
    opt = optim.SGD(model.parameters(), lr=lrs[0], momentum=0.9)
    g = torch.Generator().manual_seed(config.seed)
    smoothed, average, best = [], 0.0, math.inf
    for i, lr in enumerate(lrs):
        opt.param_groups[0]["lr"] = lr
        batch = torch.randint(0, len(data.y_train), (64,), generator=g)
        opt.zero_grad()
        loss = losses.cross_entropy(model(data.x_train[batch]), data.y_train[batch])
        loss.backward()
        opt.step()
        average = 0.9 * average + 0.1 * loss.item()
        value = average / (1 - 0.9 ** (i + 1))  # bias-corrected, as Adam's moments
        if not math.isfinite(value) or value > 4 * best:
            break
        smoothed.append(value)
        best = min(best, value)
    at_min = lrs[smoothed.index(min(smoothed))]
    return LearningRate(
        paths,
        [f"{label} (lr={lr})" for label, lr in chosen],
        RangeTest(lrs[: len(smoothed)], smoothed, at_min / 10),
    )


# -- 7. Adaptive step sizes -------------------------------------------------------------
@dataclass
class AdaptiveSteps:
    steps: list[int]
    adagrad: list[float]  # effective learning rate |delta theta| / |g|
    rmsprop: list[float]
    adam_steps: list[int]
    adam_corrected: list[float]  # lr * mhat / (sqrt(vhat) + eps): Adam's own step
    adam_uncorrected: list[float]  # lr * m / (sqrt(v) + eps)
    adam_actual: list[float]  # |delta theta| measured on lossopt's Adam


def _gradient_stream(config: Config, count: int) -> list[float]:
    g = torch.Generator().manual_seed(config.seed)
    return (1.0 + 0.5 * torch.randn(count, generator=g, dtype=torch.float64)).tolist()


def _effective_lrs(opt_class, stream, lr, **kwargs):
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = opt_class([theta], lr=lr, **kwargs)
    out = []
    for g in stream:
        before = theta.item()
        theta.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        out.append(abs(theta.item() - before) / abs(g))
    return out, opt, theta


def adaptive_steps(config: Config) -> AdaptiveSteps:
    count = config.steps_or(200 if config.quick else 500)
    stream = _gradient_stream(config, count)
    lr = config.lr_or(0.01)
    adagrad, _, _ = _effective_lrs(optim.Adagrad, stream, lr)
    rmsprop, _, _ = _effective_lrs(optim.RMSprop, stream, lr, alpha=0.99)

    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    adam = optim.Adam([theta], lr=lr)
    beta1, beta2 = adam.defaults["betas"]
    eps = adam.defaults["eps"]
    corrected, uncorrected, actual = [], [], []
    first = min(count, 60)
    for g in stream[:first]:
        before = theta.item()
        theta.grad = torch.tensor([g], dtype=torch.float64)
        adam.step()
        state = adam.state[theta]
        t = state["step"].item()
        m, v = state["exp_avg"].item(), state["exp_avg_sq"].item()
        corrected.append(lr * (abs(m) / (1 - beta1**t)) / (math.sqrt(v / (1 - beta2**t)) + eps))
        uncorrected.append(lr * abs(m) / (math.sqrt(v) + eps))
        actual.append(abs(theta.item() - before))
    return AdaptiveSteps(
        list(range(1, count + 1)),
        adagrad,
        rmsprop,
        list(range(1, first + 1)),
        corrected,
        uncorrected,
        actual,
    )


# -- 8. Training a real model -----------------------------------------------------------
@dataclass
class Ranked:
    optimizer: str
    lr: float
    metric_mean: float
    metric_std: float
    seconds_mean: float  # machine-dependent: kept out of results.json


@dataclass
class Training:
    task: str
    metric: str
    runs: list[Run]
    ranking: list[Ranked]


def rank(runs: list[Run], higher_is_better: bool) -> list[Ranked]:
    groups: dict[tuple[str, float], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.optimizer, run.lr), []).append(run)
    ranked = []
    for (name, lr), group in groups.items():
        metrics = [r.final_metric for r in group]
        spread = statistics.stdev(metrics) if len(metrics) > 1 else 0.0
        ranked.append(
            Ranked(
                name,
                lr,
                statistics.fmean(metrics),
                spread,
                statistics.fmean(r.seconds for r in group),
            )
        )
    sign = -1 if higher_is_better else 1
    ranked.sort(
        key=lambda r: (
            sign * r.metric_mean if math.isfinite(r.metric_mean) else math.inf,
            r.optimizer,
        )
    )
    return ranked


def default_lr(name: str) -> float:
    sweep = OPTIMIZERS[name].sweep
    return sweep[len(sweep) // 2]


def training(config: Config) -> Training:
    data = digits(config.seed)
    seeds = range(config.seed, config.seed + (2 if config.quick else 3))
    epochs = config.steps_or(3 if config.quick else 15)
    runs = [
        train(data, name, config.lr_or(default_lr(name)), epochs=epochs, seed=seed)
        for name in config.optimizers
        for seed in seeds
    ]
    return Training(
        "classification", "validation accuracy", runs, rank(runs, higher_is_better=True)
    )
