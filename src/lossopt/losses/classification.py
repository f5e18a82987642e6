"""Cross-entropy and negative log-likelihood over classes.

Cross-entropy H(p, q) = -sum_c p(y_c) log q(y_c) between the true distribution p
and the model's q = softmax(x). For a class-index target y_n it is

    l_n = -w_{y_n} log( exp(x_{n,y_n}) / sum_c exp(x_{n,c}) ) * 1{y_n != ignore_index},

computed stably as logsumexp(x_n) - x_{n,y_n}. Its gradient with respect to the
logits is softmax(x_n) - target, which lossopt computes in one pass in the
backward, saving only one number per row (the log-sum-exp) instead of the
N x C log-probabilities that autograd would keep.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lossopt._checks import check_floating, check_integer, check_number, check_tensor
from lossopt.losses._autograd import single_backward
from lossopt.losses._reduction import check_reduction, compute_dtype, reduce, reduction_scale

# Elements per block of rows: a block of logits and its probabilities stay in
# cache, so each pass over the N x C logits reads them from memory once.
_BLOCK_ELEMENTS = 1 << 19


def row_blocks(rows: int, cols: int) -> list[slice]:
    step = max(1, _BLOCK_ELEMENTS // max(1, cols))
    return [slice(start, start + step) for start in range(0, rows, step)]


def softmax_lse(z: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Write softmax(z) row by row into out and return each row's log-sum-exp.

    torch's fused softmax is the fastest pass over the logits. The log-sum-exp
    follows from it stably: the largest probability is 1 / sum_c exp(z_c - max)
    >= 1 / C, so lse = max - log(max probability) never underflows.
    """
    torch.softmax(z, dim=1, out=out)
    return z.amax(dim=1) - out.amax(dim=1).log()


def logsumexp_rows(z: torch.Tensor) -> torch.Tensor:
    """log sum_c exp(z_{n,c}) for each row of a 2-D tensor, in blocks of rows."""
    blocks = row_blocks(*z.shape)
    if len(blocks) <= 1:
        return torch.logsumexp(z, dim=1)
    scratch = torch.empty_like(z[blocks[0]])
    lse = torch.empty(z.shape[0], dtype=z.dtype, device=z.device)
    for part in blocks:
        block = z[part]
        lse[part] = softmax_lse(block, scratch[: block.shape[0]])
    return lse


@dataclass
class _Rows:
    """Logits as (M, C) rows, the target to match, and the shape of 'none'."""

    logits: torch.Tensor
    target: torch.Tensor
    out_shape: torch.Size
    soft: bool


def _class_dim(input: torch.Tensor, dim: int) -> int:
    if input.dim() == 0:
        raise ValueError("input must have a class dimension, got a 0-d tensor")
    if input.dim() == 1:
        return 0
    if not -input.dim() <= dim < input.dim():
        raise IndexError(f"dim {dim} is out of range for input of {input.dim()} dimensions")
    return dim % input.dim()


def _as_rows(input: torch.Tensor, target: torch.Tensor, dim: int) -> _Rows:
    check_floating("input", input)
    check_tensor("target", target)
    class_dim = _class_dim(input, dim)
    num_classes = input.shape[class_dim]
    if num_classes == 0:
        raise ValueError(f"input has no classes along dim {class_dim}: shape {tuple(input.shape)}")
    out_shape = input.shape[:class_dim] + input.shape[class_dim + 1 :]
    logits = input.movedim(class_dim, -1).reshape(-1, num_classes)
    if target.is_floating_point():
        if target.shape != input.shape:
            raise ValueError(
                f"a probability target must have the input's shape {tuple(input.shape)}, "
                f"got target shape {tuple(target.shape)}"
            )
        rows = target.movedim(class_dim, -1).reshape(-1, num_classes)
        return _Rows(logits, rows, out_shape, soft=True)
    check_integer("target", target)
    if target.shape != out_shape:
        raise ValueError(
            f"a class-index target must have shape {tuple(out_shape)} (the input's shape "
            f"{tuple(input.shape)} without dim {class_dim}), got {tuple(target.shape)}"
        )
    return _Rows(logits, target.reshape(-1).long(), out_shape, soft=False)


def _check_index_target(target: torch.Tensor, num_classes: int, ignore_index: int) -> torch.Tensor:
    """Rows to keep; raises IndexError naming the first class index out of range."""
    keep = target != ignore_index
    bad = keep & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        value = int(target[bad][0])
        raise IndexError(
            f"target holds class index {value}, outside [0, {num_classes}) "
            f"(and not ignore_index={ignore_index})"
        )
    return keep


def _check_weight(weight: torch.Tensor | None, num_classes: int) -> torch.Tensor | None:
    if weight is None:
        return None
    check_floating("weight", weight)
    if weight.dim() != 1 or weight.numel() != num_classes:
        raise ValueError(
            f"weight must be a 1-D tensor of {num_classes} class weights, "
            f"got shape {tuple(weight.shape)}"
        )
    return weight


@dataclass
class _IndexTerms:
    """What the gradient of class-index cross-entropy needs, per row.

    With smoothing eps over C classes, row n puts weight
    a_{n,c} = keep_n [(1 - eps) w_{y_n} 1{c = y_n} + eps w_c / C] on -log q_{n,c};
    coef_y is the first part, spread the per-row eps keep_n / C (None when
    eps = 0), and total = sum_c a_{n,c}.
    """

    safe: torch.Tensor
    coef_y: torch.Tensor
    total: torch.Tensor
    spread: torch.Tensor | None

    def rows(self, part: slice) -> _IndexTerms:
        spread = None if self.spread is None else self.spread[part]
        return _IndexTerms(self.safe[part], self.coef_y[part], self.total[part], spread)


def _index_loss(z, lse, target, keep, weight, smoothing) -> tuple[torch.Tensor, _IndexTerms]:
    """Per-row loss sum_c a_{n,c} (lse_n - z_{n,c}) of float logits z (M, C)."""
    safe = torch.where(keep, target, 0)
    kept = keep.to(z.dtype)
    w_y = weight[safe].to(z.dtype) if weight is not None else 1.0
    coef_y = kept * (1.0 - smoothing) * w_y
    loss = coef_y * (lse - z.gather(1, safe[:, None]).squeeze(1))
    spread, total = None, coef_y
    if smoothing > 0:
        num_classes = z.shape[1]
        spread = kept * (smoothing / num_classes)
        if weight is not None:
            w = weight.to(z.dtype)
            loss = loss + spread * (lse * w.sum() - z @ w)
            total = coef_y + spread * w.sum()
        else:
            loss = loss + spread * (lse * num_classes - z.sum(dim=1))
            total = coef_y + spread * num_classes
    return loss, _IndexTerms(safe, coef_y, total, spread)


def _index_grad_(p, terms: _IndexTerms, weight, grad_loss) -> torch.Tensor:
    """Turn softmax probabilities p into d loss / d z = g_n (total_n p_n - a_n), in place."""
    p.mul_((grad_loss * terms.total)[:, None])
    if terms.spread is not None:
        spread = (grad_loss * terms.spread)[:, None]
        p.sub_(spread * weight.to(p.dtype) if weight is not None else spread)
    return p.scatter_add_(1, terms.safe[:, None], -(grad_loss * terms.coef_y)[:, None])


def index_loss_and_grad(z, target, keep, weight, smoothing, row_grad, out) -> torch.Tensor:
    """Per-row losses of float logits z (M, C), writing row_grad_n * d loss_n / d z
    into out, block by block while each block is in cache. ``out`` may be z
    itself: each block is then copied aside (in cache) before it is overwritten."""
    loss = torch.empty(z.shape[0], dtype=z.dtype, device=z.device)
    blocks = row_blocks(*z.shape)
    scratch = torch.empty_like(z[blocks[0]]) if out is z and blocks else None
    for part in blocks:
        block = z[part]
        if scratch is not None:
            block = scratch[: block.shape[0]].copy_(block)
        lse = softmax_lse(block, out[part])
        loss[part], terms = _index_loss(block, lse, target[part], keep[part], weight, smoothing)
        _index_grad_(out[part], terms, weight, row_grad[part])
    return loss


class _IndexCrossEntropy(torch.autograd.Function):
    """Smoothed, weighted cross-entropy for class-index targets.

    With ``scale`` None it returns the per-row losses ('none'), and the
    backward forms softmax - target again from the logits. With a scalar
    reduction it returns scale * sum of the losses; every row's gradient is
    then known up to one scalar, so when a gradient is needed it is formed
    during the forward, in the same pass, and the backward only multiplies it
    by the incoming scalar (or not at all when that is 1).
    """

    @staticmethod
    def forward(ctx, logits, target, keep, weight, smoothing, scale):
        z = logits.to(compute_dtype(logits))
        ctx.dtype = logits.dtype
        ctx.eager = scale is not None and ctx.needs_input_grad[0]
        if ctx.eager:
            grad = torch.empty_like(z)
            row_grad = torch.as_tensor(scale, dtype=z.dtype, device=z.device).expand(z.shape[0])
            loss = index_loss_and_grad(z, target, keep, weight, smoothing, row_grad, grad)
            ctx.save_for_backward(grad)
            return loss.sum() * scale
        loss, terms = _index_loss(z, logsumexp_rows(z), target, keep, weight, smoothing)
        ctx.save_for_backward(logits, weight)
        ctx.terms = terms
        return loss if scale is None else loss.sum() * scale

    @staticmethod
    @single_backward
    def backward(ctx, grad_loss):
        if ctx.eager:
            (grad,) = ctx.saved_tensors
            if grad.device.type != "cpu" or grad_loss.item() != 1.0:
                grad = grad * grad_loss.to(grad.dtype)
            return grad.to(ctx.dtype), None, None, None, None, None
        logits, weight = ctx.saved_tensors
        z = logits.to(compute_dtype(logits))
        grad = torch.empty_like(z)
        for part in row_blocks(*z.shape):
            softmax_lse(z[part], grad[part])
            _index_grad_(grad[part], ctx.terms.rows(part), weight, grad_loss[part])
        return grad.to(logits.dtype), None, None, None, None, None


class _SoftCrossEntropy(torch.autograd.Function):
    """Per-row cross-entropy against class probabilities p, optionally smoothed
    (p <- (1 - eps) p + eps / C) and class-weighted; gradients to both sides."""

    @staticmethod
    def forward(ctx, logits, target, weight, smoothing):
        z = logits.to(compute_dtype(logits))
        lse = logsumexp_rows(z)
        coef = target.to(z.dtype)
        if smoothing > 0:
            coef = coef * (1.0 - smoothing) + smoothing / z.shape[1]
        if weight is not None:
            coef = coef * weight.to(z.dtype)
        loss = ((lse[:, None] - z) * coef).sum(dim=1)
        ctx.save_for_backward(logits, target, lse, weight)
        ctx.smoothing = smoothing
        return loss

    @staticmethod
    @single_backward
    def backward(ctx, grad_loss):
        logits, target, lse, weight = ctx.saved_tensors
        smoothing = ctx.smoothing
        z = logits.to(lse.dtype)
        w = weight.to(z.dtype) if weight is not None else 1.0
        coef = target.to(z.dtype)
        if smoothing > 0:
            coef = coef * (1.0 - smoothing) + smoothing / z.shape[1]
        coef = coef * w
        g = grad_loss[:, None]
        grad_logits = None
        if ctx.needs_input_grad[0]:
            softmax = (z - lse[:, None]).exp_()
            grad_logits = (g * (coef.sum(dim=1, keepdim=True) * softmax - coef)).to(logits.dtype)
        grad_target = None
        if ctx.needs_input_grad[1]:
            grad_target = (g * (1.0 - smoothing) * w * (lse[:, None] - z)).to(target.dtype)
        return grad_logits, grad_target, None, None


def cross_entropy(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    *,
    dim: int = 1,
) -> torch.Tensor:
    """Softmax cross-entropy between logits and a target, as in the lecture:

    l_n = -w_{y_n} log( exp(x_{n,y_n}) / sum_c exp(x_{n,c}) ) * 1{y_n != ignore_index}.

    Shapes: input (C), (N, C) or (N, C, d1, ..., dk) with the classes along
    ``dim`` (default 1, torch's layout; ``dim=-1`` takes (B, T, V) language-model
    logits without a transpose). The target is either class indices (any integer
    dtype, the input's shape without ``dim``) or class probabilities (the input's
    shape). ``label_smoothing`` eps mixes the target with the uniform
    distribution: (1 - eps) target + eps / C.

    'mean' follows torch exactly: with class indices it divides by
    sum_n w_{y_n} over the rows not ignored; with probabilities, by the number
    of rows. Deviation from torch: when that denominator is 0 (an empty batch,
    or every target ignored) the loss is 0 with zero gradients, not NaN.

    The gradient, softmax(x) - target, is derived by hand and computed in one
    pass (during the forward for 'mean' and 'sum', while the logits are in
    cache); it supports one backward (no double backward). bfloat16/float16
    inputs are accumulated in float32.
    """
    check_reduction(reduction)
    check_number("label_smoothing", label_smoothing, low=0.0, high=1.0)
    rows = _as_rows(input, target, dim)
    num_classes = rows.logits.shape[1]
    weight = _check_weight(weight, num_classes)
    if rows.soft:
        loss = _SoftCrossEntropy.apply(rows.logits, rows.target, weight, float(label_smoothing))
        return reduce(loss.reshape(rows.out_shape), reduction).to(input.dtype)
    keep = _check_index_target(rows.target, num_classes, ignore_index)
    scale = None
    if reduction != "none":
        denominator = _kept_weight(rows.target, keep, weight, compute_dtype(input))
        scale = reduction_scale(reduction, len(keep), denominator=denominator)
    loss = _IndexCrossEntropy.apply(
        rows.logits, rows.target, keep, weight, float(label_smoothing), scale
    )
    return (loss if scale is not None else loss.reshape(rows.out_shape)).to(input.dtype)


def _kept_weight(
    target: torch.Tensor, keep: torch.Tensor, weight: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    """sum_n w_{y_n} over the rows not ignored: the divisor of a weighted mean."""
    if weight is None:
        return keep.sum().to(dtype)
    return torch.where(keep, weight.to(dtype)[torch.where(keep, target, 0)], 0).sum()


def nll_loss(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> torch.Tensor:
    """Negative log-likelihood of log-probabilities,
    l_n = -w_{y_n} x_{n,y_n} * 1{y_n != ignore_index}.

    Shapes and the weighted 'mean' follow ``torch.nn.functional.nll_loss``
    (classes along dim 1). Deviation, as in :func:`cross_entropy`: a mean over
    no kept target is 0, not NaN.
    """
    check_reduction(reduction)
    rows = _as_rows(input, target, 1)
    if rows.soft:
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    num_classes = rows.logits.shape[1]
    weight = _check_weight(weight, num_classes)
    keep = _check_index_target(rows.target, num_classes, ignore_index)
    safe = torch.where(keep, rows.target, 0)
    picked = rows.logits.gather(1, safe[:, None]).squeeze(1)
    w_y = weight.to(picked.dtype)[safe] if weight is not None else 1.0
    loss = torch.where(keep, -w_y * picked, 0)
    denominator = _kept_weight(rows.target, keep, weight, loss.dtype)
    return reduce(loss.reshape(rows.out_shape), reduction, denominator=denominator)
