"""`lossopt lab compare`: which optimizer, which learning rate, for the user's table?

A short learning-rate sweep per optimizer (one seed), then the best rate of
each with several seeds; returns plain data for the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lossopt.lab.config import Config
from lossopt.lab.data import load_csv
from lossopt.lab.experiments.optimization import Ranked, rank
from lossopt.lab.optimizers import OPTIMIZERS
from lossopt.lab.training import Run, train


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
    sweep: list[Run]
    runs: list[Run]
    ranking: list[Ranked]
    recommendation: str


def compare(
    path: str | Path, target: str, task: str | None, config: Config, progress=None
) -> Comparison:
    data = load_csv(path, target, task, seed=config.seed)
    higher = data.task == "classification"
    metric = "validation accuracy" if higher else "validation RMSE (target standard deviations)"
    sweep_epochs = config.steps_or(3 if config.quick else 10)
    epochs = config.steps_or(5 if config.quick else 20)
    seeds = range(config.seed, config.seed + (2 if config.quick else 3))

    sweep, best_lr = [], {}
    for name in config.optimizers:
        lrs = (config.lr,) if config.lr is not None else OPTIMIZERS[name].sweep
        tried = [train(data, name, lr, epochs=sweep_epochs, seed=config.seed) for lr in lrs]
        sweep.extend(tried)
        best_lr[name] = rank(tried, higher)[0].lr
        if progress:
            progress(f"swept {name}")
    runs = []
    for name in config.optimizers:
        runs.extend(train(data, name, best_lr[name], epochs=epochs, seed=seed) for seed in seeds)
        if progress:
            progress(f"trained {name}")
    ranking = rank(runs, higher)
    top = ranking[0]
    recommendation = (
        f"{OPTIMIZERS[top.optimizer].label} with lr={top.lr:g}: {metric} "
        f"{top.metric_mean:.4f} ± {top.metric_std:.4f} over {len(seeds)} seeds"
    )
    return Comparison(
        str(path),
        target,
        data.task,
        metric,
        higher,
        len(data.y_train) + len(data.y_val),
        data.features,
        data.classes,
        sweep,
        runs,
        ranking,
        recommendation,
    )
