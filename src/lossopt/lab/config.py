"""What every lab experiment is told: seed, size, and the user's overrides."""

from __future__ import annotations

from dataclasses import dataclass, field

from lossopt.lab.optimizers import OPTIMIZERS


@dataclass(frozen=True)
class Config:
    seed: int = 0
    quick: bool = False
    optimizers: tuple[str, ...] = field(default_factory=lambda: tuple(OPTIMIZERS))
    lr: float | None = None
    steps: int | None = None

    def lr_or(self, default: float) -> float:
        return self.lr if self.lr is not None else default

    def steps_or(self, default: int) -> int:
        return self.steps if self.steps is not None else default
