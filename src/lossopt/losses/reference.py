"""The lecture's losses written from their equations, operation by operation.

This is the documented reference: each public loss in :mod:`lossopt.losses`
equals its form here (tested in float64), whichever kernel it runs on. Where
torch's own fused kernel already reads and writes memory once (the element-wise
regression losses at every size, the classification losses at small and
medium sizes), the public function calls it; the forms here are the
definition, and they also serve the cases torch's kernels leave undefined
(the mean of no element is 0 here, NaN in torch).
"""

from __future__ import annotations

import torch

from lossopt.losses._reduction import reduce


def l1_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """l_n = |x_n - y_n|."""
    return reduce((input - target).abs(), reduction)


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """l_n = (x_n - y_n)^2."""
    return reduce((input - target).square(), reduction)


def huber_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", delta: float = 1.0
) -> torch.Tensor:
    """l_n = e^2 / 2 if |e| < delta, else delta (|e| - delta / 2), e = x_n - y_n."""
    error = input - target
    magnitude = error.abs()
    loss = torch.where(magnitude < delta, 0.5 * error.square(), delta * (magnitude - 0.5 * delta))
    return reduce(loss, reduction)


def smooth_l1_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", beta: float = 1.0
) -> torch.Tensor:
    """l_n = e^2 / (2 beta) if |e| < beta, else |e| - beta / 2; beta = 0 is L1."""
    error = input - target
    magnitude = error.abs()
    if beta == 0:
        return reduce(magnitude, reduction)
    loss = torch.where(magnitude < beta, 0.5 * error.square() / beta, magnitude - 0.5 * beta)
    return reduce(loss, reduction)


def plain_norm(u: torch.Tensor, p: float) -> torch.Tensor:
    """||u||_p along the last dim in torch operations that every transform
    supports (torch.cdist has no forward-mode AD nor a double backward), with
    the gradient 0 at u = 0 (the subgradient of least norm)."""
    zero = (u == 0).all(dim=-1, keepdim=True)
    safe = torch.where(zero, torch.ones_like(u), u)
    return torch.where(zero[..., 0], 0.0, torch.linalg.vector_norm(safe, ord=p, dim=-1))
