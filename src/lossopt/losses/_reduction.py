"""The one place where 'none', 'mean', 'sum' and 'batchmean' are defined, and
where the rule lives that half precision is accumulated in float32."""

from __future__ import annotations

import torch

from lossopt._checks import check_choice

REDUCTIONS = ("none", "mean", "sum")
# torch's own numbering of the same reductions, which its kernels take.
TORCH_REDUCTION = {"none": 0, "mean": 1, "sum": 2}
MEAN = TORCH_REDUCTION["mean"]
_HALF = (torch.float16, torch.bfloat16)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for bfloat16/float16 inputs, else their own dtype: a half-precision
    sum over a 128k vocabulary would lose every digit that matters."""
    return torch.float32 if x.dtype in _HALF else x.dtype


def check_reduction(reduction: str, *, batchmean: bool = False) -> str:
    choices = REDUCTIONS + ("batchmean",) if batchmean else REDUCTIONS
    return check_choice("reduction", reduction, choices)


def reduction_scale(
    reduction: str,
    count: int,
    *,
    denominator: torch.Tensor | None = None,
    batch_size: int | None = None,
) -> torch.Tensor | float:
    """The factor a scalar reduction multiplies the sum of the losses by.

    'sum' is 1. 'mean' is 1 / ``denominator`` when given (the weighted means of
    cross-entropy and NLL), else 1 / ``count`` (the number of losses).
    'batchmean' is 1 / ``batch_size``. A zero divisor gives a factor of 0, so
    the loss is 0 with zero gradients rather than NaN: an empty batch, or one
    whose every target is ignored, has nothing to learn from.
    """
    if reduction == "sum":
        return 1.0
    if reduction == "batchmean":
        return 1.0 / batch_size if batch_size else 0.0
    if denominator is None:
        return 1.0 / count if count else 0.0
    safe = torch.where(denominator == 0, torch.ones_like(denominator), denominator)
    return torch.where(denominator == 0, 0.0, 1.0 / safe)


def reduce(
    loss: torch.Tensor,
    reduction: str,
    *,
    denominator: torch.Tensor | None = None,
    count: torch.Tensor | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Reduce per-element losses by :func:`reduction_scale`'s rules; half
    precision is summed in float32. ``count``, an integer tensor of the items
    a 'mean' averages over (mined triplets, valid anchors), divides the sum by
    max(count, 1) in two operations: where the count is 0 every loss is 0, so
    the mean is 0 with zero gradients, as :func:`reduction_scale` has it."""
    if reduction == "none":
        return loss
    if reduction == "mean" and denominator is None and count is None and loss.numel():
        return loss.mean(dtype=compute_dtype(loss)).to(loss.dtype)  # one operation, as torch
    total = loss.sum(dtype=compute_dtype(loss))
    if count is not None and reduction == "mean":
        return (total / count.clamp_min(1)).to(loss.dtype)
    factor = reduction_scale(
        reduction, loss.numel(), denominator=denominator, batch_size=batch_size
    )
    return (total * factor).to(loss.dtype)
