"""The lab's experiments, in the lecture's order: name -> function(Config) -> result."""

from __future__ import annotations

import functools

import torch

from lossopt.lab.experiments.descent import derivative, gd_vs_sgd, momentum_forms
from lossopt.lab.experiments.losses import (
    class_weights,
    entropy,
    kl_asymmetry,
    l1_vs_l2,
    triplet,
)
from lossopt.lab.experiments.optimization import (
    adaptive_steps,
    learning_rate,
    optimizer_paths,
    training,
)


def _one_thread(run):
    """Run an experiment on one intra-op thread: the lab's models are so small that
    splitting each operation across threads costs more than it saves, and far more
    on a busy machine. The caller's setting is restored afterwards."""

    @functools.wraps(run)
    def wrapper(config):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return run(config)
        finally:
            torch.set_num_threads(threads)

    return wrapper


_EXPERIMENTS = {
    "l1-vs-l2": l1_vs_l2,
    "entropy": entropy,
    "class-weights": class_weights,
    "kl": kl_asymmetry,
    "triplet": triplet,
    "derivative": derivative,
    "gd-vs-sgd": gd_vs_sgd,
    "learning-rate": learning_rate,
    "paths": optimizer_paths,
    "momentum": momentum_forms,
    "adaptive": adaptive_steps,
    "training": training,
}

EXPERIMENTS = {name: _one_thread(run) for name, run in _EXPERIMENTS.items()}

__all__ = ["EXPERIMENTS"]
