"""lossopt.losses: every loss of the lecture, functions and modules side by side."""

from lossopt.losses.classification import cross_entropy, nll_loss
from lossopt.losses.divergence import kl_div, kl_divergence
from lossopt.losses.linear import linear_cross_entropy
from lossopt.losses.modules import (
    BatchTripletLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    LinearCrossEntropyLoss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
    TripletMarginLoss,
    TripletMarginWithDistanceLoss,
)
from lossopt.losses.regression import huber_loss, l1_loss, mse_loss, smooth_l1_loss
from lossopt.losses.triplet import (
    batch_triplet_loss,
    pairwise_distance,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)

__all__ = [
    "BatchTripletLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "KLDivLoss",
    "L1Loss",
    "LinearCrossEntropyLoss",
    "MSELoss",
    "NLLLoss",
    "SmoothL1Loss",
    "TripletMarginLoss",
    "TripletMarginWithDistanceLoss",
    "batch_triplet_loss",
    "cross_entropy",
    "huber_loss",
    "kl_div",
    "kl_divergence",
    "l1_loss",
    "linear_cross_entropy",
    "mse_loss",
    "nll_loss",
    "pairwise_distance",
    "smooth_l1_loss",
    "triplet_margin_loss",
    "triplet_margin_with_distance_loss",
]
