"""AdaGrad: a learning rate per element that shrinks with its history."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import torch

from lossopt._checks import check_number
from lossopt.optim.optimizer import Optimizer, regularized, step_counter


class Hyper(NamedTuple):
    lr: Any
    lr_decay: Any
    weight_decay: Any
    eps: Any


class Options(NamedTuple):
    weight_decay: bool
    maximize: bool


class AtStep(NamedTuple):
    lr: Any  # eta / (1 + (t - 1) lr_decay)


def _rows(indices: torch.Tensor, values: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    # The indices come from a coalesced gradient: valid, no check needed.
    return torch.sparse_coo_tensor(indices, values, shape, check_invariants=False)


class Adagrad(Optimizer):
    """AdaGrad (Duchi et al., 2011), in the lecture's notation:

        h <- h + (dL/dW)^2
        W <- W - eta / (sqrt(h) + eps) * dL/dW

    Elements that have moved a lot get smaller steps; since h only grows, the
    steps shrink forever (RMSProp's motivation). eps sits outside the square
    root, as in torch. ``lr_decay`` divides eta by 1 + (t - 1) lr_decay at step
    t; ``initial_accumulator_value`` starts h above zero. The accumulator is
    the state 'sum', created for every parameter at construction, as torch.
    Sparse gradients (``nn.Embedding(sparse=True)``) update only the rows they
    touch, as torch (not with ``weight_decay``, which torch refuses too).
    Signature and defaults equal torch.optim.Adagrad's; see
    :class:`lossopt.optim.Optimizer` for ``foreach``, ``differentiable``,
    ``fused`` and ``nonfinite``. Deviation: a param group's own
    ``initial_accumulator_value`` is honoured (torch uses the constructor's for
    every group).
    """

    _sparse = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
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
        super().__init__(
            params,
            defaults,
            nonfinite=nonfinite,
            fused=fused,
            foreach=foreach,
            differentiable=differentiable,
        )

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
        return Hyper(group["lr"], group["lr_decay"], group["weight_decay"], group["eps"])

    def _options(self, group):
        return Options(weight_decay=group["weight_decay"] != 0, maximize=group["maximize"])

    def _sparse_problem(self, group):
        if group["weight_decay"] != 0:
            return "weight_decay is not compatible with sparse gradients (as in torch)"
        return None

    @staticmethod
    def _at_step(t, h):
        return AtStep(lr=h.lr / (1 + (t - 1) * h.lr_decay))

    @staticmethod
    def _update(param, grad, state, h, o, at):
        grad = regularized(param, grad, o, h.weight_decay)
        if grad.is_sparse:
            # The same update on the rows the gradient touches; the others keep
            # their accumulator and value (torch's sparse Adagrad).
            grad = grad.coalesce()
            indices, values = grad.indices(), grad.values()
            state["sum"].add_(_rows(indices, values.pow(2), grad.shape))
            std = state["sum"].sparse_mask(grad).coalesce().values().sqrt_().add_(h.eps)
            step = _rows(indices, values / std, grad.shape)
            param.add_(step, alpha=-at.lr)
            return
        state["sum"].addcmul_(grad, grad, value=1)
        std = state["sum"].sqrt().add_(h.eps)
        if type(at.lr) is float:  # a number: torch's four passes over memory
            param.addcdiv_(grad, std, value=-at.lr)
        else:
            # A tensor (compiled, or counted on the device) divides the
            # denominator, so that it is never read on the host: one more pass.
            param.addcdiv_(grad, std.div_(at.lr), value=-1)
