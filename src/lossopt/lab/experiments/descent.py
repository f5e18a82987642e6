"""The lecture's first optimization slides on real runs: the derivative as a
slope, gradient descent against mini-batch SGD, and the two ways of writing
momentum.

Each function takes a Config and returns plain data; nothing here draws.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from lossopt import losses, optim
from lossopt.lab.config import Config
from lossopt.lab.data import digits
from lossopt.lab.experiments.optimization import START, SURFACE, surface


# -- the derivative as a slope ---------------------------------------------------------
@dataclass
class Tangent:
    w: float
    loss: float
    autograd: float  # dL/dw from backward()
    forward_difference: float  # (L(w + h) - L(w)) / h with the slide's limit cut at h


@dataclass
class Derivative:
    ws: list[float]
    loss: list[float]  # L(w) = mse_loss(w x, y) over the grid ws
    h: float  # the step of the tangents' forward differences
    tangents: list[Tangent]
    w_star: float  # the minimum, sum(x y) / sum(x^2)
    hs: list[float]
    forward_error: list[float]  # |forward difference - autograd| at tangents[0].w, per h
    central_error: list[float]  # |(L(w + h) - L(w - h)) / 2h - autograd|


def slope_data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The 50 points (x, y ≈ 1.5 x) whose mean squared error L(w) the slides differentiate;
    the live lab's derivative uses the same."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(50, generator=g, dtype=torch.float64) * 4 - 2
    return x, 1.5 * x + 0.5 * torch.randn(50, generator=g, dtype=torch.float64)


def derivative(config: Config) -> Derivative:
    x, y = slope_data(config.seed)

    def loss(w):
        return losses.mse_loss(w * x, y)

    def slope(w: float) -> float:
        w = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        loss(w).backward()
        return w.grad.item()

    def at(w: float) -> float:
        return loss(torch.tensor(w, dtype=torch.float64)).item()

    w_star = ((x * y).sum() / (x * x).sum()).item()
    h = 1e-3
    tangents = [Tangent(w, at(w), slope(w), (at(w + h) - at(w)) / h) for w in (-0.5, w_star, 3.0)]
    hs = torch.logspace(-14, 0, 29, dtype=torch.float64).tolist()
    w0, exact = tangents[0].w, tangents[0].autograd
    ws = torch.linspace(-1.5, 4.0, 111, dtype=torch.float64)
    return Derivative(
        ws=ws.tolist(),
        loss=[at(w) for w in ws.tolist()],
        h=h,
        tangents=tangents,
        w_star=w_star,
        hs=hs,
        forward_error=[abs((at(w0 + s) - at(w0)) / s - exact) for s in hs],
        central_error=[abs((at(w0 + s) - at(w0 - s)) / (2 * s) - exact) for s in hs],
    )


# -- gradient descent against mini-batch SGD -----------------------------------------
@dataclass
class GDvsSGD:
    lr: float
    steps: int
    train_size: int  # examples in one GD step
    batch_size: int  # examples in one SGD step
    gd_loss: list[float]  # loss over the whole training set, before step 1 then after each step
    sgd_loss: list[float]
    sgd_gradient_noise: list[float]  # |g_batch - g_full| / |g_full| at each SGD step
    gd_rises: int  # steps after which the whole-set loss went up
    sgd_rises: int
    seconds_per_gd_step: float  # machine-dependent: kept out of results.json
    seconds_per_sgd_step: float


def _linear(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(64, 10)


def _rises(curve: list[float]) -> int:
    return sum(1 for a, b in zip(curve, curve[1:], strict=False) if b > a)


@dataclass
class Descents:
    curves: dict[str, list[float]]  # 'gd', 'sgd': the whole-set loss before step 1, then after each
    noise: list[float]  # |g_batch - g_full| / |g_full| at each SGD step
    seconds: dict[str, float]  # per step, the measuring of the noise left out


def gd_and_sgd(data, *, lr: float, steps: int, batch_size: int, seed: int) -> Descents:
    """Plain SGD on a linear classifier of the data, from the same start (torch's
    initialisation at `seed`): over all training examples at each step (GD), and over
    `batch_size` drawn at random (mini-batch SGD), until a loss stops being finite.
    The static report and the live lab both run this."""
    x, y = data.x_train, data.y_train
    g = torch.Generator().manual_seed(seed)

    def whole_loss(model) -> float:
        with torch.no_grad():
            return losses.cross_entropy(model(x), y).item()

    curves, noise, seconds = {}, [], {}
    for kind in ("gd", "sgd"):
        model = _linear(seed)
        opt = optim.SGD(model.parameters(), lr=lr)
        curve, spent = [whole_loss(model)], 0.0
        for _ in range(steps):
            rows = torch.randperm(len(y), generator=g)[:batch_size] if kind == "sgd" else None
            if kind == "sgd":
                # The full gradient at the same point, only to measure the batch's noise.
                model.zero_grad()
                losses.cross_entropy(model(x), y).backward()
                full = torch.cat([p.grad.flatten() for p in model.parameters()])
            start = time.perf_counter()
            opt.zero_grad()
            if kind == "sgd":
                losses.cross_entropy(model(x[rows]), y[rows]).backward()
            else:
                losses.cross_entropy(model(x), y).backward()
            if kind == "sgd":
                batch = torch.cat([p.grad.flatten() for p in model.parameters()])
                noise.append(((batch - full).norm() / full.norm()).item())
            opt.step()
            spent += time.perf_counter() - start
            curve.append(whole_loss(model))
            if not math.isfinite(curve[-1]):
                break
        curves[kind], seconds[kind] = curve, spent / max(1, len(curve) - 1)
    return Descents(curves, noise, seconds)


def gd_vs_sgd(config: Config) -> GDvsSGD:
    data = digits(config.seed)
    steps = config.steps_or(60 if config.quick else 200)
    lr, batch_size = config.lr_or(0.3), 32
    run = gd_and_sgd(data, lr=lr, steps=steps, batch_size=batch_size, seed=config.seed)
    return GDvsSGD(
        lr=lr,
        steps=steps,
        train_size=len(data.y_train),
        batch_size=batch_size,
        gd_loss=run.curves["gd"],
        sgd_loss=run.curves["sgd"],
        sgd_gradient_noise=run.noise,
        gd_rises=_rises(run.curves["gd"]),
        sgd_rises=_rises(run.curves["sgd"]),
        seconds_per_gd_step=run.seconds["gd"],
        seconds_per_sgd_step=run.seconds["sgd"],
    )


# -- momentum, the lecture's form against torch's ------------------------------------
@dataclass
class MomentumRun:
    schedule: str  # 'constant' or 'drop'
    lrs: list[float]  # the rate at each step
    lecture: list[tuple[float, float]]  # v <- a v - lr g; w <- w + v (start, then each step)
    torch_form: list[tuple[float, float]]  # b <- mu b + g; w <- w - lr b (lossopt.optim.SGD)
    max_difference: float  # largest |w_lecture - w_torch| over the run
    max_relative_difference: float  # the same, over the larger of |w_lecture| and |w_torch|


@dataclass
class MomentumForms:
    surface: tuple[float, float]  # (a, b) of f = a x² + b y²
    momentum: float
    drop_step: int  # the first step at the lowered rate in the 'drop' run
    runs: list[MomentumRun]


def _lecture_momentum(lrs: list[float], momentum: float) -> list[tuple[float, float]]:
    """The slide's v <- a v - lr dL/dW; W <- W + v, written out."""
    w = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    v = torch.zeros(2, dtype=torch.float64)
    points = [START]
    for lr in lrs:
        w.grad = None
        surface(w[0], w[1]).backward()
        with torch.no_grad():
            v = momentum * v - lr * w.grad
            w += v
        points.append(tuple(w.tolist()))
    return points


def _torch_momentum(lrs: list[float], momentum: float) -> list[tuple[float, float]]:
    w = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    opt = optim.SGD([w], lr=lrs[0], momentum=momentum)
    points = [START]
    for lr in lrs:
        opt.param_groups[0]["lr"] = lr  # what an LR scheduler does between steps
        opt.zero_grad()
        surface(w[0], w[1]).backward()
        opt.step()
        points.append(tuple(w.tolist()))
    return points


def momentum_forms(config: Config) -> MomentumForms:
    steps = config.steps_or(40)
    lr, momentum = config.lr_or(0.1), 0.9
    drop = max(1, steps // 2)
    runs = []
    for schedule, lrs in (
        ("constant", [lr] * steps),
        ("drop", [lr] * drop + [lr / 10] * (steps - drop)),
    ):
        lecture, torch_form = _lecture_momentum(lrs, momentum), _torch_momentum(lrs, momentum)
        difference = max(
            (math.dist(a, b) for a, b in zip(lecture, torch_form, strict=True)), default=0.0
        )
        relative = max(
            (
                math.dist(a, b) / max(math.hypot(*a), math.hypot(*b), 1e-300)
                for a, b in zip(lecture, torch_form, strict=True)
            ),
            default=0.0,
        )
        runs.append(
            MomentumRun(
                schedule=schedule,
                lrs=lrs,
                lecture=lecture,
                torch_form=torch_form,
                max_difference=difference,
                max_relative_difference=relative,
            )
        )
    return MomentumForms(surface=SURFACE, momentum=momentum, drop_step=drop + 1, runs=runs)
