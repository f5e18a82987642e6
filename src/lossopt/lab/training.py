"""One training loop for every network the lab fits: one rate (`fit`, `train`)
or several at once (`fit_rates`), the lab's MLP or the user's own module."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from lossopt import losses
from lossopt.lab.data import Split
from lossopt.lab.optimizers import OPTIMIZERS, OptimizerSpec

HIDDEN = 64
Factory = Callable[[int, int], nn.Module]  # (inputs, outputs) -> an untrained network


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


def perceptron(inputs: int, outputs: int, hidden: int = HIDDEN) -> nn.Module:
    """The lab's network: one hidden layer of ReLU units."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


def mlp(inputs: int, outputs: int, hidden: int = HIDDEN, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return perceptron(inputs, outputs, hidden)


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
    optimizer: str | OptimizerSpec,
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
    optimizer: str | OptimizerSpec,
    lr: float,
    *,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    patience: int | None = None,
    model: Factory = perceptron,
    device: str = "cpu",
    progress: Progress | None = None,
) -> tuple[nn.Module, Run]:
    """`train`, also returning the model (at its best epoch when ``patience`` is set)."""
    return fit_rates(
        data,
        optimizer,
        [lr],
        epochs=epochs,
        seed=seed,
        batch_size=batch_size,
        patience=patience,
        model=model,
        device=device,
        progress=progress,
    )[0]


# Every update rule of the lab moves a parameter by lr times a step that does not
# depend on lr (AdamW's decoupled decay too: lr * (wd * p + step)), so one
# optimizer at lr = 1 over stacked copies of the network, its step rescaled per
# copy, trains every rate at the cost of one run.
LINEAR_IN_LR = frozenset({"sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"})

# Called after every step as progress(epoch, fraction of the epoch done, curves)
# and after every epoch with fraction 1.0, curves being each rate's (train loss,
# validation loss, validation metric) lists so far; returning False ends the run
# there (the live lab's pause and stop: it may also block).
Progress = Callable[[int, float, list], "bool | None"]


def fit_rates(
    data: Split,
    optimizer: str | OptimizerSpec,
    lrs: list[float],
    *,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    patience: int | None = None,
    model: Factory = perceptron,
    device: str = "cpu",
    progress: Progress | None = None,
) -> list[tuple[nn.Module, Run]]:
    """Train ``model(inputs, outputs)`` (initialised after torch.manual_seed(seed))
    at each rate of lrs: the same initial weights and mini-batches, so each
    result is the run `fit` gives at that rate (up to rounding). Optimizers
    outside LINEAR_IN_LR are run one rate at a time."""
    spec = OPTIMIZERS[optimizer] if isinstance(optimizer, str) else optimizer
    if patience is not None and patience < 1:
        raise ValueError(f"patience must be None or at least 1, got {patience}")
    if not lrs:
        raise ValueError("lrs must name at least one learning rate, got []")
    with one_thread() if device == "cpu" else _nothing():
        if spec.name not in LINEAR_IN_LR and len(lrs) > 1:
            return [
                _loop(
                    data, spec, [lr], epochs, seed, batch_size, patience, model, device, progress
                )[0]
                for lr in lrs
            ]
        return _loop(data, spec, lrs, epochs, seed, batch_size, patience, model, device, progress)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class _Copies:
    """k copies of one network with the same initial weights, their parameters
    stacked along a new first dimension; torch.func runs them side by side."""

    def __init__(self, factory: Factory, inputs: int, outputs: int, seed: int, k: int, device):
        torch.manual_seed(seed)
        self.network = factory(inputs, outputs).to(device)
        self.k = k
        self.params = {
            name: p.detach().unsqueeze(0).repeat(k, *([1] * p.dim())).requires_grad_(True)
            for name, p in self.network.named_parameters()
        }
        self.buffers = {
            name: b.detach().unsqueeze(0).repeat(k, *([1] * b.dim()))
            for name, b in self.network.named_buffers()
        }
        skeleton = copy.deepcopy(self.network).to("meta")

        def one(params, buffers, x):
            return torch.func.functional_call(skeleton, (params, buffers), (x,))

        self._one = one
        self._all = torch.func.vmap(one, in_dims=(0, 0, None), randomness="different")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """(k, rows, outputs): every copy's output for the same rows."""
        if self.k == 1:  # no vmap for a single copy: the plain module's speed
            first = {name: p[0] for name, p in self.params.items()}
            return self._one(first, {n: b[0] for n, b in self.buffers.items()}, x).unsqueeze(0)
        return self._all(self.params, self.buffers, x)

    def weights(self, j: int) -> dict[str, torch.Tensor]:
        return {name: p[j].detach().clone() for name, p in {**self.params, **self.buffers}.items()}

    def module(self, weights: dict[str, torch.Tensor]) -> nn.Module:
        network = copy.deepcopy(self.network)
        network.load_state_dict(weights)
        return network


def _loop(data, spec, lrs, epochs, seed, batch_size, patience, factory, device, progress=None):
    k = len(lrs)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_val, y_val = data.x_val.to(device), data.y_val.to(device)
    copies = _Copies(factory, x_train.shape[1], data.num_outputs, seed, k, device)
    params = list(copies.params.values())
    # one copy: the optimizer at its own rate; several: at 1, each copy's step rescaled
    opt = spec.build(params, lrs[0] if k == 1 else 1.0)
    scale = [
        torch.tensor(lrs, dtype=p.dtype, device=device).view(k, *[1] * (p.dim() - 1))
        for p in params
    ]

    def per_copy(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rows = y.shape[0]
        flat = output.reshape(k * rows, -1)
        if data.task == "classification":
            each = losses.cross_entropy(flat, y.repeat(k), reduction="none")
        else:
            each = losses.mse_loss(flat.squeeze(-1), y.repeat(k), reduction="none")
        return each.view(k, rows).mean(dim=1)

    generator = torch.Generator().manual_seed(seed)
    n = x_train.shape[0]
    curves = [([], [], []) for _ in range(k)]  # train loss, val loss, val metric
    active = [True] * k
    best: list[tuple[float, int | None, dict | None]] = [(math.inf, None, None)] * k
    start = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator).to(device)
        total = torch.zeros(k, device=device)
        for i in range(0, n, batch_size):
            batch = order[i : i + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = per_copy(copies(x_train[batch]), y_train[batch])
            loss.sum().backward()  # each copy's gradient is that of its own mean loss
            if k == 1:
                opt.step()
            else:
                before = [p.detach().clone() for p in params]
                opt.step()
                with torch.no_grad():
                    for p, old, s in zip(params, before, scale, strict=True):
                        p.copy_(old + s * (p - old))
            total += loss.detach() * len(batch)
            if (
                progress is not None
                and progress(epoch, min(i + batch_size, n) / n, curves) is False
            ):
                active = [False] * k
                break
        if not any(active):  # stopped by progress: the epoch is not finished
            break
        with torch.no_grad():
            output = copies(x_val)
            val_loss = per_copy(output, y_val).cpu()
            if data.task == "classification":
                metric = (output.argmax(dim=-1) == y_val).float().mean(dim=1).cpu()
            else:
                metric = val_loss.sqrt()
        total = total.cpu()
        for j in range(k):
            if not active[j]:
                continue
            train_curve, loss_curve, metric_curve = curves[j]
            train_curve.append(total[j].item() / n)
            value = val_loss[j].item()
            if not math.isfinite(value):  # diverged: stop, and say so in the curve
                loss_curve.append(math.inf)
                metric_curve.append(0.0 if data.task == "classification" else math.inf)
                active[j] = False
                continue
            loss_curve.append(value)
            metric_curve.append(metric[j].item())
            if patience is None:
                continue
            if value < best[j][0]:
                best[j] = (value, epoch, copies.weights(j))
            elif epoch - best[j][1] >= patience:
                active[j] = False
        if progress is not None and progress(epoch, 1.0, curves) is False:
            break
        if not any(active):
            break
    seconds = (time.perf_counter() - start) / k
    results = []
    for j, lr in enumerate(lrs):
        _, best_epoch, weights = best[j]
        network = copies.module(weights if weights is not None else copies.weights(j))
        train_curve, loss_curve, metric_curve = curves[j]
        run = Run(spec.name, lr, seed, train_curve, loss_curve, metric_curve, seconds, best_epoch)
        results.append((network, run))
    return results
