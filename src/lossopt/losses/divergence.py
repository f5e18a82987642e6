"""Kullback-Leibler divergence, the lecture's measure of how two distributions differ:

    D_KL(P || Q) = sum_x P(x) log(P(x) / Q(x)) = H(P, Q) - H(P).

It is not symmetric: D_KL(P || Q) is the forward KL, D_KL(Q || P) the reverse.
Terms with P(x) = 0 contribute exactly 0 (0 log 0 = 0), even where log Q(x) is
-inf, and their gradients stay finite.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lossopt import _policy
from lossopt._checks import check_floating, check_same_shape, floating_of_one_shape
from lossopt.losses._reduction import (
    _HALF,
    MEAN,
    TORCH_REDUCTION,
    WITH_BATCHMEAN,
    check_reduction,
    compute_dtype,
    mean_over,
    reduction_scale,
)
from lossopt.losses._route import DEVICE, OWN, autocast_on, direct, direct_call, route, traced


def _pointwise(log_q: torch.Tensor, target: torch.Tensor, log_target: bool) -> torch.Tensor:
    """P (log P - log Q) element by element, with 0 log 0 = 0."""
    if log_target:
        return target.exp() * (target - log_q)
    # where() keeps 0 * (-inf) and 0 * log 0 out of the sum; a negative or NaN
    # "probability" still gives NaN, as in torch, rather than a quiet number.
    return torch.where(target == 0, 0.0, torch.xlogy(target, target) - target * log_q)


def _pointwise_grads(log_q, target, log_target, grad, needs):
    """The hand-derived gradients d/d(log Q) = -P and d/dP = log P + 1 - log Q
    (d/d(log P) = P (log P - log Q + 1) with log_target). At P = 0 the one-sided
    derivative of P log P is -inf; 0 log 0 is treated as the constant it is
    defined to be, so only the -P log Q term counts there (torch gives NaN)."""
    grad_log_q = grad_target = None
    if log_target:
        p = target.exp()
        if needs[0]:
            grad_log_q = -grad * p
        if needs[1]:
            grad_target = grad * p * (target - log_q + 1)
        return grad_log_q, grad_target
    if needs[0]:
        grad_log_q = target * -grad
    if needs[1]:
        zero = target == 0
        log_p = torch.where(zero, 1.0, target).log()
        grad_target = grad * torch.where(zero, -log_q, log_p + 1 - log_q)
    return grad_log_q, grad_target


class _KLPointwise(torch.autograd.Function):
    """Element-wise KL terms P (log P - log Q) with lossopt's gradients at
    P = 0 (see :func:`_pointwise_grads`); the backward is made of torch
    operations, so a double backward differentiates it exactly."""

    @staticmethod
    def forward(log_q, target, log_target):
        return _pointwise(log_q, target, log_target)

    @staticmethod
    def setup_context(ctx, inputs, output):
        log_q, target, log_target = inputs
        ctx.save_for_backward(log_q, target)
        ctx.log_target = log_target

    @staticmethod
    def backward(ctx, grad):
        log_q, target = ctx.saved_tensors
        grads = _pointwise_grads(log_q, target, ctx.log_target, grad, ctx.needs_input_grad)
        return (*grads, None)


class _KLSum(torch.autograd.Function):
    """scale * sum of the KL terms, for the scalar reductions, in blocks of
    elements whose temporaries stay in cache: the forward reads each input
    once and allocates nothing of the inputs' size."""

    @staticmethod
    def forward(log_q, target, log_target, scale):
        flat_q, flat_t = log_q.reshape(-1), target.reshape(-1)
        total = torch.zeros((), dtype=log_q.dtype, device=log_q.device)
        block = _policy.LOSS_BLOCK_ELEMENTS
        for start in range(0, flat_q.numel(), block):
            part = slice(start, start + block)
            total += _pointwise(flat_q[part], flat_t[part], log_target).sum()
        return total * scale

    @staticmethod
    def setup_context(ctx, inputs, output):
        log_q, target, log_target, scale = inputs
        ctx.save_for_backward(log_q, target)
        ctx.log_target, ctx.scale = log_target, scale

    @staticmethod
    def backward(ctx, grad):
        log_q, target = ctx.saved_tensors
        grads = _pointwise_grads(
            log_q, target, ctx.log_target, grad * ctx.scale, ctx.needs_input_grad
        )
        return (*grads, None, None)


def kl_div(
    input: torch.Tensor,
    target: torch.Tensor,
    reduction: str = "batchmean",
    log_target: bool = False,
) -> torch.Tensor:
    """KL divergence D_KL(P || Q) from log-probabilities ``input`` = log Q and
    ``target`` = P (or log P with ``log_target=True``), element by element
    l = P (log P - log Q), with 0 log 0 = 0.

    Deviation from torch, deliberate: the default reduction is 'batchmean'
    (sum / input.size(0)), which is the true KL per sample; torch's default
    'mean' divides by the number of elements as well as the batch and is kept
    with that meaning when asked for. Input and target must have the same shape.
    """
    code = _SCALAR.get(reduction) if type(reduction) is str else None
    if (
        code is not None
        and type(log_target) is bool
        and direct("kl_div", input, target)
        and target.dtype == input.dtype
        and input.shape == target.shape
        and (log_target or not target.requires_grad)
    ):
        batch = input.shape[0] if reduction == "batchmean" and input.dim() else None
        loss = direct_call(_kl_div_kernel, True, input, target, code, log_target, batch)
        if loss is not None:  # NaN (0 log 0, an empty batch) takes the full path
            return loss
    if reduction not in WITH_BATCHMEAN:
        check_reduction(reduction, batchmean=True)
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    batch = input.shape[0] if input.dim() else 1
    scale = reduction_scale(reduction, input.numel(), batch_size=batch)
    where = route("kl_div", input.numel(), input, target)
    # lossopt's gradient with respect to P is finite at P = 0 (torch's is NaN)
    target_grad = target.requires_grad and not log_target and not traced(input, target)
    if where == OWN or target_grad:
        compute = compute_dtype(input)
        log_q, target_c = input.to(compute), target.to(compute)
        if reduction == "none":
            return _KLPointwise.apply(log_q, target_c, bool(log_target)).to(input.dtype)
        return _KLSum.apply(log_q, target_c, bool(log_target), scale).to(input.dtype)
    return _kl_div_torch(input, target, reduction, bool(log_target), scale, where)


# The scalar reductions as torch's kernel takes them: 'batchmean' is its sum
# divided by the batch size.
_SCALAR = {"batchmean": TORCH_REDUCTION["sum"], "mean": MEAN, "sum": TORCH_REDUCTION["sum"]}


def _kl_div_kernel(input, target, code, log_target, batch):
    """torch's kernel, and its batchmean's division by the batch size."""
    loss = torch.kl_div(input, target, code, log_target=log_target)
    return loss if batch is None else loss / batch


def _kl_div_torch(input, target, reduction, log_target, scale, where):
    """torch's kernel under lossopt's rule 0 log 0 = 0. torch gives NaN where
    P = 0 and log Q = -inf; on the CPU a scalar result is read once (free
    there) and only a NaN takes lossopt's exact path. Elsewhere log Q is set
    to 0 where P = 0 first, which leaves every other term and gradient as it
    is. With ``log_target`` both agree already."""
    half = input.dtype in _HALF and not autocast_on(input.device)
    x, t = (input.float(), target.float()) if half else (input, target)

    def call(x):
        if reduction == "none":
            return F.kl_div(x, t, reduction="none", log_target=log_target)
        return F.kl_div(x, t, reduction="sum", log_target=log_target) * scale

    if log_target:
        loss = call(x)
    elif reduction != "none" and where != DEVICE:
        loss = call(x)
        if math.isnan(loss.item()):
            loss = _KLSum.apply(x, t, False, scale)
    else:
        loss = call(torch.where(t == 0, 0.0, x))
    return loss.to(input.dtype) if half else loss


def kl_divergence(
    p_logits: torch.Tensor,
    q_logits: torch.Tensor,
    dim: int = -1,
    reduction: str = "batchmean",
) -> torch.Tensor:
    """D_KL(P || Q) in the lecture's argument order, with P = softmax(p_logits)
    and Q = softmax(q_logits) along ``dim``, gradients flowing to both sides.

    The forward KL is ``kl_divergence(p, q)``; the reverse KL D_KL(Q || P) is
    ``kl_divergence(q, p)``. Reductions act over distributions, not elements:
    'none' returns one divergence per distribution (the input's shape without
    ``dim``), 'sum' their sum, and 'mean' and 'batchmean' their mean.
    """
    if not _plain_logits(p_logits, q_logits, dim, reduction):
        _check_logits(p_logits, q_logits, dim, reduction)
    last = dim == -1 or dim == p_logits.dim() - 1
    a, b = (p_logits, q_logits) if last else (p_logits.movedim(dim, -1), q_logits.movedim(dim, -1))
    # torch's kernels at every size: the equation D_KL(P || Q) = sum P (log P -
    # log Q) on two log_softmax results (float32 for half precision, as
    # everywhere). A hand-derived form that keeps only the logits saves memory
    # but recomputes both log_softmax in the backward: 1.3x torch's time at
    # 4096x32768 in the sweep.
    half = a.dtype in _HALF and not autocast_on(a.device)
    if half:
        a, b = a.float(), b.float()
    log_p = torch.log_softmax(a, dim=-1)
    log_q = torch.log_softmax(b, dim=-1)
    if reduction == "none":
        kl = F.kl_div(log_q, log_p, reduction="none", log_target=True).sum(dim=-1)
    else:
        kl = torch.kl_div(log_q, log_p, TORCH_REDUCTION["sum"], log_target=True)
        if reduction != "sum":  # the mean over distributions, as torch's batchmean
            distributions = a.numel() // a.shape[-1] if a.shape[-1] else 0
            kl = mean_over(kl, distributions)
    return kl.to(p_logits.dtype) if half else kl


def _plain_logits(p_logits, q_logits, dim, reduction) -> bool:
    """Whether the arguments pass :func:`_check_logits`, in one expression."""
    return (
        type(reduction) is str
        and reduction in WITH_BATCHMEAN
        and floating_of_one_shape(p_logits, q_logits)
        and type(dim) is int
        and -p_logits.dim() <= dim < p_logits.dim()
    )


def _check_logits(p_logits, q_logits, dim, reduction) -> None:
    """kl_divergence's checks, each naming its argument."""
    check_reduction(reduction, batchmean=True)
    check_floating("p_logits", p_logits)
    check_floating("q_logits", q_logits)
    check_same_shape("p_logits", p_logits, "q_logits", q_logits)
    if p_logits.dim() == 0:
        raise ValueError("p_logits must have a dimension of outcomes, got a 0-d tensor")
    if not -p_logits.dim() <= dim < p_logits.dim():
        raise IndexError(f"dim {dim} is out of range for logits of {p_logits.dim()} dimensions")
