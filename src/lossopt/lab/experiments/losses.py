"""Experiments 1-4: the lecture's losses, shown on real computations.

Each function takes a Config and returns plain data; nothing here draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from lossopt import losses, optim
from lossopt.lab.config import Config
from lossopt.lab.data import digits


# -- 1. L1 against L2 ------------------------------------------------------------
@dataclass
class LineFit:
    loss: str
    slope: float
    intercept: float
    error: float  # distance of (slope, intercept) from the true line


@dataclass
class L1VsL2:
    errors: list[float]
    l1: list[float]
    l2: list[float]
    huber: list[float]
    lecture: dict[str, float]  # the slide's worked numbers, computed by lossopt
    x: list[float]
    y: list[float]
    outlier: list[bool]
    true_line: tuple[float, float]
    fits: list[LineFit]


def l1_vs_l2(config: Config) -> L1VsL2:
    e = torch.linspace(-3, 3, 121, dtype=torch.float64)
    zero = torch.zeros_like(e)
    pred, target = torch.tensor([3.0, 11.0]), torch.tensor([1.0, 1.0])
    l1 = losses.l1_loss(pred, target, reduction="none")
    l2 = losses.mse_loss(pred, target, reduction="none")
    lecture = {
        "|3-1|": l1[0].item(),
        "|11-1|": l1[1].item(),
        "(3-1)^2": l2[0].item(),
        "(11-1)^2": l2[1].item(),
    }

    g = torch.Generator().manual_seed(config.seed)
    slope, intercept = 2.0, 1.0
    x = torch.rand(60, generator=g, dtype=torch.float64) * 10 - 5
    y = slope * x + intercept + 0.5 * torch.randn(60, generator=g, dtype=torch.float64)
    outlier = torch.zeros(60, dtype=torch.bool)
    outlier[torch.randperm(60, generator=g)[:8]] = True
    y = torch.where(outlier, y + 25.0, y)  # 8 of 60 points far above the line

    fits = []
    steps = config.steps_or(300 if config.quick else 1500)
    for name, loss_fn in (
        ("L1", losses.l1_loss),
        ("L2 (MSE)", losses.mse_loss),
        ("Huber", losses.huber_loss),
    ):
        w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        opt = optim.Adam([w], lr=config.lr_or(0.1))
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(w[0] * x + w[1], y).backward()
            opt.step()
        s, b = w.tolist()
        fits.append(LineFit(name, s, b, math.hypot(s - slope, b - intercept)))
    return L1VsL2(
        e.tolist(),
        losses.l1_loss(e, zero, reduction="none").tolist(),
        losses.mse_loss(e, zero, reduction="none").tolist(),
        losses.huber_loss(e, zero, reduction="none").tolist(),
        lecture,
        x.tolist(),
        y.tolist(),
        outlier.tolist(),
        (slope, intercept),
        fits,
    )


# -- 2. Entropy and cross-entropy -----------------------------------------------
@dataclass
class Entropy:
    coin_p: list[float]
    coin_entropy: list[float]  # nats
    fair_die: float
    loaded_die: float
    logits: list[float]
    softmax: list[float]
    cross_entropy: list[float]  # for each possible true class
    smoothing: list[float]
    p_true: list[float]
    smoothed_loss: dict[str, list[float]]
    best_p_true: dict[str, float]


def _entropy(p: torch.Tensor) -> torch.Tensor:
    # H(P) = H(P, P): lossopt's cross-entropy with P both as target and as
    # prediction (softmax(log P) = P); 0 log 0 = 0 falls out of the target weights.
    return losses.cross_entropy(torch.log(p.clamp_min(1e-300)), p, reduction="none", dim=-1)


def entropy(config: Config) -> Entropy:
    p = torch.linspace(0, 1, 101, dtype=torch.float64)
    coin = _entropy(torch.stack([p, 1 - p], dim=-1))
    fair = _entropy(torch.full((6,), 1 / 6, dtype=torch.float64)).item()
    loaded = _entropy(torch.tensor([5 / 6, 0, 0, 0, 0, 1 / 6], dtype=torch.float64)).item()
    logits = torch.tensor([2.0, 1.0, 0.1], dtype=torch.float64)
    ce = losses.cross_entropy(logits.expand(3, 3), torch.arange(3), reduction="none")

    classes = 10
    p_true = torch.linspace(0.05, 0.999, 200, dtype=torch.float64)
    # Logits whose softmax puts p_true on class 0 and the rest evenly elsewhere.
    rest = torch.log((1 - p_true) / (classes - 1))
    rows = torch.cat([torch.log(p_true)[:, None], rest[:, None].expand(-1, classes - 1)], dim=1)
    smoothing = [0.0, 0.1, 0.2]
    curves, best = {}, {}
    for eps in smoothing:
        curve = losses.cross_entropy(
            rows, torch.zeros(len(p_true), dtype=torch.long), reduction="none", label_smoothing=eps
        )
        curves[str(eps)] = curve.tolist()
        best[str(eps)] = p_true[curve.argmin()].item()
    return Entropy(
        p.tolist(),
        coin.tolist(),
        fair,
        loaded,
        logits.tolist(),
        torch.softmax(logits, 0).tolist(),
        ce.tolist(),
        smoothing,
        p_true.tolist(),
        curves,
        best,
    )


# -- 3. KL is not symmetric -----------------------------------------------------
@dataclass
class GaussianFit:
    direction: str  # 'forward KL(P||Q)' or 'reverse KL(Q||P)'
    mean: float
    std: float
    q: list[float]
    forward_kl: float
    reverse_kl: float
    history: list[float]


@dataclass
class KLAsymmetry:
    x: list[float]
    p: list[float]
    fits: list[GaussianFit]


def _gaussian_logits(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mean) / log_std.exp()) ** 2


def kl_asymmetry(config: Config) -> KLAsymmetry:
    x = torch.linspace(-6, 6, 400, dtype=torch.float64)
    p_logits = torch.logsumexp(
        torch.stack(
            [_gaussian_logits(x, torch.tensor(c), torch.tensor(0.5).log()) for c in (-2.5, 2.5)]
        ),
        dim=0,
    )
    p = torch.softmax(p_logits, 0)
    steps = config.steps_or(200 if config.quick else 800)
    fits = []
    for direction in ("forward KL(P||Q)", "reverse KL(Q||P)"):
        params = torch.tensor([0.5, 0.0], dtype=torch.float64, requires_grad=True)
        opt = optim.Adam([params], lr=config.lr_or(0.05))
        history = []
        for _ in range(steps):
            opt.zero_grad()
            q_logits = _gaussian_logits(x, params[0], params[1])
            if direction.startswith("forward"):
                loss = losses.kl_divergence(p_logits, q_logits)
            else:
                loss = losses.kl_divergence(q_logits, p_logits)
            loss.backward()
            opt.step()
            history.append(loss.item())
        with torch.no_grad():
            q_logits = _gaussian_logits(x, params[0], params[1])
            fits.append(
                GaussianFit(
                    direction,
                    params[0].item(),
                    params[1].exp().item(),
                    torch.softmax(q_logits, 0).tolist(),
                    losses.kl_divergence(p_logits, q_logits).item(),
                    losses.kl_divergence(q_logits, p_logits).item(),
                    history,
                )
            )
    return KLAsymmetry(x.tolist(), p.tolist(), fits)


# -- 4. Triplet margin loss ---------------------------------------------------------
@dataclass
class TripletEmbedding:
    mining: str
    margin: float
    labels: list[int]  # validation labels
    before: list[list[float]]  # 2-D validation embeddings before training
    after: list[list[float]]
    loss: list[float]
    knn_before: float  # 1-nearest-neighbour validation accuracy
    knn_after: float


def _knn_accuracy(train_emb, train_y, val_emb, val_y) -> float:
    nearest = torch.cdist(val_emb, train_emb).argmin(dim=1)
    return (train_y[nearest] == val_y).float().mean().item()


def triplet(config: Config) -> TripletEmbedding:
    data = digits(config.seed)
    torch.manual_seed(config.seed)
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
    mining, margin = "batch_semi_hard", 1.0

    def embed(x):
        with torch.no_grad():
            return net(x)

    before_train, before = embed(data.x_train), embed(data.x_val)
    knn_before = _knn_accuracy(before_train, data.y_train, before, data.y_val)
    opt = optim.Adam(net.parameters(), lr=config.lr_or(3e-3))
    g = torch.Generator().manual_seed(config.seed)
    history = []
    for _ in range(config.steps_or(60 if config.quick else 400)):
        batch = torch.randperm(len(data.y_train), generator=g)[:256]
        opt.zero_grad()
        loss = losses.batch_triplet_loss(
            net(data.x_train[batch]), data.y_train[batch], mining=mining, margin=margin
        )
        loss.backward()
        opt.step()
        history.append(loss.item())
    after = embed(data.x_val)
    knn_after = _knn_accuracy(embed(data.x_train), data.y_train, after, data.y_val)
    return TripletEmbedding(
        mining,
        margin,
        data.y_val.tolist(),
        before.tolist(),
        after.tolist(),
        history,
        knn_before,
        knn_after,
    )
