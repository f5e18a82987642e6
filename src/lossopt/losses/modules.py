"""nn.Module wrappers: each stores its options and calls the functional form."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from lossopt.losses import classification, divergence, linear, regression, triplet
from lossopt.losses._reduction import check_reduction


class _Loss(nn.Module):
    def __init__(self, reduction: str = "mean", *, batchmean: bool = False) -> None:
        super().__init__()
        self.reduction = check_reduction(reduction, batchmean=batchmean)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class L1Loss(_Loss):
    """Module form of :func:`lossopt.losses.l1_loss`."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return regression.l1_loss(input, target, self.reduction)


class MSELoss(_Loss):
    """Module form of :func:`lossopt.losses.mse_loss`."""

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return regression.mse_loss(input, target, self.reduction)


class HuberLoss(_Loss):
    """Module form of :func:`lossopt.losses.huber_loss`."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return regression.huber_loss(input, target, self.reduction, self.delta)


class SmoothL1Loss(_Loss):
    """Module form of :func:`lossopt.losses.smooth_l1_loss`."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return regression.smooth_l1_loss(input, target, self.reduction, self.beta)


class _WeightedLoss(_Loss):
    def __init__(self, weight: torch.Tensor | None, ignore_index: int, reduction: str) -> None:
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index


class CrossEntropyLoss(_WeightedLoss):
    """Module form of :func:`lossopt.losses.cross_entropy`."""

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        *,
        dim: int = 1,
    ) -> None:
        super().__init__(weight, ignore_index, reduction)
        self.label_smoothing = label_smoothing
        self.dim = dim

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return classification.cross_entropy(
            input,
            target,
            self.weight,
            self.ignore_index,
            self.reduction,
            self.label_smoothing,
            dim=self.dim,
        )


class NLLLoss(_WeightedLoss):
    """Module form of :func:`lossopt.losses.nll_loss`."""

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
    ) -> None:
        super().__init__(weight, ignore_index, reduction)

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return classification.nll_loss(
            input, target, self.weight, self.ignore_index, self.reduction
        )


class LinearCrossEntropyLoss(_WeightedLoss):
    """Module form of :func:`lossopt.losses.linear_cross_entropy`: the loss of
    a linear head, called as ``loss(hidden, head.weight, target, head.bias)``."""

    def __init__(
        self,
        weight: torch.Tensor | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(weight, ignore_index, reduction)
        self.label_smoothing = label_smoothing

    def forward(
        self,
        input: torch.Tensor,
        linear_weight: torch.Tensor,
        target: torch.Tensor,
        linear_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return linear.linear_cross_entropy(
            input,
            linear_weight,
            target,
            linear_bias=linear_bias,
            weight=self.weight,
            reduction=self.reduction,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
        )


class KLDivLoss(_Loss):
    """Module form of :func:`lossopt.losses.kl_div`; default reduction 'batchmean'."""

    def __init__(self, reduction: str = "batchmean", log_target: bool = False) -> None:
        super().__init__(reduction, batchmean=True)
        self.log_target = log_target

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return divergence.kl_div(input, target, self.reduction, self.log_target)


class TripletMarginLoss(_Loss):
    """Module form of :func:`lossopt.losses.triplet_margin_loss`."""

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction)
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(
        self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor
    ) -> torch.Tensor:
        return triplet.triplet_margin_loss(
            anchor, positive, negative, self.margin, self.p, self.eps, self.swap, self.reduction
        )


class TripletMarginWithDistanceLoss(_Loss):
    """Module form of :func:`lossopt.losses.triplet_margin_with_distance_loss`."""

    def __init__(
        self,
        *,
        distance_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        margin: float = 1.0,
        swap: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction)
        self.distance_function, self.margin, self.swap = distance_function, margin, swap

    def forward(
        self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor
    ) -> torch.Tensor:
        return triplet.triplet_margin_with_distance_loss(
            anchor,
            positive,
            negative,
            distance_function=self.distance_function,
            margin=self.margin,
            swap=self.swap,
            reduction=self.reduction,
        )


class BatchTripletLoss(_Loss):
    """Module form of :func:`lossopt.losses.batch_triplet_loss`."""

    def __init__(
        self,
        *,
        mining: str = "batch_hard",
        margin: float = 1.0,
        p: float = 2.0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(reduction)
        self.mining = triplet.check_choice("mining", mining, triplet.MININGS)
        self.margin, self.p = margin, p

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return triplet.batch_triplet_loss(
            embeddings,
            labels,
            mining=self.mining,
            margin=self.margin,
            p=self.p,
            reduction=self.reduction,
        )
