"""AdaGrad: a learning rate per element that shrinks with its history."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from lossopt._checks import check_number
from lossopt.optim.optimizer import Optimizer, next_steps, step_counter


class Adagrad(Optimizer):
    """AdaGrad (Duchi et al., 2011), in the lecture's notation:

        h <- h + (dL/dW)^2
        W <- W - eta / (sqrt(h) + eps) * dL/dW

    Elements that have moved a lot get smaller steps; since h only grows, the
    steps shrink forever (RMSProp's motivation). eps sits outside the square
    root, as in torch. ``lr_decay`` divides eta by 1 + (t - 1) lr_decay at step
    t; ``initial_accumulator_value`` starts h above zero. The accumulator is
    the state 'sum', created for every parameter at construction, as torch.
    Defaults equal torch.optim.Adagrad's. Deviation: a param group's own
    ``initial_accumulator_value`` is honoured (torch uses the constructor's for
    every group).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
        nonfinite: str = "propagate",
        fused: bool | None = None,
    ) -> None:
        check_number("lr", lr, low=0.0)
        check_number("lr_decay", lr_decay, low=0.0)
        check_number("weight_decay", weight_decay, low=0.0)
        check_number("initial_accumulator_value", initial_accumulator_value, low=0.0)
        check_number("eps", eps, low=0.0)
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults, nonfinite=nonfinite, fused=fused)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # torch creates Adagrad's state eagerly, so a fresh state_dict has it too.
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            self.state[p].update(self._init_state(p, group))

    def _init_state(self, param, group):
        value = group["initial_accumulator_value"]
        if param.is_complex():  # both halves start at the value, as in torch
            value = complex(value, value)
        return {"step": step_counter(), "sum": torch.full_like(param, value)}

    def _hyper(self, group):
        return {k: group[k] for k in ("lr", "lr_decay", "weight_decay", "eps")}

    def _flags(self, group):
        return {"weight_decay": group["weight_decay"] != 0, "maximize": group["maximize"]}

    @staticmethod
    def _scalars(states, h, f):
        t = next_steps(states, h)
        lr = h["lr"] / (1 + (t - 1) * h["lr_decay"])  # eta / (1 + (t - 1) lr_decay)
        return {"lr": lr}

    @staticmethod
    def _update(param, grad, state, h, f, s):
        state["step"].add_(1)
        if f["maximize"]:
            grad = -grad
        if f["weight_decay"]:
            grad = torch.addcmul(grad, param, h["weight_decay"])
        state["sum"].addcmul_(grad, grad)
        param.addcdiv_(grad, state["sum"].sqrt().add_(h["eps"]).div_(s["lr"]), value=-1)
