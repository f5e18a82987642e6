"""Distance losses between a prediction x and a target y, element by element.

The lecture's first pair: L1 weighs every error equally, L2 by its own size, so
large errors dominate. Huber and smooth L1 are L2 near zero and L1 far away.

Each is one element-wise pass, which torch's own kernel already makes at the
memory limit, so these functions check their arguments (metadata only: no pass
over the data, no host synchronisation) and call it; torch.func, autocast,
compile and export then treat them exactly as torch's. The equations
themselves are written out in :mod:`lossopt.losses.reference`, which these
equal. The mean of no element is 0 (torch: NaN).
"""

from __future__ import annotations

import torch

from lossopt import _compat
from lossopt._checks import (
    check_floating,
    check_number,
    check_same_shape,
    floating_of_one_shape,
)
from lossopt.losses import reference
from lossopt.losses._reduction import TORCH_REDUCTION, check_reduction


def _plain_pair(input, target, reduction) -> bool:
    """Whether the arguments pass :func:`_check_pair`, in one expression: the
    common call, which a small loss cannot afford to check step by step."""
    return (
        type(reduction) is str
        and reduction in TORCH_REDUCTION
        and floating_of_one_shape(input, target)
    )


def _check_pair(input, target, reduction) -> None:
    check_reduction(reduction)
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)


def _check(input: torch.Tensor, target: torch.Tensor, reduction: str) -> bool:
    """Check the arguments; True when torch's kernel gives lossopt's answer
    (everything but the mean of an empty tensor). The kernels are then called
    without torch.nn.functional's wrappers, whose broadcast of two
    same-shaped tensors is one more dispatched operation."""
    if not _plain_pair(input, target, reduction):
        _check_pair(input, target, reduction)
    return reduction != "mean" or input.numel() > 0


def l1_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """L1 loss, l_n = |x_n - y_n|.

    Same as ``torch.nn.functional.l1_loss`` except that input and target must
    have the same shape: torch broadcasts with a warning, lossopt raises.
    """
    if _check(input, target, reduction):
        return _compat.l1_loss(input, target, TORCH_REDUCTION[reduction])
    return reference.l1_loss(input, target, reduction)


def mse_loss(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error (L2 loss), l_n = (x_n - y_n)^2.

    Same as ``torch.nn.functional.mse_loss``, without silent broadcasting.
    """
    if _check(input, target, reduction):
        return _compat.mse_loss(input, target, TORCH_REDUCTION[reduction])
    return reference.mse_loss(input, target, reduction)


def huber_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", delta: float = 1.0
) -> torch.Tensor:
    """Huber loss with threshold delta > 0, e = x_n - y_n:

    l_n = e^2 / 2 if |e| < delta, else delta * (|e| - delta / 2).

    Same as ``torch.nn.functional.huber_loss``.
    """
    if type(delta) is not float or not delta > 0.0:
        check_number("delta", delta, low=0.0, low_open=True)
    if _check(input, target, reduction):
        return _compat.huber_loss(input, target, TORCH_REDUCTION[reduction], float(delta))
    return reference.huber_loss(input, target, reduction, delta)


def smooth_l1_loss(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean", beta: float = 1.0
) -> torch.Tensor:
    """Smooth L1 loss with threshold beta >= 0, e = x_n - y_n:

    l_n = e^2 / (2 beta) if |e| < beta, else |e| - beta / 2; beta = 0 is plain L1.

    Same as ``torch.nn.functional.smooth_l1_loss``. It equals
    ``huber_loss(delta=beta) / beta`` for beta > 0.
    """
    if type(beta) is not float or not beta >= 0.0:
        check_number("beta", beta, low=0.0)
    if _check(input, target, reduction):
        return _compat.smooth_l1_loss(input, target, TORCH_REDUCTION[reduction], float(beta))
    return reference.smooth_l1_loss(input, target, reduction, beta)
