"""One training loop for every run of the lab that fits a small network."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from lossopt import losses
from lossopt.lab.data import Split
from lossopt.lab.optimizers import OPTIMIZERS


def mlp(inputs: int, outputs: int, hidden: int = 64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


@dataclass
class Run:
    optimizer: str
    lr: float
    seed: int
    train_loss: list[float]  # one value per epoch
    val_loss: list[float]
    val_metric: list[float]  # accuracy, or RMSE in standard deviations for regression
    seconds: float  # machine-dependent: kept out of results.json

    @property
    def final_metric(self) -> float:
        return self.val_metric[-1]


def _loss(task: str, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if task == "classification":
        return losses.cross_entropy(output, target)
    return losses.mse_loss(output.squeeze(-1), target)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, task: str) -> tuple[float, float]:
    output = model(x)
    loss = _loss(task, output, y).item()
    if task == "classification":
        return loss, (output.argmax(dim=1) == y).float().mean().item()
    return loss, loss**0.5


def train(
    data: Split,
    optimizer: str,
    lr: float,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 64,
) -> Run:
    model = mlp(data.x_train.shape[1], data.num_outputs, seed=seed)
    opt = OPTIMIZERS[optimizer].build(model.parameters(), lr)
    generator = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    train_loss, val_loss, val_metric = [], [], []
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = 0.0
        for i in range(0, n, batch_size):
            batch = order[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = _loss(data.task, model(data.x_train[batch]), data.y_train[batch])
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        train_loss.append(total / n)
        loss, metric = evaluate(model, data.x_val, data.y_val, data.task)
        if loss != loss or loss == float("inf"):  # diverged: stop, and say so in the curve
            val_loss.append(float("inf"))
            val_metric.append(0.0 if data.task == "classification" else float("inf"))
            break
        val_loss.append(loss)
        val_metric.append(metric)
    return Run(optimizer, lr, seed, train_loss, val_loss, val_metric, time.perf_counter() - start)
