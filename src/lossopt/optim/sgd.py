"""Gradient descent and Momentum."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import torch

from lossopt._checks import check_number
from lossopt.optim.optimizer import Optimizer, regularized


class Hyper(NamedTuple):
    lr: Any
    momentum: Any
    dampening: Any
    weight_decay: Any


class Options(NamedTuple):
    momentum: bool
    nesterov: bool
    weight_decay: bool
    maximize: bool


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
    Sparse gradients (``nn.Embedding(sparse=True)``) are taken, with and
    without momentum, as torch does (the buffer is then sparse too).
    Signature and defaults equal torch.optim.SGD's; see
    :class:`lossopt.optim.Optimizer` for ``foreach``, ``differentiable``,
    ``fused`` and ``nonfinite``.
    """

    _sparse = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
        nonfinite: str = "propagate",
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
        super().__init__(
            params,
            defaults,
            nonfinite=nonfinite,
            fused=fused,
            foreach=foreach,
            differentiable=differentiable,
        )

    _group_fallbacks = {**Optimizer._group_fallbacks, "nesterov": False, "dampening": 0}

    def _init_state(self, param, group):
        return {}  # torch's layout: the buffer appears at the first step

    def _hyper(self, group):
        return Hyper(group["lr"], group["momentum"], group["dampening"], group["weight_decay"])

    def _options(self, group):
        return Options(
            momentum=group["momentum"] != 0,
            nesterov=group["nesterov"],
            weight_decay=group["weight_decay"] != 0,
            maximize=group["maximize"],
        )

    def _ready(self, state, options):
        return not options.momentum or "momentum_buffer" in state

    def _stateless(self, options):
        return not options.momentum

    @staticmethod
    def _update(param, grad, state, h, o, at):
        grad = regularized(param, grad, o, h.weight_decay)
        if o.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.clone()
            else:
                buf.mul_(h.momentum).add_(grad, alpha=1 - h.dampening)
            grad = grad.add(buf, alpha=h.momentum) if o.nesterov else buf
        param.add_(grad, alpha=-h.lr)
