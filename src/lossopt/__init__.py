"""lossopt: the losses and optimizers of the lecture, written from their equations,
as a drop-in for torch.nn and torch.optim."""

from lossopt import losses, optim

__version__ = "0.1.0"
__all__ = ["losses", "optim", "__version__"]
