"""RMSProp: AdaGrad with a moving average that forgets."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from lossopt._checks import check_number
from lossopt.optim.optimizer import Optimizer, step_counter


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
    W <- W - eta b. Defaults equal torch.optim.RMSprop's.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
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
            maximize=maximize,
        )
        super().__init__(params, defaults, nonfinite=nonfinite, fused=fused)

    def _init_state(self, param, group):
        state = {"step": step_counter(), "square_avg": torch.zeros_like(param)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = torch.zeros_like(param)
        if group["centered"]:
            state["grad_avg"] = torch.zeros_like(param)
        return state

    def _hyper(self, group):
        return {k: group[k] for k in ("lr", "alpha", "eps", "weight_decay", "momentum")}

    def _flags(self, group):
        return {
            "momentum": group["momentum"] > 0,
            "centered": group["centered"],
            "weight_decay": group["weight_decay"] != 0,
            "maximize": group["maximize"],
        }

    @staticmethod
    def _update(param, grad, state, h, f, s):
        state["step"].add_(1)
        if f["maximize"]:
            grad = -grad
        if f["weight_decay"]:
            grad = torch.addcmul(grad, param, h["weight_decay"])
        square_avg = state["square_avg"].mul_(h["alpha"]).addcmul_(grad, grad * (1 - h["alpha"]))
        if f["centered"]:
            grad_avg = state["grad_avg"].lerp_(grad, 1 - h["alpha"])
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(h["eps"])
        if f["momentum"]:
            buf = state["momentum_buffer"].mul_(h["momentum"]).addcdiv_(grad, avg)
            param.addcmul_(buf, h["lr"], value=-1)
        else:
            param.addcdiv_(grad, avg.div_(h["lr"]), value=-1)
