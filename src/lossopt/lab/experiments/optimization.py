"""The lecture's optimizers: their paths on the lecture's surface, the learning
rate, adaptive step sizes, and a real network.

Each function takes a Config and returns plain data; nothing here draws.
"""

from __future__ import annotations

import dataclasses
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


# -- the surfaces ---------------------------------------------------------------------
# One definition of each, for the report's experiments and the live lab's explorables.
@dataclass(frozen=True)
class Surface:
    formula: str
    f: Callable  # (x, y, condition) -> value, on numbers or tensors
    minimum: tuple[float, float]
    least: float  # f at the minimum: the loss figures draw f - least on a log axis


def bowl(x, y, condition=20.0):
    """The lecture's elongated bowl x²/κ + y²: κ times flatter along x than along y (20)."""
    return x**2 / condition + y**2


def _rosenbrock(x, y, condition):
    u, v = x / 5, y / 2.5  # Rosenbrock's valley (a = 1, b = 10) stretched over the window
    return (1 - u) ** 2 + 10 * (v - u**2) ** 2


def _saddle(x, y, condition):
    return x**2 / 20 - y**2 / 20 + y**4 / 400


SURFACES = {
    "bowl": Surface("x²/κ + y²", bowl, (0.0, 0.0), 0.0),
    "rosenbrock": Surface("(1 − x/5)² + 10 (y/2.5 − (x/5)²)²", _rosenbrock, (5.0, 2.5), 0.0),
    "saddle": Surface("x²/20 − y²/20 + y⁴/400", _saddle, (0.0, math.sqrt(10)), -0.25),
}

# -- the lecture's surface ----------------------------------------------------------
FORMULA = "f(x, y) = x²/20 + y²"
SURFACE = (1 / 20, 1.0)  # f = a x² + b y² (the bowl at κ = 20): the figures draw its rings
START = (-7.0, 2.0)
BOUNDS = (-10.0, 10.0, -5.0, 5.0)  # x0, x1, y0, y1 of the contour plots


def surface(x, y):
    """The lecture's elongated bowl: 20 times flatter along x than along y."""
    return bowl(x, y, 20.0)


# The rates of the classic textbook figure (SGD 0.95, Momentum 0.1 with momentum
# 0.9, AdaGrad 1.5, Adam 0.3). RMSProp's default alpha = 0.99 makes its first
# steps 10 lr long (G starts at 0.01 g²): 0.1 keeps them about the size of AdaGrad's.
PATH_LRS = {"sgd": 0.95, "momentum": 0.1, "adagrad": 1.5, "rmsprop": 0.1, "adam": 0.3}
PATH_STEPS = 30


@dataclass
class Path:
    optimizer: str
    lr: float
    points: list[tuple[float, float]]  # the start, then one point per step
    values: list[float]  # f at each point
    diverged: bool  # stopped early: a coordinate left [-1e6, 1e6] or stopped being finite
    step_lengths: list[float]  # |point_t - point_t-1|
    crossings: int  # how often the path crosses the valley floor y = 0: its zig-zag
    momentum: float  # alpha (0 but for Momentum)
    effective_lr: float  # lr / (1 - alpha): the step per unit gradient on a steady slope
    # Per step, the factor by which the distance to the minimum shrinks along x and
    # along y (the spectral radius of the linear iteration; None for adaptive rules).
    contraction: tuple[float, float] | None = None


def contraction(lr: float, momentum: float, curvature: float) -> float:
    """How much one step of SGD with momentum shrinks the error along a direction of
    the given curvature, in the long run: on a quadratic w_t+1 = w_t - lr curvature w_t
    + momentum (w_t - w_t-1), whose factor is the larger |root| of
    z² - (1 + momentum - lr curvature) z + momentum (|1 - lr curvature| without momentum)."""
    step = torch.tensor(
        [[1 + momentum - lr * curvature, -momentum], [1.0, 0.0]], dtype=torch.float64
    )
    return torch.linalg.eigvals(step).abs().max().item()


def curvatures(f=surface, at=START) -> tuple[float, float]:
    """The Hessian's eigenvalues at a point, smallest first (one value for a quadratic)."""
    hessian = torch.autograd.functional.hessian(
        lambda xy: f(xy[0], xy[1]), torch.tensor(at, dtype=torch.float64)
    )
    low, high = torch.linalg.eigvalsh(hessian).tolist()
    return low, high


ESCAPE = 1e6  # a path whose coordinate leaves [-1e6, 1e6] has diverged


def trace(
    optimizers, f, start, steps: int
) -> list[tuple[list[tuple[float, float]], list[float], bool]]:
    """(points, values of f, diverged) of each optimizer from `start`: each of
    `optimizers` makes one from its parameter list; f(x, y) on tensors. The paths
    are stepped together, one backward per step through the sum of their f (each
    point's gradient is its own), so five paths cost little more than one. A path
    is cut where a coordinate leaves [-1e6, 1e6] or stops being finite (diverged).
    The report's paths and the live lab's are this one loop."""
    points = [torch.tensor(start, dtype=torch.float64, requires_grad=True) for _ in optimizers]
    opts = [make([p]) for make, p in zip(optimizers, points, strict=True)]
    steps_taken = torch.empty(steps + 1, len(points), 2, dtype=torch.float64)
    steps_taken[0] = torch.tensor(start, dtype=torch.float64)
    for t in range(1, steps + 1):
        for opt in opts:
            opt.zero_grad()
        sum(f(*p.unbind()) for p in points).backward()
        for opt in opts:
            opt.step()
        steps_taken[t] = torch.stack(points).detach()  # no read back to Python inside the loop
    paths = []
    for i in range(len(points)):
        one = steps_taken[:, i]
        bad = ~(one.isfinite().all(dim=1) & (one.abs() <= ESCAPE).all(dim=1))
        kept = int(bad.nonzero()[0]) if bad.any() else steps + 1
        one = one[:kept]
        values = f(one[:, 0], one[:, 1])
        paths.append(([tuple(q) for q in one.tolist()], values.tolist(), kept <= steps))
    return paths


def descend(optimizer: str, lr: float, steps: int, f=surface, start=START) -> Path:
    """Run one of the lab's optimizers on f(x, y) from start for a fixed number of steps."""
    [(points, values, diverged)] = trace(
        [lambda params: OPTIMIZERS[optimizer].build(params, lr)], f, start, steps
    )
    ys = [y for _, y in points]
    spec = OPTIMIZERS[optimizer]
    return Path(
        optimizer=optimizer,
        lr=lr,
        momentum=spec.momentum,
        effective_lr=spec.effective_lr(lr),
        points=points,
        values=values,
        diverged=diverged,
        step_lengths=[math.dist(a, b) for a, b in zip(points, points[1:], strict=False)],
        crossings=sum(1 for a, b in zip(ys, ys[1:], strict=False) if a * b < 0),
    )


@dataclass
class OptimizerPaths:
    formula: str
    surface: tuple[float, float]  # (a, b) of f = a x² + b y²
    start: tuple[float, float]
    minimum: tuple[float, float]
    bounds: tuple[float, float, float, float]
    steps: int
    curvatures: tuple[float, float]  # along x and along y
    paths: list[Path]
    # Momentum at SGD's effective step, lr_sgd (1 - alpha): the fair comparison with
    # SGD (None unless both ran).
    matched: Path | None


def _with_contraction(path: Path, bends: tuple[float, float]) -> Path:
    if path.optimizer not in ("sgd", "momentum"):
        return path
    factors = tuple(contraction(path.lr, path.momentum, c) for c in bends)
    return dataclasses.replace(path, contraction=factors)


def optimizer_paths(config: Config) -> OptimizerPaths:
    steps = config.steps_or(PATH_STEPS)
    bends = curvatures()
    paths = [
        _with_contraction(descend(name, config.lr_or(PATH_LRS[name]), steps), bends)
        for name in config.optimizers
    ]
    named = {p.optimizer: p for p in paths}
    matched = None
    if "sgd" in named and "momentum" in named:
        lr = named["sgd"].effective_lr * (1 - named["momentum"].momentum)
        matched = _with_contraction(descend("momentum", lr, steps), bends)
    return OptimizerPaths(
        formula=FORMULA,
        surface=SURFACE,
        start=START,
        minimum=(0.0, 0.0),
        bounds=BOUNDS,
        steps=steps,
        curvatures=bends,
        paths=paths,
        matched=matched,
    )


# -- the learning rate --------------------------------------------------------------
@dataclass
class RangeTest:
    lrs: list[float]
    loss: list[float]  # smoothed
    lr_at_minimum: float
    suggested_lr: float  # a tenth of lr_at_minimum


@dataclass
class LearningRate:
    surface: tuple[float, float]  # (a, b) of f = a x² + b y²
    curvature: float  # largest second derivative of the surface: SGD diverges above 2 / it
    paths: list[Path]  # plain SGD: too small, right, too large
    labels: list[str]
    range_test: RangeTest


LR_CHOICES = (("too small", 0.02), ("right", 0.5), ("too large", 1.05))


def learning_rate(config: Config) -> LearningRate:
    # The three rates are the point of this experiment, so --lr does not replace them.
    steps = config.steps_or(60 if config.quick else 150)
    paths = [descend("sgd", lr, steps) for _, lr in LR_CHOICES]
    hessian = torch.autograd.functional.hessian(
        lambda xy: surface(xy[0], xy[1]), torch.tensor(START, dtype=torch.float64)
    )
    curvature = torch.linalg.eigvalsh(hessian).max().item()

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
        surface=SURFACE,
        curvature=curvature,
        paths=paths,
        labels=[label for label, _ in LR_CHOICES],
        range_test=RangeTest(lrs[: len(smoothed)], smoothed, at_min, at_min / 10),
    )


# -- adaptive step sizes --------------------------------------------------------------
@dataclass
class AdaptiveSteps:
    lr: float
    steps: list[int]
    adagrad: list[float]  # effective learning rate |delta theta| / |g|
    rmsprop: list[float]
    rmsprop_alpha: float
    rmsprop_first_step: float  # |delta theta| of RMSProp's first step on the stream
    adam_betas: tuple[float, float]
    adam_steps: list[int]
    adam_corrected: list[float]  # lr * mhat / (sqrt(vhat) + eps): Adam's own step
    adam_uncorrected: list[float]  # lr * m / (sqrt(v) + eps)
    adam_actual: list[float]  # |delta theta| measured on lossopt's Adam
    # Adam = Momentum + RMSProp, on the same stream: Adam's m is (1 - beta1) times
    # Momentum's buffer b at mu = beta1, its v is RMSProp's G at gamma = beta2.
    adam_vs_momentum: float  # max |m - (1 - beta1) b| / |m| over the steps
    adam_vs_rmsprop: float  # max |v - G| / |v|
    # AdaGrad's per-element rates on the lecture's surface: lr / (sqrt(h) + eps), by
    # coordinate (x, y), after each step, read from lossopt's Adagrad's state.
    adagrad_lr: float
    adagrad_elements: list[tuple[float, float]]
    # Where RMSProp's eps sits: the lecture's eta g / sqrt(G + eps) against torch's
    # eta g / (sqrt(G) + eps), on a first step (G = (1 - gamma) g²) for each |g|.
    rmsprop_eps: float
    eps_gradients: list[float]
    eps_inside: list[float]  # the lecture's step, from its formula
    eps_outside: list[float]  # torch's, measured on lossopt's RMSprop


def _gradient_stream(config: Config, count: int) -> list[float]:
    g = torch.Generator().manual_seed(config.seed)
    return (1.0 + 0.5 * torch.randn(count, generator=g, dtype=torch.float64)).tolist()


def _effective_lrs(opt_class, stream, lr, **kwargs) -> list[float]:
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = opt_class([theta], lr=lr, **kwargs)
    out = []
    for g in stream:
        before = theta.item()
        theta.grad = torch.tensor([g], dtype=torch.float64)
        opt.step()
        out.append(abs(theta.item() - before) / abs(g))
    return out


def _state_along(opt_class, stream: torch.Tensor, slot: str, lr: float, **kwargs):
    """One optimizer state slot after each gradient of the stream."""
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = opt_class([theta], lr=lr, **kwargs)
    out = []
    for g in stream:
        theta.grad = g.reshape(1).clone()
        opt.step()
        out.append(opt.state[theta][slot].item())
    return torch.tensor(out, dtype=torch.float64)


def _first_step(opt_class, g: float, lr: float, **kwargs) -> float:
    """|the first step| of a fresh optimizer for a gradient g."""
    theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = opt_class([theta], lr=lr, **kwargs)
    theta.grad = torch.tensor([g], dtype=torch.float64)
    opt.step()
    return abs(theta.item())


def _adagrad_elements(lr: float, steps: int) -> list[tuple[float, float]]:
    """AdaGrad on the lecture's surface: each coordinate's rate lr / (sqrt(h) + eps)."""
    xy = torch.tensor(START, dtype=torch.float64, requires_grad=True)
    opt = optim.Adagrad([xy], lr=lr)
    eps = opt.defaults["eps"]
    rates = []
    for _ in range(steps):
        opt.zero_grad()
        surface(xy[0], xy[1]).backward()
        opt.step()
        h = opt.state[xy]["sum"]
        x, y = (lr / (h.sqrt() + eps)).tolist()
        rates.append((x, y))
    return rates


def adaptive_steps(config: Config) -> AdaptiveSteps:
    count = config.steps_or(200 if config.quick else 500)
    stream = _gradient_stream(config, count)
    lr = config.lr_or(0.01)
    alpha = 0.99
    adagrad = _effective_lrs(optim.Adagrad, stream, lr)
    rmsprop = _effective_lrs(optim.RMSprop, stream, lr, alpha=alpha)

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
    stream_t = torch.tensor(stream[:first], dtype=torch.float64)
    momentum_b = _state_along(optim.SGD, stream_t, "momentum_buffer", lr, momentum=beta1)
    rmsprop_g = _state_along(optim.RMSprop, stream_t, "square_avg", lr, alpha=beta2)
    adam_m = _state_along(optim.Adam, stream_t, "exp_avg", lr)
    adam_v = _state_along(optim.Adam, stream_t, "exp_avg_sq", lr)
    rmsprop_eps = optim.RMSprop([torch.zeros(1, requires_grad=True)]).defaults["eps"]
    sizes = [10.0**k for k in range(0, -9, -1)]
    outside = [_first_step(optim.RMSprop, g, lr, alpha=alpha) for g in sizes]
    inside = [lr * g / math.sqrt((1 - alpha) * g * g + rmsprop_eps) for g in sizes]
    adagrad_lr = 1.5  # the paths' rate
    return AdaptiveSteps(
        lr=lr,
        steps=list(range(1, count + 1)),
        adagrad=adagrad,
        rmsprop=rmsprop,
        rmsprop_alpha=alpha,
        rmsprop_first_step=_first_step(optim.RMSprop, stream[0], lr, alpha=alpha),
        adam_betas=(beta1, beta2),
        adam_steps=list(range(1, first + 1)),
        adam_corrected=corrected,
        adam_uncorrected=uncorrected,
        adam_actual=actual,
        adam_vs_momentum=((adam_m - (1 - beta1) * momentum_b).abs() / adam_m.abs()).max().item(),
        adam_vs_rmsprop=((adam_v - rmsprop_g).abs() / adam_v.abs()).max().item(),
        adagrad_lr=adagrad_lr,
        adagrad_elements=_adagrad_elements(adagrad_lr, config.steps_or(PATH_STEPS)),
        rmsprop_eps=rmsprop_eps,
        eps_gradients=sizes,
        eps_inside=inside,
        eps_outside=outside,
    )


# -- training a real model ----------------------------------------------------------
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
    lr_source: str  # 'grid-middle': each optimizer's default_lr; 'user': --lr for all
    epochs: int
    seeds: list[int]
    runs: list[Run]
    ranking: list[Ranked]
    momentum: dict[str, float]  # alpha per optimizer (0 but for Momentum)
    effective_lrs: dict[str, float]  # lr / (1 - alpha) of the rate each ran at


def rank(runs: list[Run], higher_is_better: bool) -> list[Ranked]:
    """Mean and std of the final metric per (optimizer, lr), best first; equal
    means keep the order of the runs (report.places numbers them as ties)."""
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
    ranked.sort(key=lambda r: sign * r.metric_mean if math.isfinite(r.metric_mean) else math.inf)
    return ranked


def default_lr(name: str) -> float:
    """The middle of the optimizer's learning-rate grid (OptimizerSpec.sweep)."""
    sweep = OPTIMIZERS[name].sweep
    return sweep[len(sweep) // 2]


def training(config: Config) -> Training:
    data = digits(config.seed)
    seeds = list(range(config.seed, config.seed + (2 if config.quick else 3)))
    epochs = config.steps_or(3 if config.quick else 15)
    rates = {name: config.lr_or(default_lr(name)) for name in config.optimizers}
    runs = [
        train(data, name, rates[name], epochs=epochs, seed=seed)
        for name in config.optimizers
        for seed in seeds
    ]
    return Training(
        task="classification",
        metric="validation accuracy",
        lr_source="user" if config.lr is not None else "grid-middle",
        epochs=epochs,
        seeds=seeds,
        runs=runs,
        ranking=rank(runs, higher_is_better=True),
        momentum={name: OPTIMIZERS[name].momentum for name in config.optimizers},
        effective_lrs={name: OPTIMIZERS[name].effective_lr(lr) for name, lr in rates.items()},
    )
