"""Every explorable of the live lab, in the lecture's order: name -> Explorable."""

from __future__ import annotations

from lossopt.lab.live import descent, losses, optimization, trainer

_ORDER = (
    "regression",
    "softmax",
    "kl",
    "triplet",
    "derivative",
    "gd-vs-sgd",
    "learning-rate",
    "paths",
    "adaptive",
    "training",
)
_ALL = {
    e.name: e
    for e in (
        *losses.EXPLORABLES,
        *descent.EXPLORABLES,
        *optimization.EXPLORABLES,
        trainer.EXPLORABLE,
    )
}
EXPLORABLES = {name: _ALL[name] for name in _ORDER}
