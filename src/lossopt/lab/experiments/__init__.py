"""The lab's experiments, in the lecture's order: name -> (title, function)."""

from __future__ import annotations

from lossopt.lab.experiments.losses import entropy, kl_asymmetry, l1_vs_l2, triplet
from lossopt.lab.experiments.optimization import (
    adaptive_steps,
    learning_rate,
    optimizer_paths,
    training,
)

EXPERIMENTS = {
    "l1-vs-l2": l1_vs_l2,
    "entropy": entropy,
    "kl": kl_asymmetry,
    "triplet": triplet,
    "paths": optimizer_paths,
    "learning-rate": learning_rate,
    "adaptive": adaptive_steps,
    "training": training,
}

__all__ = ["EXPERIMENTS"]
