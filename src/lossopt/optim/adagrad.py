"""AdaGrad: a learning rate per element that shrinks with its history."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from lossopt._checks import check_number
from lossopt.optim.optimizer import Optimizer, step_counter


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
        super().__init__(params, defaults, nonfinite=nonfinite)

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

    def _update(self, param, grad, state, group):
        state["step"] += 1
        step = state["step"].item()
        if group["maximize"]:
            grad = -grad
        if group["weight_decay"]:
            grad = grad.add(param, alpha=group["weight_decay"])
        lr = float(group["lr"]) / (1 + (step - 1) * group["lr_decay"])
        state["sum"].addcmul_(grad, grad, value=1)
        param.addcdiv_(grad, state["sum"].sqrt().add_(group["eps"]), value=-lr)
