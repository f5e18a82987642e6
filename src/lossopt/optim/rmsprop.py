"""RMSProp: AdaGrad with a moving average that forgets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import torch

from lossopt._checks import check_number
from lossopt.optim.optimizer import Optimizer, regularized, step_counter


class Hyper(NamedTuple):
    lr: Any
    alpha: Any
    eps: Any
    weight_decay: Any
    momentum: Any


class Options(NamedTuple):
    momentum: bool
    centered: bool
    weight_decay: bool
    maximize: bool


class RMSprop(Optimizer):
    """RMSProp (Hinton, Coursera lecture 6e, 2012). The lecture writes it as

        G <- gamma G + (1 - gamma) (dL/dW)^2
        W <- W - eta / sqrt(G + eps) * dL/dW

    with eps inside the square root (TensorFlow/Keras's convention). lossopt,
    like torch, puts eps outside: W <- W - eta / (sqrt(G) + eps) * dL/dW, with
    gamma named ``alpha`` (state 'square_avg'). The two agree whenever G >> eps.

    ``centered`` divides by an estimate of the variance instead,
    sqrt(G - gbar^2) with gbar the moving average of g (state 'grad_avg');
    ``momentum`` mu > 0 keeps a buffer b <- mu b + g / (sqrt(G) + eps) and steps
    W <- W - eta b. Signature (all positional, as torch's) and defaults equal
    torch.optim.RMSprop's; see :class:`lossopt.optim.Optimizer` for
    ``capturable``, ``foreach``, ``differentiable``, ``fused`` and ``nonfinite``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        *,
        nonfinite: str = "propagate",
        fused: bool | None = None,
    ) -> None:
        check_number("lr", lr, low=0.0)
        check_number("alpha", alpha, low=0.0, high=1.0)
        check_number("eps", eps, low=0.0)
        check_number("weight_decay", weight_decay, low=0.0)
        check_number("momentum", momentum, low=0.0)
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            capturable=capturable,
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

    _group_fallbacks = {
        **Optimizer._group_fallbacks,
        "momentum": 0,
        "centered": False,
        "capturable": False,
    }

    def _init_state(self, param, group):
        state = {"step": step_counter(), "square_avg": torch.zeros_like(param)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = torch.zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = torch.zeros_like(param)
        return state

    def _hyper(self, group):
        return Hyper(
            group["lr"], group["alpha"], group["eps"], group["weight_decay"], group["momentum"]
        )

    def _options(self, group):
        return Options(
            momentum=group["momentum"] > 0,
            centered=group["centered"],
            weight_decay=group["weight_decay"] != 0,
            maximize=group["maximize"],
        )

    @staticmethod
    def _update(param, grad, state, h, o, at):
        grad = regularized(param, grad, o, h.weight_decay)
        square_avg = state["square_avg"].mul_(h.alpha).addcmul_(grad, grad, value=1 - h.alpha)
        if o.centered:
            grad_avg = state["grad_avg"].lerp_(grad, 1 - h.alpha)
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(h.eps)
        if o.momentum:
            buf = state["momentum_buffer"].mul_(h.momentum).addcdiv_(grad, avg)
            param.add_(buf, alpha=-h.lr)
        else:
            param.addcdiv_(grad, avg, value=-h.lr)
