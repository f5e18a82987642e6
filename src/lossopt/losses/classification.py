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

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from lossopt import _compat, _policy
from lossopt._checks import check_floating, check_integer, check_number, check_tensor
from lossopt.losses._reduction import (
    _HALF,
    MEAN,
    REDUCTIONS,
    TORCH_REDUCTION,
    check_reduction,
    compute_dtype,
    mean_over,
    reduction_scale,
)
from lossopt.losses._route import (
    DEVICE,
    OWN,
    autocast_on,
    direct,
    direct_call,
    regrad,
    route,
    traced,
)


def row_blocks(rows: int, cols: int) -> list[slice]:
    """Blocks of rows small enough that a block of logits and its
    probabilities stay in cache (:data:`lossopt._policy.LOSS_BLOCK_ELEMENTS`)."""
    step = max(1, _policy.LOSS_BLOCK_ELEMENTS // max(1, cols))
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


def _class_dim(input: torch.Tensor, dim: int) -> int:
    if input.dim() == 0:
        raise ValueError("input must have a class dimension, got a 0-d tensor")
    if input.dim() == 1:
        return 0
    if not -input.dim() <= dim < input.dim():
        raise IndexError(f"dim {dim} is out of range for input of {input.dim()} dimensions")
    return dim % input.dim()


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


def index_terms(target, keep, weight, smoothing, num_classes, dtype) -> _IndexTerms:
    """The per-row coefficients a_{n,c} of :class:`_IndexTerms`."""
    safe = torch.where(keep, target, 0)
    kept = keep.to(dtype)
    w_y = weight[safe].to(dtype) if weight is not None else 1.0
    coef_y = kept * (1.0 - smoothing) * w_y
    spread, total = None, coef_y
    if smoothing > 0:
        spread = kept * (smoothing / num_classes)
        w_sum = weight.to(dtype).sum() if weight is not None else num_classes
        total = coef_y + spread * w_sum
    return _IndexTerms(safe, coef_y, total, spread)


def _index_loss(z, lse, terms: _IndexTerms, weight) -> torch.Tensor:
    """Per-row loss sum_c a_{n,c} (lse_n - z_{n,c}) of float logits z (M, C)."""
    loss = terms.coef_y * (lse - z.gather(1, terms.safe[:, None]).squeeze(1))
    if terms.spread is not None:
        if weight is not None:
            w = weight.to(z.dtype)
            loss = loss + terms.spread * (lse * w.sum() - z @ w)
        else:
            loss = loss + terms.spread * (lse * z.shape[1] - z.sum(dim=1))
    return loss


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
        terms = index_terms(target[part], keep[part], weight, smoothing, z.shape[1], z.dtype)
        loss[part] = _index_loss(block, lse, terms, weight)
        _index_grad_(out[part], terms, weight, row_grad[part])
    return loss


class _IndexCrossEntropy(torch.autograd.Function):
    """Smoothed, weighted cross-entropy for class-index targets, lossopt's path.

    With ``scale`` None it returns the per-row losses ('none'), and the
    backward forms softmax - target again from the logits. With a scalar
    reduction it returns scale * sum of the losses; every row's gradient is
    then known up to one scalar, so when ``eager`` (a gradient will be needed)
    it is formed during the forward, in the same pass, returned as a second,
    non-differentiable output, and the backward only multiplies it by the
    incoming scalar. A backward asked for a graph (double backward) takes the
    gradient of :func:`_index_loss` by autograd instead.
    """

    @staticmethod
    def forward(logits, target, keep, weight, smoothing, scale, eager):
        z = logits.to(compute_dtype(logits))
        if eager:
            grad = torch.empty_like(z)
            row_grad = torch.as_tensor(scale, dtype=z.dtype, device=z.device).expand(z.shape[0])
            loss = index_loss_and_grad(z, target, keep, weight, smoothing, row_grad, grad)
            return loss.sum() * scale, grad
        terms = index_terms(target, keep, weight, smoothing, z.shape[1], z.dtype)
        loss = _index_loss(z, logsumexp_rows(z), terms, weight)
        return (loss if scale is None else loss.sum() * scale), z.new_empty(0)

    @staticmethod
    def setup_context(ctx, inputs, output):
        logits, target, keep, weight, smoothing, scale, eager = inputs
        ctx.mark_non_differentiable(output[1])
        # The second output is never differentiated: no N x C zeros for it.
        ctx.set_materialize_grads(False)
        scale_t = scale if isinstance(scale, torch.Tensor) else None
        # The gradient formed in the forward is saved like every tensor the
        # backward needs, so saved-tensor hooks (save_on_cpu, offloading) see it.
        ctx.save_for_backward(logits, target, keep, weight, scale_t, output[1])
        # It is handed over once: autograd may make it the caller's .grad,
        # which the caller may change in place; a retained graph's second
        # backward forms it again.
        ctx.formed = eager
        ctx.smoothing = smoothing
        ctx.scale = None if scale is None or scale_t is not None else scale

    @staticmethod
    def backward(ctx, grad_loss, _):
        if grad_loss is None:  # only the second output was reached
            return (None,) * 7
        logits, target, keep, weight, scale, grad = ctx.saved_tensors
        if not ctx.formed:
            grad = None
        ctx.formed = False
        if scale is None:
            scale = ctx.scale
        dtype = compute_dtype(logits)
        terms = index_terms(target, keep, weight, ctx.smoothing, logits.shape[1], dtype)
        rows = grad_loss if scale is None else (grad_loss * scale).expand(logits.shape[0])
        if torch.is_grad_enabled():  # create_graph=True

            def per_row(x):
                z = x.to(dtype)
                return _index_loss(z, torch.logsumexp(z, 1), terms, weight)

            return (*regrad(per_row, (logits,), rows), None, None, None, None, None, None)
        if grad is not None:
            # Usually the incoming gradient is 1 and the formed gradient is the
            # answer, handed over without a copy. A retained graph's second
            # backward recomputes it, below.
            unit = grad.device.type == "cpu" and grad_loss.item() == 1.0
            out = hand_over(grad) if unit else grad * grad_loss.to(grad.dtype)
        else:
            z = logits.to(dtype)
            out = torch.empty_like(z)
            for part in row_blocks(*z.shape):
                softmax_lse(z[part], out[part])
                _index_grad_(out[part], terms.rows(part), weight, rows[part])
        return out.to(logits.dtype), None, None, None, None, None, None


def hand_over(formed: torch.Tensor) -> torch.Tensor:
    """A gradient formed in the forward and saved for the backward, as the
    backward's result: the same memory under a tensor of its own. The caller
    may change its .grad in place (``zero_()``); the saved tensor's version
    then stays as it was, so a retained graph's second backward still
    unpacks what it saved (and forms the gradient anew)."""
    return formed.new_empty(0).set_(formed)


def _plain_shapes(input, target, dim) -> bool:
    """Whether :func:`_checked_shapes` passes and finds classes along dim 1
    and class indices: the common case, (N, C) logits and int64 indices, in
    one expression."""
    return (
        type(dim) is int
        and dim == 1
        and isinstance(input, torch.Tensor)
        and isinstance(target, torch.Tensor)
        and target.dtype == torch.long
        and input.dim() == 2
        and input.is_floating_point()
        and input.shape[1] > 0
        and target.shape == input.shape[:1]
    )


def _check_shapes(input, target, dim) -> tuple[int, bool]:
    """The class dimension and whether the target holds probabilities, from
    metadata alone (no pass over the data)."""
    return (1, False) if _plain_shapes(input, target, dim) else _checked_shapes(input, target, dim)


def _checked_shapes(input, target, dim) -> tuple[int, bool]:
    """:func:`_check_shapes` by named checks."""
    check_floating("input", input)
    check_tensor("target", target)
    class_dim = _class_dim(input, dim)
    num_classes = input.shape[class_dim]
    if num_classes == 0:
        raise ValueError(f"input has no classes along dim {class_dim}: shape {tuple(input.shape)}")
    if target.is_floating_point():
        if target.shape != input.shape:
            raise ValueError(
                f"a probability target must have the input's shape {tuple(input.shape)}, "
                f"got target shape {tuple(target.shape)}"
            )
        return class_dim, True
    check_integer("target", target)
    out_shape = input.shape[:class_dim] + input.shape[class_dim + 1 :]
    if target.shape != out_shape:
        raise ValueError(
            f"a class-index target must have shape {tuple(out_shape)} (the input's shape "
            f"{tuple(input.shape)} without dim {class_dim}), got {tuple(target.shape)}"
        )
    return class_dim, False


def _torch_layout(input, target, class_dim, soft):
    """Input and target in torch's layout: classes along dim 1 (or 0 for one
    sample), class indices as int64."""
    if class_dim != min(1, input.dim() - 1):
        input = input.movedim(class_dim, 1)
        if soft:
            target = target.movedim(class_dim, 1)
    if not soft and target.dtype != torch.long:
        target = target.long()
    return input, target


class _Plan(NamedTuple):
    """How a classification loss call runs, decided once, before any kernel.

    ``where`` is :func:`route`'s answer. ``input``, ``target`` and ``weight``
    are as that path takes them: for torch's kernel in its layout (classes
    along dim 1, int64 indices), half precision raised to float32 outside
    autocast; for lossopt's (OWN), the logits as (M, C) rows and the class
    indices flat beside them. ``result`` is the dtype to return in (None: the
    kernel's); ``check_indices``, whether lossopt's named index check runs
    before torch's kernel (an accelerator with sync_checks on)."""

    where: str
    input: torch.Tensor
    target: torch.Tensor
    weight: torch.Tensor | None
    soft: bool
    result: torch.dtype | None = None
    check_indices: bool = False


def _plan(loss: str | None, input, target, weight, reduction, dim) -> _Plan:
    """Check a call by name and decide its path; ``loss`` names lossopt's
    kernel to consider (None: there is none)."""
    if reduction not in REDUCTIONS:
        check_reduction(reduction)
    class_dim, soft = _check_shapes(input, target, dim)
    num_classes = input.shape[class_dim]
    if weight is not None:
        _check_weight(weight, num_classes)
    where = route(None if soft else loss, input.numel(), input, target, weight)
    if where == OWN:
        rows = input.movedim(class_dim, -1).reshape(-1, num_classes)
        return _Plan(OWN, rows, target.reshape(-1).long(), weight, soft)
    return torch_plan(where, *_torch_layout(input, target, class_dim, soft), weight)


def torch_plan(where: str, input, target, weight) -> _Plan:
    """The plan of a call to torch's kernel, on input and target in its layout."""
    soft = target.is_floating_point()
    x, result = input, None
    if input.dtype in _HALF or (weight is not None and weight.dtype != input.dtype):
        if not autocast_on(input.device):  # under autocast, torch's policy decides
            if input.dtype in _HALF:
                x, result = input.float(), input.dtype  # half precision accumulates in float32
            if weight is not None:
                weight = weight.to(x.dtype)
    check = not soft and where == DEVICE and _policy.sync_checks() and not traced(input, target)
    return _Plan(where, x, target, weight, soft, result, check)


def _with_torch(kernel, plan: _Plan, ignore_index, reduction, **options):
    """torch's kernel under lossopt's rules, as ``plan`` decided.

    A class index out of range raises lossopt's IndexError naming it (on the
    CPU, where torch raises, the check costs nothing until then). A 'mean' over
    no kept target is 0 with zero gradients, not NaN: on the CPU by reading the
    result once (free there); on an accelerator, and under transforms, by
    masking the result where no target is kept (three small operations, no
    host synchronisation).
    """
    x, target, weight = plan.input, plan.target, plan.weight
    index = not plan.soft
    if plan.check_indices:
        _check_index_target(target.reshape(-1), _classes(x), ignore_index)

    def call(reduction):
        try:
            return kernel(
                x, target, weight, ignore_index=ignore_index, reduction=reduction, **options
            )
        except IndexError:
            if index:
                _check_index_target(target.reshape(-1), _classes(x), ignore_index)
            raise

    if reduction != "mean":
        loss = call(reduction)
    elif not index:  # the mean over rows: 0 for no row
        loss = call("mean") if x.numel() else mean_over(call("sum"), 0)
    elif plan.where != DEVICE:
        loss = call("mean")
        # A read of the CPU result (tolist: no dispatch, the cheapest read).
        if math.isnan(loss.tolist()):  # no kept target, or a NaN in the input
            flat = target.reshape(-1)
            if _kept_weight(flat, flat != ignore_index, weight, x.dtype).item() == 0:
                loss = mean_over(call("sum"), 0)
    else:  # no read of a device value: the mean of nothing (0 / 0) is masked
        flat = target.reshape(-1)
        if weight is None:
            nothing = (flat == ignore_index).all()
        else:
            nothing = _kept_weight(flat, flat != ignore_index, weight, x.dtype) == 0
        loss = torch.where(nothing, 0.0, call("mean"))
    return loss if plan.result is None else loss.to(plan.result)


def _classes(input: torch.Tensor) -> int:
    return input.shape[1 if input.dim() > 1 else 0]


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

    Two implementations give the same numbers. Below the crossover measured in
    :mod:`lossopt._policy` (and on devices not measured, and whenever
    torch.func, torch.compile, export or autocast is at work) it calls torch's
    fused kernel, which is at the memory limit there and composes as torch's
    own. Above it, for class indices, the gradient softmax(x) - target is
    derived by hand and formed during the forward while the logits are in
    cache, and no N x C log-probabilities are kept; double backward recomputes
    it with autograd. bfloat16/float16 inputs are accumulated in float32
    (under autocast, torch's policy applies: float32 compute and result).
    A small call on plain CPU tensors goes straight to torch's kernel, and
    lossopt's checks run only if torch refuses the input (then they name the
    culprit) or a mean comes out NaN (then the rule above applies).
    Class indices on an accelerator are checked by torch's kernel there, not
    by a host synchronisation; ``lossopt.sync_checks(True)`` (or the
    environment's LOSSOPT_SYNC_CHECKS=1) turns on lossopt's named checks.
    """
    code = TORCH_REDUCTION.get(reduction) if type(reduction) is str else None
    if (
        code is not None
        and dim == 1
        and (weight is None or type(weight) is torch.Tensor)
        and type(label_smoothing) is float
        and 0.0 <= label_smoothing <= 1.0
        and direct("cross_entropy", input, target)
        and input.dim() > 1  # torch's kernel reads an unbatched (C,) its own way
    ):
        loss = direct_call(
            _compat.cross_entropy_loss,
            code == MEAN,
            input,
            target,
            weight,
            code,
            ignore_index,
            label_smoothing,
        )
        if loss is not None:
            return loss
    plan = _plan("cross_entropy", input, target, weight, reduction, dim)
    if plan.soft and isinstance(ignore_index, int) and ignore_index >= 0:  # as torch refuses
        raise ValueError(
            f"ignore_index applies to class indices, not to a probability target: "
            f"got ignore_index={ignore_index}"
        )
    if type(label_smoothing) is not float or not 0.0 <= label_smoothing <= 1.0:
        check_number("label_smoothing", label_smoothing, low=0.0, high=1.0)
    smoothing = float(label_smoothing)
    if plan.where != OWN:
        return _with_torch(
            F.cross_entropy, plan, ignore_index, reduction, label_smoothing=smoothing
        )
    # lossopt's one-pass kernel, on the logits as (M, C) rows.
    logits, flat = plan.input, plan.target
    keep = _check_index_target(flat, logits.shape[1], ignore_index)
    scale = None
    if reduction != "none":
        denominator = _kept_weight(flat, keep, weight, compute_dtype(input))
        scale = reduction_scale(reduction, len(keep), denominator=denominator)
    eager = scale is not None and input.requires_grad and torch.is_grad_enabled()
    loss, _ = _IndexCrossEntropy.apply(logits, flat, keep, weight, smoothing, scale, eager)
    return (loss if scale is not None else loss.reshape(target.shape)).to(input.dtype)


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
    (classes along dim 1), whose kernel it calls: one gather, at the memory
    limit. Deviation, as in :func:`cross_entropy`: a mean over no kept target
    is 0, not NaN.
    """
    code = TORCH_REDUCTION.get(reduction) if type(reduction) is str else None
    if (
        code is not None
        and (weight is None or type(weight) is torch.Tensor)
        and direct(None, input, target)
        and input.dim() > 1  # torch's kernel reads an unbatched (C,) its own way
    ):
        loss = direct_call(
            _compat.nll_loss_nd, code == MEAN, input, target, weight, code, ignore_index
        )
        if loss is not None:
            return loss
    plan = _plan(None, input, target, weight, reduction, 1)
    if plan.soft:
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")
    return _with_torch(F.nll_loss, plan, ignore_index, reduction)
