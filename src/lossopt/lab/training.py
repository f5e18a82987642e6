"""One training loop for every run of the lab that fits a small network."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from lossopt import losses
from lossopt.lab.data import Split
from lossopt.lab.optimizers import OPTIMIZERS


@contextmanager
def one_thread() -> Iterator[None]:
    """Run a small network on one thread: more only contend for the cores (on a
    busy 2-core machine, tenfold slower), and the results stay the same run to run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
    best_epoch: int | None = None  # with early stopping: the epoch whose weights were kept

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
    patience: int | None = None,
) -> Run:
    """Train the lab's MLP on data.x_train, evaluating on data.x_val after each epoch.

    With ``patience``, stop once the validation loss has not fallen for that
    many epochs and keep the weights of its lowest point (`fit` returns them).
    """
    return fit(
        data, optimizer, lr, epochs=epochs, seed=seed, batch_size=batch_size, patience=patience
    )[1]


def fit(
    data: Split,
    optimizer: str,
    lr: float,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    patience: int | None = None,
) -> tuple[nn.Module, Run]:
    """`train`, also returning the model (at its best epoch when ``patience`` is set)."""
    with one_thread():
        return _fit(
            data, optimizer, lr, epochs=epochs, seed=seed, batch_size=batch_size, patience=patience
        )


def _fit(data, optimizer, lr, *, epochs, seed, batch_size, patience):
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be None or at least 1, got {patience}")
    model = mlp(data.x_train.shape[1], data.num_outputs, seed=seed)
    opt = OPTIMIZERS[optimizer].build(model.parameters(), lr)
    generator = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    train_loss, val_loss, val_metric = [], [], []
    best_loss, best_epoch, best_state = float("inf"), None, None
    start = time.perf_counter()
    for epoch in range(epochs):
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
        if patience is None:
            continue
        if loss < best_loss:
            best_loss, best_epoch = loss, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    run = Run(optimizer, lr, seed, train_loss, val_loss, val_metric, time.perf_counter() - start)
    run.best_epoch = best_epoch
    return model, run


# The lecture's five update rules all move a parameter by lr times a step that
# does not depend on lr (no weight decay here), so one optimizer at lr = 1 over
# stacked copies of the network, its step rescaled per copy, trains every rate
# at the cost of one run.
LINEAR_IN_LR = frozenset({"sgd", "momentum", "adagrad", "rmsprop", "adam"})


def fit_rates(
    data: Split,
    optimizer: str,
    lrs: list[float],
    *,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    patience: int | None = None,
) -> list[tuple[nn.Module, Run]]:
    """`fit` at each rate of lrs: the same initial weights and mini-batches, so
    each result is the run `fit` gives (up to rounding). Optimizers outside
    LINEAR_IN_LR are run one rate at a time."""
    if optimizer not in LINEAR_IN_LR or len(lrs) == 1:
        return [
            fit(
                data,
                optimizer,
                lr,
                epochs=epochs,
                seed=seed,
                batch_size=batch_size,
                patience=patience,
            )
            for lr in lrs
        ]
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be None or at least 1, got {patience}")
    k = len(lrs)
    first, _, second = mlp(data.x_train.shape[1], data.num_outputs, seed=seed)
    # (k, in, out) weights and (k, 1, out) biases: x @ w + b for every copy at once
    params = [
        first.weight.detach().T.repeat(k, 1, 1),
        first.bias.detach().repeat(k, 1, 1),
        second.weight.detach().T.repeat(k, 1, 1),
        second.bias.detach().repeat(k, 1, 1),
    ]
    params = [p.clone().requires_grad_(True) for p in params]
    opt = OPTIMIZERS[optimizer].build(params, 1.0)
    scale = torch.tensor(lrs, dtype=params[0].dtype).view(k, 1, 1)

    def forward(x: torch.Tensor) -> torch.Tensor:
        w1, b1, w2, b2 = params
        return torch.relu(x @ w1 + b1) @ w2 + b2  # (k, rows, outputs)

    def per_copy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rows = y.shape[0]
        flat = output.reshape(k * rows, -1)
        if data.task == "classification":
            each = losses.cross_entropy(flat, y.repeat(k), reduction="none")
        else:
            each = losses.mse_loss(flat.squeeze(-1), y.repeat(k), reduction="none")
        return each.view(k, rows).mean(dim=1)

    generator = torch.Generator().manual_seed(seed)
    n = data.x_train.shape[0]
    curves = [([], [], []) for _ in range(k)]  # train loss, val loss, val metric
    active = [True] * k
    best = [(float("inf"), None, None)] * k  # loss, epoch, weights
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        total = torch.zeros(k)
        for i in range(0, n, batch_size):
            batch = order[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = per_copy(forward(data.x_train[batch]), data.y_train[batch])
            loss.sum().backward()  # each copy's gradient is that of its own mean loss
            before = [p.detach().clone() for p in params]
            opt.step()
            with torch.no_grad():
                for p, old in zip(params, before, strict=True):
                    p.copy_(old + scale * (p - old))
            total += loss.detach() * len(batch)
        with torch.no_grad():
            output = forward(data.x_val)
            val_loss = per_copy(output, data.y_val)
            if data.task == "classification":
                metric = (output.argmax(dim=-1) == data.y_val).float().mean(dim=1)
            else:
                metric = val_loss.sqrt()
        for j in range(k):
            if not active[j]:
                continue
            train_curve, loss_curve, metric_curve = curves[j]
            train_curve.append(total[j].item() / n)
            value = val_loss[j].item()
            if value != value or value == float("inf"):  # diverged: stop, and say so
                loss_curve.append(float("inf"))
                metric_curve.append(0.0 if data.task == "classification" else float("inf"))
                active[j] = False
                continue
            loss_curve.append(value)
            metric_curve.append(metric[j].item())
            if patience is None:
                continue
            if value < best[j][0]:
                best[j] = (value, epoch, [p[j].detach().clone() for p in params])
            elif epoch - best[j][1] >= patience:
                active[j] = False
        if not any(active):
            break
    seconds = (time.perf_counter() - start) / k
    results = []
    for j, lr in enumerate(lrs):
        weights = best[j][2] or [p[j].detach().clone() for p in params]
        model = mlp(data.x_train.shape[1], data.num_outputs, seed=seed)
        with torch.no_grad():
            model[0].weight.copy_(weights[0].T)
            model[0].bias.copy_(weights[1].squeeze(0))
            model[2].weight.copy_(weights[2].T)
            model[2].bias.copy_(weights[3].squeeze(0))
        train_curve, loss_curve, metric_curve = curves[j]
        run = Run(optimizer, lr, seed, train_curve, loss_curve, metric_curve, seconds)
        run.best_epoch = best[j][1]
        results.append((model, run))
    return results
