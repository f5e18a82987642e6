"""`lossopt lab compare`: which optimizer, which learning rate, for the user's table?

The answer is a rule, and the rule is what is scored:

- the rule: for each optimizer, choose its learning rate by validation inside
  the training rows (k-fold on small tables; one held-out part of a subsample
  on large ones); then choose the optimizer by the one-standard-error rule:
  among those whose validation score lies within one standard error of the
  best, the one whose score falls least when its rate is off by the grid's
  factor either way (the least sensitive to its rate);
- the rule is applied, as a whole, inside each of several random train/test
  splits (stratified by class for classification) and its pick is scored once
  on the test rows it never saw; the mean of those scores, with a 95% interval
  from Nadeau and Bengio's corrected variance (1/J + n_test/n_train) s^2
  (Machine Learning 52, 2003; the splits share training rows), is the score of
  the rule;
- the setup to use is what the same rule picks on all rows;
- baselines on the same splits: the class prior (or the mean) and
  scikit-learn's LogisticRegression (or Ridge).

A rate is chosen on the user's metric, averaged over the folds, not on the
validation loss alone (on a few dozen rows it reaches 0 and rewards the largest
rate): the rates within one standard error of the best form a plateau and the
pick is its middle, so that a rate off by a little still works. The grid widens
while the pick sits at its edge, up to a stated number of steps.

Independent searches run in parallel processes (joblib, one per core), each on
one thread. Returns plain data; compare_report.py writes every sentence.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lossopt import optim
from lossopt.lab.data import Split, Table
from lossopt.lab.i18n import N_, _
from lossopt.lab.optimizers import OPTIMIZERS, OptimizerSpec
from lossopt.lab.training import HIDDEN, Factory, Run, fit, fit_rates, perceptron

TEST_FRACTION = 0.25
CONFIDENCE = 0.95
WEIGHT_DECAY = 0.01  # torch.optim.AdamW's default
KFOLD_ROWS = 2000  # at most this many rows to choose on: k-fold; more: one held-out fold
SEARCH_ROWS = 6000  # the rate is chosen on a subsample of this many training rows at most
LARGE_BATCH_ROWS = 12_000  # training rows from which mini-batches hold 256 rows, not 64
STEP_BUDGET = 2000  # the epoch cap allows about this many steps on the rows rates are chosen on
IMBALANCE = 1.5  # largest class over smallest above this: balanced accuracy by default

# (label, higher is better, task) of each metric --metric accepts; the label is kept in
# English in the results and translated where it is shown
METRICS = {
    "accuracy": (N_("accuracy"), True, "classification"),
    "balanced_accuracy": (N_("balanced accuracy"), True, "classification"),
    "f1": ("F1", True, "classification"),
    "roc_auc": ("ROC AUC", True, "classification"),
    "log_loss": (N_("log loss"), False, "classification"),
    "rmse": ("RMSE", False, "regression"),
    "mae": ("MAE", False, "regression"),
    "r2": ("R²", True, "regression"),
}


def choices(weight_decay: float = WEIGHT_DECAY) -> dict[str, OptimizerSpec]:
    """The lab's five optimizers and AdamW (decoupled weight decay), by name."""
    adamw = OptimizerSpec(
        "adamw",
        "AdamW",
        lambda p, lr: optim.AdamW(p, lr=lr, weight_decay=weight_decay),
        (1e-3, 3e-3, 1e-2),
    )
    return {**OPTIMIZERS, "adamw": adamw}


def parse_optimizers(text: str | None) -> tuple[str, ...]:
    """'sgd,adamw' -> ('sgd', 'adamw'); ValueError naming an unknown one."""
    names = list(choices())
    if text is None:
        return tuple(names)
    picked = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not picked:
        raise ValueError(_("--optimizers names no optimizer"))
    for name in picked:
        if name not in names:
            raise ValueError(
                _("unknown optimizer {name!r}; choose from {names}").format(
                    name=name, names=", ".join(names)
                )
            )
    return tuple(dict.fromkeys(picked))


@dataclass(frozen=True)
class Settings:
    """What the user asked for (the command line's options)."""

    seed: int = 0
    quick: bool = False
    optimizers: tuple[str, ...] = field(default_factory=lambda: tuple(choices()))
    lr: float | None = None  # one rate for every optimizer: no search
    epochs: int | None = None  # the epoch cap; default from the table's size
    metric: str | None = None  # default from the table (see default_metric)
    model: str | None = None  # 'path.py:function', else the lab's perceptron
    device: str = "cpu"
    weight_decay: float = WEIGHT_DECAY
    jobs: int | None = None  # processes; default every core


def default_metric(table: Table) -> str:
    if table.task == "regression":
        return "rmse"
    counts = np.bincount(table.y, minlength=len(table.classes))
    return "balanced_accuracy" if counts.max() > IMBALANCE * counts.min() else "accuracy"


def check_metric(metric: str, task: str) -> None:
    if metric not in METRICS:
        raise ValueError(
            _("unknown metric {metric!r}; choose from {names}").format(
                metric=metric, names=", ".join(METRICS)
            )
        )
    if METRICS[metric][2] != task:
        fits = [m for m, (_label, _higher, t) in METRICS.items() if t == task]
        if task == "regression":
            text = _("--metric {metric} is for classification; for regression choose from {names}")
        else:
            text = _("--metric {metric} is for regression; for classification choose from {names}")
        raise ValueError(text.format(metric=metric, names=", ".join(fits)))


def resolve_device(device: str) -> str:
    """'auto' -> 'cuda' when a GPU is there, else 'cpu'; ValueError for a missing one."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(
            _("--device must be auto, cpu or cuda, got {device!r}").format(device=device)
        )
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            _("--device cuda: no CUDA device is available (torch.cuda.is_available() is False)")
        )
    return device


@functools.cache
def load_model(spec: str) -> Factory:
    """'path.py:function' -> the function, a factory (inputs, outputs) -> nn.Module."""
    path, sep, name = spec.rpartition(":")
    if not sep or not path or not name:
        raise ValueError(_("--model must be path.py:function, got {spec!r}").format(spec=spec))
    file = Path(path)
    if not file.is_file() or file.suffix != ".py":
        raise ValueError(
            _("--model {spec}: {path} is not a Python file").format(spec=spec, path=path)
        )
    module_spec = importlib.util.spec_from_file_location(f"lossopt_user_model_{file.stem}", file)
    module = importlib.util.module_from_spec(module_spec)
    try:
        module_spec.loader.exec_module(module)
    except Exception as error:  # the user's file: any failure is theirs, said in one line
        raise ValueError(
            _("--model {spec}: importing {path} failed: {error}").format(
                spec=spec, path=path, error=f"{type(error).__name__}: {error}"
            )
        ) from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise ValueError(
            _("--model {spec}: {path} has no function {name!r}").format(
                spec=spec, path=path, name=name
            )
        )
    return factory


def check_model(factory: Factory, inputs: int, outputs: int, spec: str) -> int:
    """Build the user's network once and run two rows through it; its parameter count."""
    try:
        network = factory(inputs, outputs)
    except Exception as error:
        raise ValueError(
            _("--model {spec}: calling it with ({inputs}, {outputs}) failed: {error}").format(
                spec=spec, inputs=inputs, outputs=outputs, error=f"{type(error).__name__}: {error}"
            )
        ) from None
    if not isinstance(network, torch.nn.Module):
        raise ValueError(
            _("--model {spec} must return a torch.nn.Module, got {type}").format(
                spec=spec, type=type(network).__name__
            )
        )
    try:
        with torch.no_grad():
            shape = tuple(network(torch.zeros(2, inputs)).shape)
    except Exception as error:
        raise ValueError(
            _("--model {spec}: a batch of shape (2, {inputs}) failed: {error}").format(
                spec=spec, inputs=inputs, error=f"{type(error).__name__}: {error}"
            )
        ) from None
    if shape != (2, outputs):
        raise ValueError(
            _(
                "--model {spec}: a batch of shape (2, {inputs}) gave shape {shape}, "
                "expected (2, {outputs})"
            ).format(spec=spec, inputs=inputs, shape=shape, outputs=outputs)
        )
    return sum(p.numel() for p in network.parameters())


@dataclass(frozen=True)
class Plan:
    """How much work, from the settings and the table's size."""

    splits: int  # outer train/test splits
    folds: int  # inner folds; with kfold False only the first is used, as a held-out part
    kfold: bool
    search_rows: int  # training rows the rate is chosen on (a subsample when fewer)
    subsampled: bool
    batch_size: int
    max_epochs: int
    patience: int
    widen: int  # grid points that may be added on each side
    jobs: int


def plan(settings: Settings, rows: int) -> Plan:
    splits, folds = (3, 3) if settings.quick else (5, 5)
    train_rows = rows - _test_count(rows)
    search_rows = min(train_rows, SEARCH_ROWS // 2 if settings.quick else SEARCH_ROWS)
    kfold = search_rows <= KFOLD_ROWS
    batch = 64 if train_rows <= LARGE_BATCH_ROWS else 256
    steps = math.ceil(search_rows * (1 - 1 / folds) / batch)
    budget = STEP_BUDGET // 3 if settings.quick else STEP_BUDGET
    low, high = (30, 120) if settings.quick else (60, 300)
    epochs = settings.epochs or min(high, max(low, math.ceil(budget / steps)))
    jobs = 1 if settings.device != "cpu" else settings.jobs or os.cpu_count() or 1
    return Plan(
        splits=splits,
        folds=folds,
        kfold=kfold,
        search_rows=search_rows,
        subsampled=search_rows < train_rows,
        batch_size=batch,
        max_epochs=epochs,
        patience=5 if settings.quick else 10,
        widen=1 if settings.quick else 2,
        jobs=jobs,
    )


def _test_count(rows: int) -> int:
    return math.ceil(rows * TEST_FRACTION)  # as scikit-learn's splitters round it


@dataclass
class Interval:
    mean: float
    low: float
    high: float


@dataclass
class Search:
    """One optimizer's rate search inside one split's training rows (or all rows)."""

    optimizer: str
    split: int  # 0 .. splits-1; `splits` for the search on all rows
    rates: list[float]  # every rate tried, ascending
    scores: list[float]  # validation metric per rate, mean over folds (NaN: diverged)
    errors: list[float]  # its standard error
    losses: list[float]  # validation loss per rate, mean over folds
    diverged: list[int]  # folds whose run diverged, per rate
    lr: float  # the pick: the middle of the plateau
    score: float  # validation metric at lr
    error: float
    sensitivity: float  # fall of the score at lr times or over the grid's factor (worst side)
    at_edge: bool  # lr sits at an edge of the widest grid allowed
    capped: int  # runs at lr that reached the epoch cap still improving
    runs: int  # runs at lr (one per fold)
    test: float | None = None  # the fold-1 network at lr on the split's test rows (small tables)
    curve: Run | None = None  # its validation curve (first split only)


@dataclass
class Pick:
    """The rule's pick in one split: optimizer and rate, and its test score."""

    split: int
    optimizer: str
    lr: float
    tied: list[str]  # within one standard error of the best validation score
    best: str  # the highest validation score
    test: float
    epochs: int  # epochs of the final fit (to its kept weights)
    capped: bool


@dataclass
class Scored:
    """One optimizer over the splits, each at the rate its search chose there."""

    name: str
    validation: list[float]  # per split: the validation score at the chosen rate
    score: Interval  # over the splits
    test: list[float]  # per split: its fold-1 network on the test rows (empty when subsampled)
    test_score: Interval | None
    rates: list[float]  # chosen per split
    picked: int  # splits where the rule picked it
    sensitivity: float  # median over the splits
    at_edge: int  # splits whose pick sat at the edge of the widest grid
    capped: int  # runs at the chosen rates that reached the epoch cap still improving
    runs: int


@dataclass
class Baseline:
    name: str
    label: str
    test: list[float]
    score: Interval
    versus_rule: Interval  # baseline minus rule, in the metric's "better" direction (> 0: better)


@dataclass
class Comparison:
    data: str
    target: str
    task: str
    rows: int
    columns: list[str]  # the file's header after renaming, in order
    numeric: list[str]
    text: list[str]
    categories: list[list[str]]
    features: list[str]  # the network's inputs: numbers, then one per category
    classes: list[str]
    class_counts: list[int]
    delimiter: str
    data_warnings: list[str]
    metric: str
    metric_label: str
    higher_is_better: bool
    metric_by_default: bool
    seed: int
    splits: int
    folds: int
    kfold: bool
    search_rows: int
    subsampled: bool
    train_rows: int
    test_rows: int
    test_fraction: float
    model: str | None  # 'path.py:function', or None for the lab's perceptron
    hidden: int
    parameters: int
    outputs: int
    max_epochs: int
    patience: int
    batch_size: int
    widen: int
    weight_decay: float
    device: str
    jobs: int
    optimizers: list[str]
    given_lr: float | None
    searches: list[Search]  # every optimizer in every split, then on all rows
    scored: list[Scored]  # one per optimizer, in the order asked
    picks: list[Pick]  # the rule's pick in each split
    rule: Interval  # the rule's test score over the splits
    final: Pick  # the rule on all rows; its test score is that of the first split's rows
    baselines: list[Baseline]
    beats_trivial: bool  # the rule beats the prior (mean) baseline beyond the noise
    seconds: float  # machine-dependent: kept out of results.json


# -- pieces the computation is made of ---------------------------------------------------


def _goodness(value: float, higher: bool) -> float:
    """A score where more is better, -inf for a diverged run."""
    if not math.isfinite(value):
        return -math.inf
    return value if higher else -value


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


def bounds(metric: str) -> tuple[float, float]:
    if metric in ("accuracy", "balanced_accuracy", "f1", "roc_auc"):
        return (0.0, 1.0)
    if metric == "r2":
        return (-math.inf, 1.0)
    return (0.0, math.inf)


def score(metric: str, y: np.ndarray, output: np.ndarray, classes: int) -> float:
    """The metric with scikit-learn's implementation. output: class probabilities
    (rows x classes), or predictions in the target's units; NaN when not finite."""
    if not np.all(np.isfinite(output)):
        return math.nan
    with warnings.catch_warnings():  # a small validation chunk may lack a class: expected
        warnings.simplefilter("ignore", UserWarning)
        return _score(metric, y, output, classes)


def _score(metric: str, y: np.ndarray, output: np.ndarray, classes: int) -> float:
    from sklearn import metrics

    if metric in ("rmse", "mae", "r2"):
        prediction = output.reshape(-1)
        if metric == "rmse":
            return math.sqrt(metrics.mean_squared_error(y, prediction))
        if metric == "mae":
            return float(metrics.mean_absolute_error(y, prediction))
        return float(metrics.r2_score(y, prediction))
    labels = list(range(classes))
    predicted = output.argmax(axis=1)
    if metric == "accuracy":
        return float(metrics.accuracy_score(y, predicted))
    if metric == "balanced_accuracy":
        return float(metrics.balanced_accuracy_score(y, predicted))
    if metric == "f1":  # binary: of the second class; more classes: the mean over classes
        average = "binary" if classes == 2 else "macro"
        return float(
            metrics.f1_score(y, predicted, labels=labels, average=average, zero_division=0)
        )
    if metric == "log_loss":
        return float(metrics.log_loss(y, output, labels=labels))
    if len(np.unique(y)) < classes:  # ROC AUC needs every class among the rows
        return math.nan
    if classes == 2:
        return float(metrics.roc_auc_score(y, output[:, 1]))
    return float(metrics.roc_auc_score(y, output, multi_class="ovr", labels=labels))


@torch.no_grad()
def predict(
    network: torch.nn.Module, x: np.ndarray, task: str, scale: tuple[float, float], device: str
) -> np.ndarray:
    """Class probabilities, or predictions in the target's units."""
    network.eval()
    output = network(torch.from_numpy(x).to(device)).double().cpu()
    network.train()
    if task == "classification":
        return torch.softmax(output, dim=1).numpy()
    mean, std = scale
    return output.reshape(-1).numpy() * std + mean


def splits(y: np.ndarray, task: str, count: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """count random (train, test) index pairs, stratified by class for classification."""
    from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

    kind = StratifiedShuffleSplit if task == "classification" else ShuffleSplit
    splitter = kind(n_splits=count, test_size=TEST_FRACTION, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def folds(
    rows: np.ndarray, y: np.ndarray, task: str, count: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The k (fit, validation) folds of rows, stratified for classification; the
    first is the held-out part a final network stops on."""
    from sklearn.model_selection import KFold, StratifiedKFold

    kind = StratifiedKFold if task == "classification" else KFold
    splitter = kind(n_splits=count, shuffle=True, random_state=seed)
    return [(rows[a], rows[b]) for a, b in splitter.split(np.zeros(len(rows)), y[rows])]


def _subsample(rows: np.ndarray, y: np.ndarray, task: str, size: int, seed: int) -> np.ndarray:
    if size >= len(rows):
        return rows
    from sklearn.model_selection import train_test_split

    kept, _left_out = train_test_split(
        rows,
        train_size=size,
        random_state=seed,
        stratify=y[rows] if task == "classification" else None,
    )
    return np.sort(kept)


def _rate(value: float) -> float:
    return float(f"{value:.3g}")  # 0.3, not 0.30000000000000004


def _plateau_middle(rates: list[float], good: list[float], error: float) -> float:
    """The middle (on a log scale) of the run of neighbouring rates, around the
    best, whose scores lie within error of it; of two middles, the one that
    scored higher (the lower rate when they scored the same). Always the lower
    one drifted away from the best: a plateau of the best and the rate below it
    at the grid's low edge gave the edge, the grid widened downward, and the new
    middle lay further down still (breast_cancer's Adam: best at 0.003, picked
    0.000333)."""
    best = int(np.argmax(good))
    low = high = best
    while low > 0 and good[low - 1] >= good[best] - error:
        low -= 1
    while high < len(rates) - 1 and good[high + 1] >= good[best] - error:
        high += 1
    lower, upper = (low + high) // 2, (low + high + 1) // 2
    return rates[upper if good[upper] > good[lower] else lower]


def _chunk_error(metric: str, y: np.ndarray, output: np.ndarray, classes: int) -> float:
    """Standard error of the metric on one held-out part, from five interleaved chunks."""
    values = [score(metric, y[i::5], output[i::5], classes) for i in range(5)]
    values = [v for v in values if math.isfinite(v)]
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0


@dataclass(frozen=True)
class _Job:
    """What a worker needs besides the table: plain values, cheap to send."""

    metric: str
    seed: int
    optimizers: tuple[str, ...]
    lr: float | None
    model: str | None
    device: str
    weight_decay: float
    plan: Plan


def _factory(job: _Job) -> Factory:
    return perceptron if job.model is None else load_model(job.model)


def _search(
    table: Table, job: _Job, name: str, split: int, rows: np.ndarray, test: np.ndarray | None
) -> Search:
    """Choose name's rate on rows (see the module docstring); score the first
    fold's network at that rate on test when rows are all the split's training rows."""
    p = job.plan
    higher = METRICS[job.metric][1]
    classes = len(table.classes)
    spec = choices(job.weight_decay)[name]
    seed = job.seed + split
    searched = _subsample(rows, table.y, table.task, p.search_rows, seed)
    parts = folds(searched, table.y, table.task, p.folds, seed)
    if not p.kfold:
        parts = parts[:1]
    scored = test is not None and len(searched) == len(rows)  # the fold-1 network is final
    prepared = [
        _Fold(table, fit_rows, val_rows, test if scored and i == 0 else None)
        for i, (fit_rows, val_rows) in enumerate(parts)
    ]
    if job.lr is not None:
        grid = [job.lr]
    else:
        grid = sorted(spec.sweep)
    ratio = grid[1] / grid[0] if len(grid) > 1 else 1.0
    tried: dict[float, list[tuple[float, float, Run]]] = {}  # per fold: score, loss, run
    first: dict[float, torch.nn.Module] = {}
    chunk_error: dict[float, float] = {}
    widened = {"low": 0, "high": 0}
    factory = _factory(job)
    while True:
        new = [lr for lr in grid if lr not in tried]
        for i, fold in enumerate(prepared):
            trained = fit_rates(
                fold.split,
                spec,
                new,
                epochs=p.max_epochs,
                seed=seed,
                batch_size=p.batch_size,
                patience=p.patience,
                model=factory,
                device=job.device,
            )
            for lr, (network, run) in zip(new, trained, strict=True):
                output = predict(network, fold.x_val, table.task, fold.scale, job.device)
                value = score(job.metric, fold.y_val, output, classes)
                loss = run.val_loss[run.best_epoch] if run.best_epoch is not None else math.inf
                tried.setdefault(lr, []).append((value, loss, run))
                if i == 0:
                    first[lr] = network
                    if len(prepared) == 1:
                        chunk_error[lr] = _chunk_error(job.metric, fold.y_val, output, classes)
        good = [statistics.fmean(_goodness(v, higher) for v, _, _ in tried[lr]) for lr in grid]
        errors = [_error([v for v, _, _ in tried[lr]], chunk_error.get(lr)) for lr in grid]
        best = int(np.argmax(good))
        if not math.isfinite(good[best]):
            lr = grid[0]  # every rate diverged: the smallest, said as diverged
        else:
            lr = _plateau_middle(grid, good, errors[best])
        low = lr == grid[0] and len(grid) > 1 and widened["low"] < p.widen
        high = lr == grid[-1] and len(grid) > 1 and widened["high"] < p.widen
        if not (low or high):
            break
        # every step still allowed at once: one more run trains them together
        if low:
            steps = p.widen - widened["low"]
            grid = [_rate(grid[0] / ratio**i) for i in range(steps, 0, -1)] + grid
            widened["low"] = p.widen
        if high:
            steps = p.widen - widened["high"]
            grid = grid + [_rate(grid[-1] * ratio**i) for i in range(1, steps + 1)]
            widened["high"] = p.widen
    index = grid.index(lr)
    sign = 1 if higher else -1
    neighbours = [good[j] for j in (index - 1, index + 1) if 0 <= j < len(grid)]
    # how much the score falls a grid step away, on the worse side (0: a flat top)
    sensitivity = max((max(0.0, good[index] - g) for g in neighbours), default=0.0)
    runs = tried[lr]
    test_score = None
    if scored:
        fold = prepared[0]
        output = predict(first[lr], fold.x_test, table.task, fold.scale, job.device)
        test_score = score(job.metric, table.y[test], output, classes)
    return Search(
        optimizer=name,
        split=split,
        rates=grid,
        scores=[sign * g if math.isfinite(g) else math.nan for g in good],
        errors=errors,
        losses=[statistics.fmean(loss for _, loss, _ in tried[r]) for r in grid],
        diverged=[sum(not math.isfinite(v) for v, _, _ in tried[r]) for r in grid],
        lr=lr,
        score=sign * good[index] if math.isfinite(good[index]) else math.nan,
        error=errors[index],
        sensitivity=sensitivity if math.isfinite(sensitivity) else math.inf,
        at_edge=len(grid) > 1 and lr in (grid[0], grid[-1]),
        capped=sum(_capped(run, p.max_epochs) for _, _, run in runs),
        runs=len(runs),
        test=test_score,
        curve=runs[0][2] if split == 0 else None,
    )


def _error(values: list[float], chunk: float | None) -> float:
    """Standard error over the folds; with one fold, from chunks of its rows."""
    if chunk is not None:
        return chunk
    finite = [v for v in values if math.isfinite(v)]
    return statistics.stdev(finite) / math.sqrt(len(finite)) if len(finite) > 1 else 0.0


def _capped(run: Run, max_epochs: int) -> bool:
    """Ran every epoch allowed and was still improving near the end."""
    return (
        len(run.val_loss) >= max_epochs
        and math.isfinite(run.val_loss[-1])
        and run.best_epoch is not None
        and run.best_epoch >= max_epochs - 2
    )


class _Fold:
    """A fold's rows through the preprocessing fitted on its fit rows."""

    def __init__(self, table: Table, fit_rows, val_rows, test_rows=None) -> None:
        others = (val_rows,) if test_rows is None else (val_rows, test_rows)
        prepared = table.prepare(fit_rows, *others)
        (x_fit, y_fit), (self.x_val, y_val) = prepared[:2]
        self.x_test = prepared[2][0] if test_rows is not None else None
        self.y_val = table.y[val_rows]  # in the target's units
        self.scale = table.target_scale(fit_rows)
        self.split = Split(
            torch.from_numpy(x_fit),
            torch.from_numpy(y_fit),
            torch.from_numpy(self.x_val),
            torch.from_numpy(y_val),
            table.task,
            table.classes,
        )


def rule(searches: list[Search], higher: bool) -> tuple[Search, list[Search], Search]:
    """(pick, tied, best): the one-standard-error rule toward the setup least
    sensitive to its rate; ties on sensitivity go to the higher score."""
    best = max(searches, key=lambda s: _goodness(s.score, higher))
    floor = _goodness(best.score, higher) - best.error
    tied = [s for s in searches if _goodness(s.score, higher) >= floor]
    pick = min(tied, key=lambda s: (s.sensitivity, -_goodness(s.score, higher)))
    return pick, tied, best


def _final_fit(
    table: Table, job: _Job, split: int, train: np.ndarray, test: np.ndarray, name: str, lr: float
) -> tuple[float, int, bool]:
    """name at lr on a split's training rows, stopping on its first fold; the test
    score, the epochs to the kept weights and whether the cap was reached. The
    exported script does exactly this for the first split."""
    p = job.plan
    seed = job.seed + split
    fold = _Fold(table, *folds(train, table.y, table.task, p.folds, seed)[0], test)
    network, run = fit(
        fold.split,
        choices(job.weight_decay)[name],
        lr,
        epochs=p.max_epochs,
        seed=seed,
        batch_size=p.batch_size,
        patience=p.patience,
        model=_factory(job),
        device=job.device,
    )
    output = predict(network, fold.x_test, table.task, fold.scale, job.device)
    kept = (run.best_epoch if run.best_epoch is not None else len(run.val_loss) - 1) + 1
    return (
        score(job.metric, table.y[test], output, len(table.classes)),
        kept,
        _capped(run, p.max_epochs),
    )


def _baselines(
    table: Table, job: _Job, split: int, train: np.ndarray, test: np.ndarray
) -> dict[str, float]:
    (x_train, y_train), (x_test, _y_test) = table.prepare(train, test)
    scale = table.target_scale(train)
    models = _baseline_models(table.task)
    found = {}
    for name, _label, make in models:
        model = make().fit(x_train, y_train)
        if table.task == "classification":
            output = np.zeros((len(test), len(table.classes)))
            output[:, model.classes_] = model.predict_proba(x_test)
        else:
            output = model.predict(x_test) * scale[1] + scale[0]
        found[name] = score(job.metric, table.y[test], output, len(table.classes))
    return found


def _baseline_models(task: str):
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.linear_model import LogisticRegression, Ridge

    if task == "classification":
        return [
            (
                "prior",
                N_("class prior (majority class)"),
                lambda: DummyClassifier(strategy="prior"),
            ),
            ("logistic", "LogisticRegression", lambda: LogisticRegression(max_iter=2000)),
        ]
    return [
        ("mean", N_("mean of the training target"), lambda: DummyRegressor(strategy="mean")),
        ("ridge", "Ridge (alpha=1)", lambda: Ridge(alpha=1.0)),
    ]


def _run_task(table: Table, job: _Job, task: tuple):
    """One unit of work in a worker, on one thread (torch's and the BLAS's: more
    only contend for the cores, and scikit-learn's solvers slow down a
    hundredfold on a busy machine); (task, result) back."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    kind, *args = task
    with threadpool_limits(1):
        if kind == "search":
            return task, _search(table, job, *args)
        if kind == "fit":
            return task, _final_fit(table, job, *args)
        return task, _baselines(table, job, *args)


def count_units(settings: Settings, rows: int) -> int:
    """Progress steps of `compare`: every search (each split and all rows, each
    optimizer), the final fits and the baselines of each split."""
    p = plan(settings, rows)
    fits = (p.splits if p.subsampled else 0) + 1
    return (p.splits + 1) * len(settings.optimizers) + fits + p.splits


def compare(table: Table, settings: Settings, progress=None) -> Comparison:
    """Compare settings.optimizers on table (see the module docstring for the method)."""
    from joblib import Parallel, delayed

    start = time.perf_counter()
    metric = settings.metric or default_metric(table)
    check_metric(metric, table.task)
    higher = METRICS[metric][1]
    p = plan(settings, table.rows)
    job = _Job(
        metric,
        settings.seed,
        settings.optimizers,
        settings.lr,
        settings.model,
        settings.device,
        settings.weight_decay,
        p,
    )
    outer = splits(table.y, table.task, p.splits, settings.seed)
    everything = np.arange(table.rows)

    def run(tasks):
        if p.jobs == 1:
            results = (_run_task(table, job, t) for t in tasks)
        else:
            results = Parallel(n_jobs=p.jobs, return_as="generator_unordered")(
                delayed(_run_task)(table, job, t) for t in tasks
            )
        found = {}
        for task, result in results:
            found[_key(task)] = result
            if progress:
                progress(_describe_task(task, p.splits))
        return found

    tasks = [
        ("search", name, s, train, test)
        for s, (train, test) in enumerate(outer)
        for name in settings.optimizers
    ]
    tasks += [("search", name, p.splits, everything, None) for name in settings.optimizers]
    tasks += [("baselines", s, train, test) for s, (train, test) in enumerate(outer)]
    first = run(tasks)
    searches = [first[_key(t)] for t in tasks if t[0] == "search"]
    by_split = [[s for s in searches if s.split == i] for i in range(p.splits + 1)]

    chosen = [rule(group, higher) for group in by_split]
    final_pick, final_tied, final_best = chosen[-1]
    fits = [("fit", 0, outer[0][0], outer[0][1], final_pick.optimizer, final_pick.lr)]
    if p.subsampled:
        fits += [
            ("fit", i, train, test, chosen[i][0].optimizer, chosen[i][0].lr)
            for i, (train, test) in enumerate(outer)
        ]
    second = run(fits)
    fitted = {(t[1], t[4], t[5]): second[_key(t)] for t in fits}

    picks = []
    for i, (pick, tied, best) in enumerate(chosen[:-1]):
        if p.subsampled:
            test, epochs, capped = fitted[(i, pick.optimizer, pick.lr)]
        else:
            test, epochs, capped = pick.test, 0, False
        picks.append(
            Pick(
                i,
                pick.optimizer,
                pick.lr,
                [s.optimizer for s in tied],
                best.optimizer,
                test,
                epochs,
                capped,
            )
        )
    test0, epochs0, capped0 = fitted[(0, final_pick.optimizer, final_pick.lr)]
    final = Pick(
        p.splits,
        final_pick.optimizer,
        final_pick.lr,
        [s.optimizer for s in final_tied],
        final_best.optimizer,
        test0,
        epochs0,
        capped0,
    )

    test_rows = len(outer[0][1])
    ratio = test_rows / len(outer[0][0])
    rule_tests = [pick.test for pick in picks]
    rule_score = _interval(rule_tests, ratio, bounds(metric))
    sign = 1 if higher else -1
    baselines = []
    for name, label, _make in _baseline_models(table.task):
        values = [first[_key(t)][name] for t in tasks if t[0] == "baselines"]
        difference = [sign * (b - r) for b, r in zip(values, rule_tests, strict=True)]
        baselines.append(
            Baseline(
                name,
                label,
                values,
                _interval(values, ratio, bounds(metric)),
                _interval(difference, ratio),
            )
        )

    scored = []
    for name in settings.optimizers:
        mine = [s for s in searches if s.optimizer == name and s.split < p.splits]
        validation = [s.score for s in mine]
        tests = [s.test for s in mine if s.test is not None]
        scored.append(
            Scored(
                name=name,
                validation=validation,
                score=_interval(validation, ratio, bounds(metric)),
                test=tests,
                test_score=_interval(tests, ratio, bounds(metric)) if tests else None,
                rates=[s.lr for s in mine],
                picked=sum(pick.optimizer == name for pick in picks),
                sensitivity=statistics.median(s.sensitivity for s in mine),
                at_edge=sum(s.at_edge for s in mine),
                capped=sum(s.capped for s in mine),
                runs=sum(s.runs for s in mine),
            )
        )

    outputs = len(table.classes) if table.task == "classification" else 1
    inputs = len(table.features)
    if settings.model is None:
        parameters = (inputs + 1) * HIDDEN + (HIDDEN + 1) * outputs
    else:
        parameters = check_model(load_model(settings.model), inputs, outputs, settings.model)
    counts = np.bincount(table.y, minlength=len(table.classes)).tolist() if table.classes else []
    return Comparison(
        data=table.path,
        target=table.target,
        task=table.task,
        rows=table.rows,
        columns=table.columns,
        numeric=table.numeric,
        text=table.text,
        categories=table.categories,
        features=table.features,
        classes=table.classes,
        class_counts=counts,
        delimiter=table.delimiter,
        data_warnings=table.warnings,
        metric=metric,
        metric_label=METRICS[metric][0],
        higher_is_better=higher,
        metric_by_default=settings.metric is None,
        seed=settings.seed,
        splits=p.splits,
        folds=p.folds,
        kfold=p.kfold,
        search_rows=p.search_rows,
        subsampled=p.subsampled,
        train_rows=len(outer[0][0]),
        test_rows=test_rows,
        test_fraction=TEST_FRACTION,
        model=settings.model,
        hidden=HIDDEN,
        parameters=parameters,
        outputs=outputs,
        max_epochs=p.max_epochs,
        patience=p.patience,
        batch_size=p.batch_size,
        widen=p.widen,
        weight_decay=settings.weight_decay,
        device=settings.device,
        jobs=p.jobs,
        optimizers=list(settings.optimizers),
        given_lr=settings.lr,
        searches=searches,
        scored=scored,
        picks=picks,
        rule=rule_score,
        final=final,
        baselines=baselines,
        beats_trivial=baselines[0].versus_rule.high < 0,
        seconds=time.perf_counter() - start,
    )


def _key(task: tuple) -> tuple:
    """A task without its index arrays: what identifies it."""
    return tuple(a for a in task if not isinstance(a, np.ndarray))


def _describe_task(task: tuple, splits: int) -> str:
    kind = task[0]
    if kind == "search":
        if task[2] == splits:
            return _("{optimizer}: rates on all rows").format(optimizer=task[1])
        return _("{optimizer}: rates on split {split}/{splits}").format(
            optimizer=task[1], split=task[2] + 1, splits=splits
        )
    if kind == "fit":
        return _("{optimizer} at lr={lr}, split {split}").format(
            optimizer=task[4], lr=f"{task[5]:g}", split=task[1] + 1
        )
    return _("baselines")
