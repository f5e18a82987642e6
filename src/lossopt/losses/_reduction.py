"""The one place where 'none', 'mean', 'sum' and 'batchmean' are defined, and
where the rule lives that half precision is accumulated in float32."""

from __future__ import annotations

import torch

from lossopt._checks import check_choice

# The reduction names, once, in the order of torch's own numbering, which its
# kernels take (none 0, mean 1, sum 2); the KL losses add 'batchmean'.
REDUCTIONS = ("none", "mean", "sum")
TORCH_REDUCTION = {name: code for code, name in enumerate(REDUCTIONS)}
MEAN = TORCH_REDUCTION["mean"]
WITH_BATCHMEAN = (*REDUCTIONS, "batchmean")
_HALF = (torch.float16, torch.bfloat16)


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """float32 for bfloat16/float16 inputs, else their own dtype: a half-precision
    sum over a 128k vocabulary would lose every digit that matters."""
    return torch.float32 if x.dtype in _HALF else x.dtype


def check_reduction(reduction: str, *, batchmean: bool = False) -> str:
    return check_choice("reduction", reduction, WITH_BATCHMEAN if batchmean else REDUCTIONS)


def mean_over(total, count):
    """total / count, and 0 where count is 0: lossopt's one rule for a mean
    over nothing (torch's is NaN). An empty batch, or one whose every target
    is ignored, has nothing to learn from, so the loss is 0 with zero
    gradients, still on the graph of ``total``.

    ``count`` may be a number, an integer tensor (a number of items, whose
    ``total`` is a sum over them and so 0 when there are none: two
    operations) or a floating tensor (a sum of weights: masked)."""
    if not isinstance(count, torch.Tensor):
        return total / count if count else total * 0.0
    if not count.is_floating_point():
        return total / count.clamp_min(1)
    empty = count == 0
    return torch.where(empty, 0.0, total / torch.where(empty, 1.0, count))


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
        return mean_over(1.0, batch_size)
    return mean_over(1.0, count if denominator is None else denominator)


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
        return mean_over(total, count).to(loss.dtype)
    factor = reduction_scale(
        reduction, loss.numel(), denominator=denominator, batch_size=batch_size
    )
    return (total * factor).to(loss.dtype)
