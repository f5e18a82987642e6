"""The lecture's losses, shown on real computations.

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
    classes: int  # of the label-smoothing example
    smoothing: list[float]
    p_true: list[float]
    smoothed_loss: dict[str, list[float]]
    best_p_true: dict[str, float]  # the optimum 1 - eps + eps / C, from the formula
    grid_argmin: dict[str, float]  # where the plotted curve is lowest (a grid point)


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
    curves, best, grid = {}, {}, {}
    for eps in smoothing:
        curve = losses.cross_entropy(
            rows, torch.zeros(len(p_true), dtype=torch.long), reduction="none", label_smoothing=eps
        )
        curves[str(eps)] = curve.tolist()
        # The smoothed target puts 1 - eps + eps/C on the true class; cross-entropy
        # is lowest where the prediction equals the target.
        best[str(eps)] = 1 - eps + eps / classes
        grid[str(eps)] = p_true[curve.argmin()].item()
    return Entropy(
        coin_p=p.tolist(),
        coin_entropy=coin.tolist(),
        fair_die=fair,
        loaded_die=loaded,
        logits=logits.tolist(),
        softmax=torch.softmax(logits, 0).tolist(),
        cross_entropy=ce.tolist(),
        classes=classes,
        smoothing=smoothing,
        p_true=p_true.tolist(),
        smoothed_loss=curves,
        best_p_true=best,
        grid_argmin=grid,
    )


# -- 2b. Class weights and ignore_index ----------------------------------------------
@dataclass
class ClassWeights:
    minority: int  # the digit kept rare in training
    seeds: list[int]  # one split and one initialisation per seed
    train_counts: list[int]  # training examples per class (the first seed's split)
    weights: list[float]  # n / (C n_c): inverse frequency, mean 1 over the examples
    recall_plain: list[float]  # validation recall per class, no weights, mean over the seeds
    recall_weighted: list[float]
    recall_plain_std: list[float]  # its standard deviation over the seeds
    recall_weighted_std: list[float]
    minority_plain: list[float]  # the rare digit's recall, one per seed
    minority_weighted: list[float]
    minority_change: tuple[float, float]  # weighted minus plain: mean and std over the seeds
    accuracy_plain: list[float]  # validation accuracy, one per seed
    accuracy_weighted: list[float]
    ignore_index: int
    ignored: int  # rows of the batch whose label is ignore_index
    kept: int
    loss_with_ignored: float  # lossopt's mean over the batch, ignored rows included
    loss_kept_only: float  # the same loss over only the kept rows, computed apart
    loss_all_rows: float  # the naive mean: every row's loss (0 if ignored) over all rows
    ignored_grad_max: float  # largest |dL/dlogits| on an ignored row
    kept_grad_mean: float  # mean |dL/dlogits| row norm on a kept row
    row_grad_norms: list[float]  # |dL/dlogits| per row of the batch, in order
    row_ignored: list[bool]


def _recall(model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: int) -> list[float]:
    with torch.no_grad():
        pred = model(x).argmax(dim=1)
    return [
        ((pred == c) & (y == c)).sum().item() / max(1, (y == c).sum().item())
        for c in range(classes)
    ]


def _mean_std(rows: list[list[float]]) -> tuple[list[float], list[float]]:
    values = torch.tensor(rows, dtype=torch.float64)
    spread = values.std(dim=0) if len(rows) > 1 else torch.zeros(values.shape[1])
    return values.mean(dim=0).tolist(), spread.tolist()


def class_weights(config: Config) -> ClassWeights:
    classes, minority, rare = 10, 8, 5
    # One seed's recall is not a finding (with another seed the change can flip):
    # every number below is over several splits and initialisations.
    seeds = list(range(config.seed, config.seed + (3 if config.quick else 5)))
    recalls: dict[str, list[list[float]]] = {"plain": [], "weighted": []}
    accuracy: dict[str, list[float]] = {"plain": [], "weighted": []}
    first = None
    for seed in seeds:
        data = digits(seed)
        others = (data.y_train != minority).nonzero().flatten()
        keep = torch.cat([others, (data.y_train == minority).nonzero().flatten()[:rare]])
        x, y = data.x_train[keep], data.y_train[keep]
        counts = torch.bincount(y, minlength=classes)
        weight = len(y) / (classes * counts.float())
        for name, w in (("plain", None), ("weighted", weight)):
            torch.manual_seed(seed)
            model = nn.Linear(64, classes)
            opt = optim.Adam(model.parameters(), lr=config.lr_or(0.05))
            for _ in range(config.steps_or(60 if config.quick else 150)):
                opt.zero_grad()
                losses.cross_entropy(model(x), y, weight=w).backward()
                opt.step()
            recalls[name].append(_recall(model, data.x_val, data.y_val, classes))
            with torch.no_grad():
                hits = model(data.x_val).argmax(1) == data.y_val
            accuracy[name].append(hits.float().mean().item())
        if first is None:
            first = (data, counts, weight, model)
    data, counts, weight, model = first  # the ignore_index batch: the first seed's

    # ignore_index: a batch where every third label is unknown. No class weights
    # here, so that the divisor is a count of rows.
    ignore_index, rows = -100, 48
    logits = model(data.x_val[:rows]).detach().requires_grad_(True)
    target = data.y_val[:rows].clone()
    ignored = torch.arange(rows) % 3 == 2
    target[ignored] = ignore_index
    loss = losses.cross_entropy(logits, target, ignore_index=ignore_index)
    loss.backward()
    with torch.no_grad():
        kept_only = losses.cross_entropy(logits[~ignored], target[~ignored])
        each = losses.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none")
    norms = logits.grad.norm(dim=1)
    minority_plain = [r[minority] for r in recalls["plain"]]
    minority_weighted = [r[minority] for r in recalls["weighted"]]
    plain, plain_std = _mean_std(recalls["plain"])
    weighted, weighted_std = _mean_std(recalls["weighted"])
    return ClassWeights(
        minority=minority,
        seeds=seeds,
        train_counts=counts.tolist(),
        weights=weight.tolist(),
        recall_plain=plain,
        recall_weighted=weighted,
        recall_plain_std=plain_std,
        recall_weighted_std=weighted_std,
        minority_plain=minority_plain,
        minority_weighted=minority_weighted,
        minority_change=tuple(
            v[0]
            for v in _mean_std(
                [[w - p] for p, w in zip(minority_plain, minority_weighted, strict=True)]
            )
        ),
        accuracy_plain=accuracy["plain"],
        accuracy_weighted=accuracy["weighted"],
        ignore_index=ignore_index,
        ignored=int(ignored.sum()),
        kept=int((~ignored).sum()),
        loss_with_ignored=loss.item(),
        loss_kept_only=kept_only.item(),
        loss_all_rows=each.mean().item(),
        ignored_grad_max=norms[ignored].max().item(),
        kept_grad_mean=norms[~ignored].mean().item(),
        row_grad_norms=norms.tolist(),
        row_ignored=ignored.tolist(),
    )


# -- 3. KL divergence: H(P, Q) >= H(P), and forward against reverse ---------------
@dataclass
class GaussianFit:
    direction: str  # 'forward KL(P||Q)' or 'reverse KL(Q||P)'
    mu: float  # the Gaussian's parameters...
    sigma: float
    mean: float  # ...and Q's own mean and std as the distribution on the grid
    std: float  # (Q is a Gaussian cut to the grid: its std can be below sigma)
    q: list[float]
    forward_kl: float
    reverse_kl: float
    history: list[float]


@dataclass
class KLAsymmetry:
    # H(P, Q) >= H(P): a fixed P over six outcomes, Q_t = softmax(t log P)
    # (uniform at t = 0, P at t = 1, sharper than P beyond).
    outcomes: list[float]  # P
    entropy: float  # H(P)
    ts: list[float]
    cross_entropy: list[float]  # H(P, Q_t)
    t_at_min: float
    gap_at_p: float  # H(P, P) - H(P), computed
    random_q: int  # random distributions Q drawn...
    random_min_gap: float  # ...and the smallest H(P, Q) - H(P) among them
    # H(P) does not depend on Q, so H(P, Q) and D_KL(P||Q) move together:
    kl_along: list[float]  # D_KL(P||Q_t) by lossopt's kl_divergence, along the same ts
    constant_gap: tuple[float, float]  # min and max of H(P, Q_t) - D_KL(P||Q_t): both H(P)
    gradient_gap: float  # max |d H(P, Q)/d logits - d D_KL(P||Q)/d logits| over the random Q
    # Forward against reverse KL: one Gaussian fit to two peaks.
    x: list[float]
    p: list[float]
    p_mean: float
    p_std: float
    fits: list[GaussianFit]


def _gaussian_logits(x: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    return -0.5 * ((x - mean) / log_std.exp()) ** 2


def _moments(x: torch.Tensor, p: torch.Tensor) -> tuple[float, float]:
    mean = (p * x).sum()
    return mean.item(), (p * (x - mean) ** 2).sum().sqrt().item()


def _cross_entropy_bound(config: Config) -> dict:
    p = torch.tensor([0.5, 0.2, 0.1, 0.1, 0.05, 0.05], dtype=torch.float64)
    h_p = _entropy(p).item()
    ts = torch.linspace(0, 2, 81, dtype=torch.float64)
    # H(P, Q) with lossopt's cross-entropy: logits log Q (any shift), target P.
    cross = losses.cross_entropy(ts[:, None] * p.log(), p.expand(len(ts), -1), reduction="none")
    g = torch.Generator().manual_seed(config.seed)
    count = 200 if config.quick else 1000
    q = -torch.rand(count, len(p), generator=g, dtype=torch.float64).log()  # Dirichlet(1)
    q = q / q.sum(dim=1, keepdim=True)
    gaps = losses.cross_entropy(q.log(), p.expand(count, -1), reduction="none") - h_p
    kl = losses.kl_divergence(p.log().expand(len(ts), -1), ts[:, None] * p.log(), reduction="none")
    difference = cross - kl
    # The gradients with respect to Q's logits: the same, since H(P) has none.
    q_logits = q.log().requires_grad_(True)
    (by_ce,) = torch.autograd.grad(
        losses.cross_entropy(q_logits, p.expand(count, -1), reduction="sum"), q_logits
    )
    (by_kl,) = torch.autograd.grad(
        losses.kl_divergence(p.log().expand(count, -1), q_logits, reduction="sum"), q_logits
    )
    return dict(
        outcomes=p.tolist(),
        entropy=h_p,
        ts=ts.tolist(),
        cross_entropy=cross.tolist(),
        t_at_min=ts[cross.argmin()].item(),
        gap_at_p=losses.cross_entropy(p.log(), p).item() - h_p,
        random_q=count,
        random_min_gap=gaps.min().item(),
        kl_along=kl.tolist(),
        constant_gap=(difference.min().item(), difference.max().item()),
        gradient_gap=(by_ce - by_kl).abs().max().item(),
    )


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
            q = torch.softmax(q_logits, 0)
            mean, std = _moments(x, q)
            fits.append(
                GaussianFit(
                    direction=direction,
                    mu=params[0].item(),
                    sigma=params[1].exp().item(),
                    mean=mean,
                    std=std,
                    q=q.tolist(),
                    forward_kl=losses.kl_divergence(p_logits, q_logits).item(),
                    reverse_kl=losses.kl_divergence(q_logits, p_logits).item(),
                    history=history,
                )
            )
    p_mean, p_std = _moments(x, p)
    return KLAsymmetry(
        **_cross_entropy_bound(config),
        x=x.tolist(),
        p=p.tolist(),
        p_mean=p_mean,
        p_std=p_std,
        fits=fits,
    )


# -- 4. Triplet margin loss ---------------------------------------------------------
@dataclass
class Triplet:
    """One anchor a, positive p and negative n, in one embedding."""

    anchor: list[float]
    positive: list[float]
    negative: list[float]
    d_ap: float
    d_an: float
    loss: float  # max(d(a, p) - d(a, n) + margin, 0), by lossopt's triplet_margin_loss


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
    indices: tuple[int, int, int]  # validation rows of the example triplet (a, p, n)
    triplet_before: Triplet
    triplet_after: Triplet
    # The embedding's size: root mean square distance of the validation points from
    # their mean. The margin is a fixed length, so the network may meet it by growing
    # the whole embedding: distances are compared against this, not only in absolute terms.
    spread_before: float
    spread_after: float


def _knn_accuracy(train_emb, train_y, val_emb, val_y) -> float:
    nearest = torch.cdist(val_emb, train_emb).argmin(dim=1)
    return (train_y[nearest] == val_y).float().mean().item()


def _triplet(emb: torch.Tensor, a: int, p: int, n: int, margin: float) -> Triplet:
    loss = losses.triplet_margin_loss(emb[a : a + 1], emb[p : p + 1], emb[n : n + 1], margin=margin)
    return Triplet(
        anchor=emb[a].tolist(),
        positive=emb[p].tolist(),
        negative=emb[n].tolist(),
        d_ap=(emb[a] - emb[p]).norm().item(),
        d_an=(emb[a] - emb[n]).norm().item(),
        loss=loss.item(),
    )


def _spread(emb: torch.Tensor) -> float:
    return (emb - emb.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt().item()


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
    # The example triplet: the first validation digit as anchor, its farthest
    # same-digit point and its nearest other-digit point before training: a hard one.
    y, distance = data.y_val, (before - before[0]).norm(dim=1)
    same = y == y[0]
    same[0] = False
    a = 0
    p = int(torch.where(same, distance, -1.0).argmax())
    n = int(torch.where(y != y[0], distance, math.inf).argmin())

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
        mining=mining,
        margin=margin,
        labels=data.y_val.tolist(),
        before=before.tolist(),
        after=after.tolist(),
        loss=history,
        knn_before=knn_before,
        knn_after=knn_after,
        indices=(a, p, n),
        triplet_before=_triplet(before, a, p, n, margin),
        triplet_after=_triplet(after, a, p, n, margin),
        spread_before=_spread(before),
        spread_after=_spread(after),
    )
