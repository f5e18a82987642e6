"""Distance losses between a prediction x and a target y, element by element.

The lecture's first pair: L1 weighs every error equally, L2 by its own size, so
large errors dominate. Huber and smooth L1 are L2 near zero and L1 far away.
"""

from __future__ import annotations

import torch

from lossopt._checks import check_floating, check_number, check_same_shape
from lossopt.losses._reduction import check_reduction, reduce


def _error(input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    return input - target


def l1_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """L1 loss, l_n = |x_n - y_n|.

    Same as ``torch.nn.functional.l1_loss`` except that input and target must
    have the same shape: torch broadcasts with a warning, lossopt raises.
    """
    check_reduction(reduction)
    return reduce(_error(input, target).abs(), reduction)


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error (L2 loss), l_n = (x_n - y_n)^2.

    Same as ``torch.nn.functional.mse_loss``, without silent broadcasting.
    """
    check_reduction(reduction)
    return reduce(_error(input, target).square(), reduction)


def huber_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", delta: float = 1.0
) -> torch.Tensor:
    """Huber loss with threshold delta > 0, e = x_n - y_n:

    l_n = e^2 / 2 if |e| < delta, else delta * (|e| - delta / 2).

    Same as ``torch.nn.functional.huber_loss``.
    """
    check_reduction(reduction)
    check_number("delta", delta, low=0.0, low_open=True)
    error = _error(input, target)
    magnitude = error.abs()
    loss = torch.where(magnitude < delta, 0.5 * error.square(), delta * (magnitude - 0.5 * delta))
    return reduce(loss, reduction)


def smooth_l1_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", beta: float = 1.0
) -> torch.Tensor:
    """Smooth L1 loss with threshold beta >= 0, e = x_n - y_n:

    l_n = e^2 / (2 beta) if |e| < beta, else |e| - beta / 2; beta = 0 is plain L1.

    Same as ``torch.nn.functional.smooth_l1_loss``. It equals
    ``huber_loss(delta=beta) / beta`` for beta > 0.
    """
    check_reduction(reduction)
    check_number("beta", beta, low=0.0)
    error = _error(input, target)
    magnitude = error.abs()
    if beta == 0:
        return reduce(magnitude, reduction)
    loss = torch.where(magnitude < beta, 0.5 * error.square() / beta, magnitude - 0.5 * beta)
    return reduce(loss, reduction)
