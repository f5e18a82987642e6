"""Gradient descent and Momentum."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from lossopt._checks import check_number
from lossopt.optim.optimizer import Optimizer


class SGD(Optimizer):
    """Gradient descent, W <- W - eta dL/dW, with optional Momentum.

    With ``momentum`` mu > 0 it keeps a buffer b (torch's convention,
    Sutskever et al., 2013):

        b <- mu b + (1 - dampening) g      (b = g on the first step)
        W <- W - eta b                      (Nesterov: W <- W - eta (g + mu b))

    The lecture writes Momentum as v <- alpha v - eta g, W <- W + v. With a
    constant learning rate the two are the same update: v = -eta b at every
    step. They differ when eta changes over time (a scheduler): the lecture's
    v carries the old learning rates inside it, while b is rescaled by the
    current eta at each step, so a learning-rate drop takes effect at once.

    ``weight_decay`` adds lambda W to the gradient; ``maximize`` ascends.
    Defaults equal torch.optim.SGD's; see :class:`lossopt.optim.Optimizer` for
    ``nonfinite`` and ``fused``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        nonfinite: str = "propagate",
        fused: bool | None = None,
    ) -> None:
        check_number("lr", lr, low=0.0)
        check_number("momentum", momentum, low=0.0)
        check_number("weight_decay", weight_decay, low=0.0)
        check_number("dampening", dampening)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "nesterov momentum requires momentum > 0 and dampening = 0, "
                f"got momentum={momentum}, dampening={dampening}"
            )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults, nonfinite=nonfinite, fused=fused)

    def _init_state(self, param, group):
        return {}  # torch's layout: the buffer appears at the first step

    def _hyper(self, group):
        return {k: group[k] for k in ("lr", "momentum", "dampening", "weight_decay")}

    def _flags(self, group):
        return {
            "momentum": group["momentum"] != 0,
            "nesterov": group["nesterov"],
            "weight_decay": group["weight_decay"] != 0,
            "maximize": group["maximize"],
        }

    def _ready(self, state, f):
        return not f["momentum"] or "momentum_buffer" in state

    @staticmethod
    def _update(param, grad, state, h, f, s):
        if f["maximize"]:
            grad = -grad
        if f["weight_decay"]:
            grad = torch.addcmul(grad, param, h["weight_decay"])
        if f["momentum"]:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = torch.clone(grad).detach()
            else:
                buf.mul_(h["momentum"]).addcmul_(grad, 1 - h["dampening"])
            grad = torch.addcmul(grad, buf, h["momentum"]) if f["nesterov"] else buf
        param.addcmul_(grad, h["lr"], value=-1)
