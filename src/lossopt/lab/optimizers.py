"""The lecture's five optimizers, by the names the lab's command line uses."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from lossopt import optim
from lossopt.lab.i18n import _


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    label: str
    build: Callable[[Iterable[torch.Tensor], float], torch.optim.Optimizer]
    # Learning rates worth trying on a small network on standardized data.
    sweep: tuple[float, ...]
    # Momentum's alpha (torch's mu); 0 for the others. On a steady gradient the
    # velocity grows to 1/(1 - alpha) steps' worth: the effective rate is lr/(1 - alpha).
    momentum: float = 0.0

    def effective_lr(self, lr: float) -> float:
        return lr / (1 - self.momentum)


MOMENTUM = 0.9


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (
        OptimizerSpec("sgd", "SGD", lambda p, lr: optim.SGD(p, lr=lr), (0.03, 0.1, 0.3)),
        OptimizerSpec(
            "momentum",
            "Momentum",
            lambda p, lr: optim.SGD(p, lr=lr, momentum=MOMENTUM),
            (0.003, 0.01, 0.03),
            MOMENTUM,
        ),
        OptimizerSpec(
            "adagrad", "AdaGrad", lambda p, lr: optim.Adagrad(p, lr=lr), (0.01, 0.03, 0.1)
        ),
        OptimizerSpec(
            "rmsprop", "RMSProp", lambda p, lr: optim.RMSprop(p, lr=lr), (3e-4, 1e-3, 3e-3)
        ),
        OptimizerSpec("adam", "Adam", lambda p, lr: optim.Adam(p, lr=lr), (1e-3, 3e-3, 1e-2)),
    )
}


def parse_optimizers(text: str | None) -> list[str]:
    """'sgd,adam' -> ['sgd', 'adam']; raises ValueError naming an unknown one."""
    if text is None:
        return list(OPTIMIZERS)
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(_("--optimizers names no optimizer"))
    for name in names:
        if name not in OPTIMIZERS:
            raise ValueError(
                _("unknown optimizer {name!r}; choose from {names}").format(
                    name=name, names=", ".join(OPTIMIZERS)
                )
            )
    return names
