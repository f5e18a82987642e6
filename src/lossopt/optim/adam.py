"""Adam: Momentum and RMSProp together, with bias correction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import torch

from lossopt._checks import check_number
from lossopt.optim.optimizer import Optimizer, check_betas, regularized, step_counter


class Hyper(NamedTuple):
    lr: Any
    beta1: Any
    beta2: Any
    eps: Any
    weight_decay: Any


class Options(NamedTuple):
    weight_decay: bool
    decoupled: bool
    amsgrad: bool
    maximize: bool


class AtStep(NamedTuple):
    step_size: Any  # alpha / (1 - beta1^t)
    bias_correction2_sqrt: Any  # sqrt(1 - beta2^t)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1), as on the lecture's slide:

        m_t <- beta1 m_{t-1} + (1 - beta1) g_t          (state 'exp_avg')
        v_t <- beta2 v_{t-1} + (1 - beta2) g_t^2        (state 'exp_avg_sq')
        mhat_t <- m_t / (1 - beta1^t),  vhat_t <- v_t / (1 - beta2^t)
        theta_t <- theta_{t-1} - alpha mhat_t / (sqrt(vhat_t) + eps)

    eps sits outside the square root, as in the paper and torch (optax's
    ``eps_root`` and Keras's epsilon-hat variants differ slightly). Bias
    correction undoes the zero start of m and v, which would otherwise make the
    first steps tiny.

    ``weight_decay`` lambda is L2 regularisation (lambda theta added to g) by
    default, or with ``decoupled_weight_decay=True`` the decoupled form of
    Loshchilov & Hutter (2019), theta <- theta (1 - alpha lambda), which is
    :class:`AdamW`. ``amsgrad`` divides by the running maximum of v (state
    'max_exp_avg_sq', Reddi et al., 2018). Signature and defaults equal
    torch.optim.Adam's; ``foreach``, ``capturable``, ``differentiable``,
    ``fused`` and ``nonfinite`` are described in :class:`lossopt.optim.Optimizer`.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
        nonfinite: str = "propagate",
    ) -> None:
        check_number("lr", lr, low=0.0)
        betas = check_betas(betas)
        check_number("eps", eps, low=0.0)
        check_number("weight_decay", weight_decay, low=0.0)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            capturable=capturable,
            decoupled_weight_decay=decoupled_weight_decay,
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
        "amsgrad": False,
        "capturable": False,
        "decoupled_weight_decay": False,
    }

    def _init_state(self, param, group):
        state = {
            "step": step_counter(),
            "exp_avg": torch.zeros_like(param, memory_format=torch.preserve_format),
            "exp_avg_sq": torch.zeros_like(param, memory_format=torch.preserve_format),
        }
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        return state

    def _hyper(self, group):
        beta1, beta2 = group["betas"]
        return Hyper(group["lr"], beta1, beta2, group["eps"], group["weight_decay"])

    def _options(self, group):
        return Options(
            weight_decay=group["weight_decay"] != 0,
            decoupled=group["decoupled_weight_decay"],
            amsgrad=group["amsgrad"],
            maximize=group["maximize"],
        )

    @staticmethod
    def _at_step(t, h):
        return AtStep(
            step_size=h.lr / (1 - h.beta1**t), bias_correction2_sqrt=(1 - h.beta2**t) ** 0.5
        )

    @staticmethod
    def _update(param, grad, state, h, o, at):
        grad = regularized(param, grad, o, h.weight_decay, coupled=not o.decoupled)
        if o.weight_decay and o.decoupled:
            param.mul_(1 - h.lr * h.weight_decay)
        exp_avg = state["exp_avg"].lerp_(grad, 1 - h.beta1)
        exp_avg_sq = state["exp_avg_sq"].mul_(h.beta2).addcmul_(grad, grad, value=1 - h.beta2)
        if o.amsgrad:
            exp_avg_sq = state["max_exp_avg_sq"].clamp_min_(exp_avg_sq)
        # alpha mhat / (sqrt(vhat) + eps) = step_size m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
        denom = exp_avg_sq.sqrt().div_(at.bias_correction2_sqrt).add_(h.eps)
        if type(at.step_size) is float:  # a number: torch's passes over memory
            param.addcdiv_(exp_avg, denom, value=-at.step_size)
        else:
            # A tensor (compiled, capturable) divides the denominator, so that
            # it is never read on the host: one more pass.
            param.addcdiv_(exp_avg, denom.div_(at.step_size), value=-1)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019):
    theta <- theta (1 - alpha lambda) before the Adam step. Same as
    ``Adam(..., decoupled_weight_decay=True)``; weight_decay defaults to 1e-2,
    and the signature equals torch.optim.AdamW's."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | torch.Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        nonfinite: str = "propagate",
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
            nonfinite=nonfinite,
        )
