"""`lossopt lab compare`: which optimizer, which learning rate, for the user's table?

The method, chosen so that the answer holds on new rows:

- repeated random train/test splits, stratified by class for classification;
- inside each split, the training rows are split again: the network trains on
  one part and the other (validation) part picks the learning rate from a grid
  and stops training when its loss stops falling (early stopping, best weights
  kept); the grid is widened while the best rate sits at its edge;
- the chosen network is scored once, on the test rows it never saw;
- scores are given as a mean with a 95% interval over the splits (each split
  also has its own initialisation seed). Repeated splits share training rows,
  so the plain standard error is too small: the interval uses Nadeau and
  Bengio's corrected variance (1/J + n_test/n_train) s^2 (Machine Learning 52,
  2003), and so does the paired comparison that decides ties;
- baselines on the same splits: the majority class (or the mean) and
  scikit-learn's LogisticRegression (or Ridge).

Returns plain data; compare_report.py shows it.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from lossopt.lab.config import Config
from lossopt.lab.data import Table
from lossopt.lab.optimizers import OPTIMIZERS
from lossopt.lab.training import Run, evaluate, fit_rates, one_thread

HIDDEN = 64
BATCH_SIZE = 64
TEST_FRACTION = 0.25
VAL_FRACTION = 0.2
CONFIDENCE = 0.95
DEFAULT_LR = {"adagrad": 0.01, "rmsprop": 0.01, "adam": 0.001}  # torch.optim's defaults
# How to write each optimizer of the lab with torch.optim, for the code to paste.
TORCH_CODE = {
    "sgd": "torch.optim.SGD(model.parameters(), lr={lr:g})",
    "momentum": "torch.optim.SGD(model.parameters(), lr={lr:g}, momentum=0.9)",
    "adagrad": "torch.optim.Adagrad(model.parameters(), lr={lr:g})",
    "rmsprop": "torch.optim.RMSprop(model.parameters(), lr={lr:g})",
    "adam": "torch.optim.Adam(model.parameters(), lr={lr:g})",
}


@dataclass(frozen=True)
class Plan:
    """How much work: fewer splits, epochs and widening steps with --quick."""

    splits: int
    max_epochs: int
    patience: int
    span: int  # grid points added on each side of an optimizer's sweep from the start
    widen: int  # grid points that may be added on each side after that


def plan(config: Config) -> Plan:
    if config.quick:
        return Plan(5, config.steps_or(30), 5, 0, 1)
    return Plan(5, config.steps_or(60), 8, 0, 2)


def count_units(config: Config) -> int:
    """Progress steps of `compare`: one per split and optimizer, one for the baselines."""
    return plan(config).splits * len(config.optimizers) + 1


@dataclass
class Trial:
    """One learning rate tried in one split, scored on that split's validation part."""

    optimizer: str
    split: int
    lr: float
    val_metric: float
    val_loss: float
    epochs: int


@dataclass
class Interval:
    mean: float
    low: float
    high: float


@dataclass
class Scored:
    """An optimizer (or a baseline) over every split: test scores, their interval,
    and the paired difference from the best optimizer."""

    name: str
    label: str
    test: list[float]  # one per split
    score: Interval
    chosen_lr: list[float] = field(default_factory=list)  # one per split; empty for baselines
    lr: float | None = None  # the median chosen rate: the one to use
    at_edge: int = 0  # splits whose best rate sat at the edge of the widest grid
    versus_best: Interval | None = None  # best minus this (in "better" units: > 0 = worse)
    tie: bool = False


@dataclass
class Comparison:
    data: str
    target: str
    task: str
    metric: str
    higher_is_better: bool
    rows: int
    features: list[str]
    classes: list[str]
    class_counts: list[int]
    data_warnings: list[str]
    splits: int
    test_rows: int
    val_fraction: float  # of each split's training rows, for choosing the rate and stopping
    model: str
    parameters: int
    max_epochs: int
    patience: int
    batch_size: int
    trials: list[Trial]
    curves: list[Run]  # validation curves at the chosen rate, first split
    optimizers: list[Scored]  # best first
    baselines: list[Scored]
    tied: list[str]
    recommendation: str
    code: str  # the setup to paste; empty when there is no recommendation
    warnings: list[str]
    seconds: float  # machine-dependent: kept out of results.json


def _splits(y: np.ndarray, task: str, count: int, test_fraction: float, seed: int):
    """count random (train, test) index pairs, stratified by class for classification."""
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    kind = StratifiedShuffleSplit if task == "classification" else ShuffleSplit
    splitter = kind(n_splits=count, test_size=test_fraction, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _interval(
    values: list[float], test_over_train: float, bounds: tuple[float, float] = (-math.inf, math.inf)
) -> Interval:
    """Mean and a 95% interval with the corrected resampled variance, kept within
    bounds (an accuracy cannot pass 1, an RMSE cannot fall below 0)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        return Interval(mean, mean, mean)
    var = statistics.variance(values) * (1 / len(values) + test_over_train)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(values) - 1)) * math.sqrt(var)
    return Interval(mean, max(bounds[0], mean - half), min(bounds[1], mean + half))


def _better(a: Trial, b: Trial) -> bool:
    """a beats b on validation loss: smoother than accuracy, which often ties on
    small validation parts (and the loss is what early stopping watches)."""
    loss_a = a.val_loss if math.isfinite(a.val_loss) else math.inf
    loss_b = b.val_loss if math.isfinite(b.val_loss) else math.inf
    return loss_a < loss_b


def _search(table, name, inner, test_rows, config, settings, split, seed):
    """Try rates on the validation part, widening the grid while the best is at
    an edge; return the trials, the best one's run, its test score and rate."""
    data = table.split(*inner)
    (_, _), (x_test, y_test) = table.prepare(inner[0], test_rows)
    grid = sorted((config.lr,) if config.lr is not None else OPTIMIZERS[name].sweep)
    ratio = grid[1] / grid[0] if len(grid) > 1 else 1.0
    if len(grid) > 1:
        lower = [_rate(grid[0] / ratio**i) for i in range(settings.span, 0, -1)]
        grid = lower + grid + [_rate(grid[-1] * ratio**i) for i in range(1, settings.span + 1)]
    tried: dict[float, tuple[Trial, torch.nn.Module, Run]] = {}
    widened = {"low": 0, "high": 0}
    while True:
        new = [lr for lr in grid if lr not in tried]
        trained = fit_rates(
            data,
            name,
            new,
            epochs=settings.max_epochs,
            seed=seed,
            batch_size=BATCH_SIZE,
            patience=settings.patience,
        )
        for lr, (model, run) in zip(new, trained, strict=True):
            best = run.best_epoch if run.best_epoch is not None else len(run.val_loss) - 1
            trial = Trial(name, split, lr, run.val_metric[best], run.val_loss[best], best + 1)
            tried[lr] = (trial, model, run)
        best_lr = grid[0]
        for lr in grid[1:]:
            if _better(tried[lr][0], tried[best_lr][0]):
                best_lr = lr
        # widen by every step still allowed at once: one more run trains them together
        if len(grid) > 1 and best_lr == grid[0] and widened["low"] < settings.widen:
            steps = settings.widen - widened["low"]
            grid = [_rate(grid[0] / ratio**i) for i in range(steps, 0, -1)] + grid
            widened["low"] = settings.widen
        elif len(grid) > 1 and best_lr == grid[-1] and widened["high"] < settings.widen:
            steps = settings.widen - widened["high"]
            grid = grid + [_rate(grid[-1] * ratio**i) for i in range(1, steps + 1)]
            widened["high"] = settings.widen
        else:
            break
    trial, model, run = tried[best_lr]
    at_edge = len(grid) > 1 and best_lr in (grid[0], grid[-1])
    _, metric = evaluate(model, torch.from_numpy(x_test), torch.from_numpy(y_test), table.task)
    if not math.isfinite(metric):
        metric = 0.0 if table.task == "classification" else math.inf
    return [tried[lr][0] for lr in grid], run, metric, best_lr, at_edge


def _rate(value: float) -> float:
    return float(f"{value:.3g}")  # 0.3, not 0.30000000000000004


def _baselines(table: Table, splits) -> list[tuple[str, str, list[float]]]:
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if table.task == "classification":
        models = [
            ("majority", "majority class", lambda: DummyClassifier(strategy="most_frequent")),
            ("logistic", "LogisticRegression", lambda: LogisticRegression(max_iter=2000)),
        ]
    else:
        models = [
            ("mean", "mean of the training target", lambda: DummyRegressor(strategy="mean")),
            ("ridge", "Ridge (alpha=1)", lambda: Ridge(alpha=1.0)),
        ]
    scores = {name: [] for name, _, _ in models}
    for train_rows, test_rows in splits:
        (x_train, y_train), (x_test, y_test) = table.prepare(train_rows, test_rows)
        for name, _, make in models:
            predicted = make().fit(x_train, y_train).predict(x_test)
            if table.task == "classification":
                scores[name].append(float(np.mean(predicted == y_test)))
            else:
                scores[name].append(float(np.sqrt(np.mean((predicted - y_test) ** 2))))
    return [(name, label, scores[name]) for name, label, _ in models]


def _median_rate(rates: list[float]) -> float:
    ordered = sorted(rates)
    return ordered[(len(ordered) - 1) // 2]


def _difference(best: list[float], other: list[float], higher: bool, ratio: float) -> Interval:
    """How much better best is than other, split by split (> 0: best is better)."""
    sign = 1 if higher else -1
    return _interval([sign * (b - o) for b, o in zip(best, other, strict=True)], ratio)


def _code(name: str, lr: float, inputs: int, outputs: int, task: str, patience: int) -> str:
    fallback = f"lossopt.optim.{OPTIMIZERS[name].label}(model.parameters(), lr={{lr:g}})"
    optimizer = TORCH_CODE.get(name, fallback)
    loss = "nn.CrossEntropyLoss()" if task == "classification" else "nn.MSELoss()"
    return "\n".join(
        [
            "import torch",
            "from torch import nn",
            *(["import lossopt.optim"] if name not in TORCH_CODE else []),
            "",
            "# inputs standardized with the training rows' mean and standard deviation"
            + ("; target too" if task == "regression" else ""),
            f"model = nn.Sequential(nn.Linear({inputs}, {HIDDEN}), nn.ReLU(), "
            f"nn.Linear({HIDDEN}, {outputs}))",
            f"optimizer = {optimizer.format(lr=lr)}",
            f"loss_fn = {loss}",
            f"# mini-batches of {BATCH_SIZE}, reshuffled every epoch; stop when the validation "
            f"loss has not fallen for {patience} epochs and keep the best weights",
        ]
    )


def compare(table: Table, config: Config, progress=None) -> Comparison:
    """Compare config.optimizers on table (see the module docstring for the method)."""
    with one_thread():
        return _compare(table, config, progress)


def _compare(table: Table, config: Config, progress) -> Comparison:
    start = time.perf_counter()
    settings = plan(config)
    higher = table.task == "classification"
    metric = "test accuracy" if higher else "test RMSE (in target standard deviations)"
    outer = _splits(table.y, table.task, settings.splits, TEST_FRACTION, config.seed)
    test_rows = len(outer[0][1])
    ratio = test_rows / len(outer[0][0])
    bounds = (0.0, 1.0) if higher else (0.0, math.inf)

    trials: list[Trial] = []
    curves: list[Run] = []
    scored: list[Scored] = []
    for name in config.optimizers:
        tests, chosen, edges = [], [], 0
        for split, (train_rows, test_part) in enumerate(outer):
            # the same validation rows for every optimizer in this split
            fit_part, val_part = _splits(
                table.y[train_rows], table.task, 1, VAL_FRACTION, config.seed + 1000 + split
            )[0]
            inner = (train_rows[fit_part], train_rows[val_part])
            found, run, test_metric, lr, at_edge = _search(
                table, name, inner, test_part, config, settings, split, config.seed + split
            )
            trials.extend(found)
            tests.append(test_metric)
            chosen.append(lr)
            edges += at_edge
            if split == 0:
                curves.append(run)
            if progress:
                progress(f"{name}, split {split + 1}/{settings.splits}")
        label = OPTIMIZERS[name].label
        scored.append(
            Scored(
                name,
                label,
                tests,
                _interval(tests, ratio, bounds),
                chosen,
                _median_rate(chosen),
                edges,
            )
        )
    sign = 1 if higher else -1
    scored.sort(key=lambda s: -sign * s.score.mean if math.isfinite(s.score.mean) else math.inf)
    best = scored[0]
    for s in scored:
        s.versus_best = _difference(best.test, s.test, higher, ratio)
        s.tie = bool(s is best or s.versus_best.low <= 0)
    tied = [s.name for s in scored if s.tie]

    baselines = []
    for name, label, tests in _baselines(table, outer):
        b = Scored(name, label, tests, _interval(tests, ratio, bounds))
        b.versus_best = _difference(best.test, tests, higher, ratio)
        baselines.append(b)
    if progress:
        progress("baselines")

    warnings = []
    trivial, linear = baselines
    chance = trivial.versus_best.low <= 0
    if chance:
        warnings.append(
            f"no optimizer beats the {trivial.label} baseline ({metric} "
            f"{trivial.score.mean:.3f}) beyond the noise: the inputs may not predict "
            f"'{table.target}'; no recommendation"
        )
    elif linear.versus_best.low <= 0:
        warnings.append(
            f"{linear.label} does as well as the best network ({metric} "
            f"{linear.score.mean:.3f} against {best.score.mean:.3f}): a linear model may be "
            "all this table needs"
        )
    for s in scored:
        # at the edge in a few splits is the noise of small validation parts; in most, a signal
        if 2 * s.at_edge > settings.splits and config.lr is None:
            warnings.append(
                f"{s.label}: the best learning rate sat at the edge of the widened grid in "
                f"{s.at_edge} of {settings.splits} splits; a better one may lie beyond"
            )

    recommendation = _recommend(scored, tied, best, metric, chance, trivial)
    pick = best_pick(scored, tied)
    inputs, outputs = table.x.shape[1], (len(table.classes) if higher else 1)
    parameters = (inputs + 1) * HIDDEN + (HIDDEN + 1) * outputs
    loss = "cross-entropy" if higher else "mean squared error"
    model = (
        f"a multilayer perceptron: {inputs} inputs → {HIDDEN} ReLU units → {outputs} "
        f"output{'s' * (outputs != 1)} ({parameters:,} parameters), trained on {loss} in "
        f"mini-batches of {BATCH_SIZE}"
    )
    counts = np.bincount(table.y, minlength=len(table.classes)).tolist() if higher else []
    return Comparison(
        data=table.path,
        target=table.target,
        task=table.task,
        metric=metric,
        higher_is_better=higher,
        rows=table.rows,
        features=table.features,
        classes=table.classes,
        class_counts=counts,
        data_warnings=table.warnings,
        splits=settings.splits,
        test_rows=test_rows,
        val_fraction=VAL_FRACTION,
        model=model,
        parameters=parameters,
        max_epochs=settings.max_epochs,
        patience=settings.patience,
        batch_size=BATCH_SIZE,
        trials=trials,
        curves=curves,
        optimizers=scored,
        baselines=baselines,
        tied=tied,
        recommendation=recommendation,
        code=""
        if chance
        else _code(pick.name, pick.lr, inputs, outputs, table.task, settings.patience),
        warnings=warnings,
        seconds=time.perf_counter() - start,
    )


def best_pick(scored: list[Scored], tied: list[str]) -> Scored:
    """The one to use: Adam when it ties with the best (the common default), else the best."""
    by_name = {s.name: s for s in scored}
    return by_name["adam"] if "adam" in tied else scored[0]


def _recommend(scored, tied, best, metric, chance, trivial) -> str:
    def score(s: Scored) -> str:
        i = s.score
        return f"{metric} {i.mean:.3f} (95% interval {i.low:.3f} to {i.high:.3f})"

    if chance:
        return (
            f"No recommendation: no optimizer does better than the {trivial.label} "
            f"({score(trivial)})."
        )
    if len(tied) == 1:
        return (
            f"{best.label} with lr={best.lr:g}: {score(best)}, better than every other "
            "optimizer beyond the noise of the splits."
        )
    labels = [OPTIMIZERS[n].label for n in tied]
    names = ", ".join(labels[:-1]) + " and " + labels[-1]
    pick = best_pick(scored, tied)
    default = DEFAULT_LR.get(pick.name)
    at_default = " at its default" if default is not None and math.isclose(pick.lr, default) else ""
    return (
        f"No meaningful difference between {names}: {pick.label}{at_default} (lr={pick.lr:g}) "
        f"is fine, {score(pick)}; the highest-scoring, {best.label}, had {best.score.mean:.3f}."
        if pick is not best
        else f"No meaningful difference between {names}: {best.label} with lr={best.lr:g} "
        f"is fine, {score(best)}."
    )
