"""Kullback-Leibler divergence, the lecture's measure of how two distributions differ:

    D_KL(P || Q) = sum_x P(x) log(P(x) / Q(x)) = H(P, Q) - H(P).

It is not symmetric: D_KL(P || Q) is the forward KL, D_KL(Q || P) the reverse.
Terms with P(x) = 0 contribute exactly 0 (0 log 0 = 0), even where log Q(x) is
-inf, and their gradients stay finite.
"""

from __future__ import annotations

import torch

from lossopt._checks import check_floating, check_same_shape
from lossopt.losses._autograd import single_backward
from lossopt.losses._reduction import check_reduction, compute_dtype, reduce, reduction_scale


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
    """Element-wise KL terms (reduction='none')."""

    @staticmethod
    def forward(ctx, log_q, target, log_target):
        ctx.save_for_backward(log_q, target)
        ctx.log_target = log_target
        return _pointwise(log_q, target, log_target)

    @staticmethod
    @single_backward
    def backward(ctx, grad):
        log_q, target = ctx.saved_tensors
        grads = _pointwise_grads(log_q, target, ctx.log_target, grad, ctx.needs_input_grad)
        return (*grads, None)


# Elements per block when summing: the terms' temporaries stay in cache, so the
# forward reads each input once and allocates nothing of the inputs' size.
_BLOCK = 1 << 19


class _KLSum(torch.autograd.Function):
    """scale * sum of the KL terms, for the scalar reductions."""

    @staticmethod
    def forward(ctx, log_q, target, log_target, scale):
        flat_q, flat_t = log_q.reshape(-1), target.reshape(-1)
        total = torch.zeros((), dtype=log_q.dtype, device=log_q.device)
        for start in range(0, flat_q.numel(), _BLOCK):
            part = slice(start, start + _BLOCK)
            total += _pointwise(flat_q[part], flat_t[part], log_target).sum()
        ctx.save_for_backward(log_q, target)
        ctx.log_target, ctx.scale = log_target, scale
        return total * scale

    @staticmethod
    @single_backward
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
    check_reduction(reduction, batchmean=True)
    check_floating("input", input)
    check_floating("target", target)
    check_same_shape("input", input, "target", target)
    compute = compute_dtype(input)
    log_q, target_c = input.to(compute), target.to(compute)
    if reduction == "none":
        return _KLPointwise.apply(log_q, target_c, bool(log_target)).to(input.dtype)
    batch = input.shape[0] if input.dim() else 1
    scale = reduction_scale(reduction, input.numel(), batch_size=batch)
    return _KLSum.apply(log_q, target_c, bool(log_target), scale).to(input.dtype)


class _KLFromLogits(torch.autograd.Function):
    """Per-distribution D_KL(softmax(a) || softmax(b)) along the last dim.

    With p = softmax(a), q = softmax(b) and L = sum_c p_c (log p_c - log q_c):
    dL/db = q - p and dL/da = p * (log p - log q - L).
    """

    @staticmethod
    def forward(ctx, p_logits, q_logits):
        compute = compute_dtype(p_logits)
        log_p = torch.log_softmax(p_logits.to(compute), dim=-1)
        log_q = torch.log_softmax(q_logits.to(compute), dim=-1)
        kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1)
        ctx.save_for_backward(p_logits, q_logits, kl)
        return kl

    @staticmethod
    @single_backward
    def backward(ctx, grad_kl):
        p_logits, q_logits, kl = ctx.saved_tensors
        log_p = torch.log_softmax(p_logits.to(kl.dtype), dim=-1)
        log_q = torch.log_softmax(q_logits.to(kl.dtype), dim=-1)
        p = log_p.exp()
        g = grad_kl[..., None]
        grad_p = grad_q = None
        if ctx.needs_input_grad[0]:
            grad_p = (g * p * (log_p - log_q - kl[..., None])).to(p_logits.dtype)
        if ctx.needs_input_grad[1]:
            grad_q = (g * (log_q.exp() - p)).to(q_logits.dtype)
        return grad_p, grad_q


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
    check_reduction(reduction, batchmean=True)
    check_floating("p_logits", p_logits)
    check_floating("q_logits", q_logits)
    check_same_shape("p_logits", p_logits, "q_logits", q_logits)
    if p_logits.dim() == 0:
        raise ValueError("p_logits must have a dimension of outcomes, got a 0-d tensor")
    if not -p_logits.dim() <= dim < p_logits.dim():
        raise IndexError(f"dim {dim} is out of range for logits of {p_logits.dim()} dimensions")
    kl = _KLFromLogits.apply(p_logits.movedim(dim, -1), q_logits.movedim(dim, -1))
    return reduce(kl, "mean" if reduction == "batchmean" else reduction).to(p_logits.dtype)
