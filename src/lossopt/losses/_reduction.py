"""The one place where 'none', 'mean', 'sum' and 'batchmean' are defined."""

from __future__ import annotations

import torch

from lossopt._checks import check_choice

REDUCTIONS = ("none", "mean", "sum")


def check_reduction(reduction: str, *, batchmean: bool = False) -> str:
    choices = REDUCTIONS + ("batchmean",) if batchmean else REDUCTIONS
    return check_choice("reduction", reduction, choices)


def reduce(
    loss: torch.Tensor,
    reduction: str,
    *,
    denominator: torch.Tensor | float | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Reduce per-element losses.

    ``'mean'`` divides the sum by ``denominator`` when given (the weighted means
    of cross-entropy and NLL), else by the number of elements. A zero
    denominator gives a loss of 0 (and zero gradients) rather than NaN: an empty
    batch or a batch whose every target is ignored has nothing to learn from.
    ``'batchmean'`` divides the sum by ``batch_size``.
    """
    if reduction == "none":
        return loss
    total = loss.sum(dtype=torch.float32) if loss.dtype in _HALF else loss.sum()
    if reduction == "sum":
        return total.to(loss.dtype)
    if reduction == "batchmean":
        denominator = batch_size
    elif denominator is None:
        denominator = loss.numel()
    if isinstance(denominator, torch.Tensor):
        safe = torch.where(denominator == 0, torch.ones_like(denominator), denominator)
        return torch.where(denominator == 0, total * 0, total / safe).to(loss.dtype)
    return (total * 0 if not denominator else total / denominator).to(loss.dtype)


_HALF = (torch.float16, torch.bfloat16)
