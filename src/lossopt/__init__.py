"""lossopt: the losses and optimizers of the lecture, written from their equations,
as a drop-in for torch.nn and torch.optim."""

from lossopt import losses, optim
from lossopt._policy import accelerator_path, sync_checks

__version__ = "0.1.0"
__all__ = ["accelerator_path", "losses", "optim", "sync_checks", "__version__"]
