"""Cross-entropy of a linear layer's output, without ever holding the logits.

    loss = cross_entropy(h W^T + b, y)

At a language model's vocabulary (N = 8192 tokens, V = 128256 classes) the
logits alone are 4 GB in float32, and autograd keeps them and their gradient.
Here rows are processed in chunks (256 rows once V is large: logits a
fraction of W's own size), and the gradients with respect to h, W and b are
formed chunk by chunk from the same one-pass softmax-minus-target as
:func:`cross_entropy`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lossopt import _compat, _policy
from lossopt._checks import check_floating, check_integer, check_number
from lossopt.losses._reduction import (
    MEAN,
    TORCH_REDUCTION,
    check_reduction,
    compute_dtype,
    reduction_scale,
)
from lossopt.losses._route import OWN, autocast_on, direct, direct_call, regrad, route
from lossopt.losses.classification import (
    _check_index_target,
    _check_weight,
    _index_loss,
    _kept_weight,
    _torch_layout,
    _with_torch,
    hand_over,
    index_loss_and_grad,
    index_terms,
    logsumexp_rows,
    torch_plan,
)


def _chunk_rows(num_classes: int) -> int:
    return max(_policy.LINEAR_MIN_CHUNK_ROWS, _policy.LINEAR_CHUNK_ELEMENTS // max(1, num_classes))


class _LinearCrossEntropy(torch.autograd.Function):
    """cross_entropy(h W^T + b, y) computed in row chunks.

    With ``scale`` None it returns the per-row losses ('none') and the backward
    recomputes each chunk's logits. With a scalar reduction and ``eager`` (a
    gradient will be needed) it returns scale * sum of the losses and forms the
    gradients during the forward, already scaled, so the logits are computed
    once and the backward only multiplies them by the incoming gradient (or
    not at all when it is 1). They are handed over once: a retained graph's
    second backward recomputes them. A backward asked for a graph (double
    backward) differentiates the plain formula by autograd instead.
    """

    @staticmethod
    def forward(h, w, b, target, keep, class_weight, smoothing, scale, eager, need):
        compute = compute_dtype(h)
        rows = _chunk_rows(w.shape[0])
        if eager:
            row_scale = torch.as_tensor(scale, dtype=compute, device=h.device).expand(h.shape[0])
        grads = _Grads(h, w, b, need) if eager else None
        losses = torch.empty(h.shape[0], dtype=compute, device=h.device)
        logits = _ChunkLogits(h, w, b, rows, compute)
        for part in logits.parts():
            z = logits(part)
            if eager:
                args = (target[part], keep[part], class_weight, smoothing, row_scale[part])
                losses[part] = index_loss_and_grad(z, *args, out=z)  # z becomes dz
                grads.add(part, z.to(h.dtype), h, w)
            else:
                terms = index_terms(
                    target[part], keep[part], class_weight, smoothing, *z.shape[1:], z.dtype
                )
                losses[part] = _index_loss(z, logsumexp_rows(z), terms, class_weight)
        out = losses if scale is None else losses.sum() * scale
        formed = (grads.h, grads.w, grads.b) if eager else (None,) * 3
        # The gradients as outputs of their own (never differentiated), an
        # empty tensor for each one not formed.
        return out, *(h.new_empty(0) if g is None else g for g in formed)

    @staticmethod
    def setup_context(ctx, inputs, output):
        h, w, b, target, keep, class_weight, smoothing, scale, eager, need = inputs
        formed = output[1:]
        ctx.mark_non_differentiable(*formed)
        ctx.set_materialize_grads(False)  # no zeros for the formed gradients' outputs
        scale_t = scale if isinstance(scale, torch.Tensor) else None
        # The formed gradients are saved like every tensor the backward needs,
        # so saved-tensor hooks (save_on_cpu, offloading) see them; they are
        # handed over once (see the class docstring).
        ctx.save_for_backward(h, w, b, target, keep, class_weight, scale_t, *formed)
        ctx.formed = need if eager else None
        ctx.scale = None if scale is None or scale_t is not None else scale
        ctx.smoothing, ctx.rows = smoothing, _chunk_rows(w.shape[0])

    @staticmethod
    def backward(ctx, grad_losses, *_):
        if grad_losses is None:  # only the formed gradients' outputs were reached
            return (None,) * 10
        h, w, b, target, keep, class_weight, scale, *formed = ctx.saved_tensors
        if scale is None:
            scale = ctx.scale
        done, ctx.formed = ctx.formed, None
        rows = grad_losses if scale is None else (grad_losses * scale).expand(h.shape[0])
        nones = (None,) * 7
        if torch.is_grad_enabled():  # create_graph=True
            terms = index_terms(
                target, keep, class_weight, ctx.smoothing, w.shape[0], compute_dtype(h)
            )

            def per_row(h, w, b=None):
                z = F.linear(h, w, b).to(compute_dtype(h))
                return _index_loss(z, torch.logsumexp(z, 1), terms, class_weight)

            inputs = (h, w) if b is None else (h, w, b)
            grads = regrad(per_row, inputs, rows)
            return (*grads, *(None,) * (3 - len(grads)), *nones)
        if done is not None:
            unit = grad_losses.device.type == "cpu" and grad_losses.item() == 1.0
            g = (x if needed else None for x, needed in zip(formed, done, strict=True))
            out = tuple(
                x if x is None else hand_over(x) if unit else x * grad_losses.to(x.dtype) for x in g
            )
        else:
            need = ctx.needs_input_grad[:3]
            grads = _Grads(h, w, b, need)
            logits = _ChunkLogits(h, w, b, ctx.rows, rows.dtype)
            for part in logits.parts():
                z = logits(part)
                args = (target[part], keep[part], class_weight, ctx.smoothing, rows[part])
                index_loss_and_grad(z, *args, out=z)  # z becomes dz
                grads.add(part, z.to(h.dtype), h, w)
            out = (grads.h, grads.w, grads.b)
        return (*out, *nones)


class _ChunkLogits:
    """h W^T + b for one chunk of rows at a time, always into the same buffer:
    a fresh chunk per step would leave the C allocator holding several."""

    def __init__(self, h, w, b, rows, compute):
        self.h, self.w, self.b, self.rows = h, w, b, rows
        size = (min(rows, h.shape[0]), w.shape[0])
        self.buffer = torch.empty(size, dtype=h.dtype, device=h.device)
        self.compute = None
        if compute != h.dtype:
            self.compute = torch.empty(size, dtype=compute, device=h.device)

    def parts(self) -> list[slice]:
        return [slice(s, s + self.rows) for s in range(0, self.h.shape[0], self.rows)]

    def __call__(self, part: slice) -> torch.Tensor:
        h = self.h[part]
        out = self.buffer[: h.shape[0]]
        if self.b is not None:
            torch.addmm(self.b, h, self.w.T, out=out)
        else:
            torch.mm(h, self.w.T, out=out)
        return out if self.compute is None else self.compute[: h.shape[0]].copy_(out)


class _Grads:
    """Gradients with respect to h, W and b, accumulated chunk by chunk."""

    def __init__(self, h, w, b, need):
        self.h = torch.zeros_like(h) if need[0] else None
        self.w = torch.zeros_like(w) if need[1] else None
        self.b = torch.zeros_like(b) if b is not None and need[2] else None

    def add(self, part, dz, h, w):
        if self.h is not None:
            torch.mm(dz, w, out=self.h[part])
        if self.w is not None:
            self.w.addmm_(dz.T, h[part])
        if self.b is not None:
            self.b.add_(dz.sum(dim=0))


def _linear_then_cross_entropy(input, weight, bias, target, code, ignore_index, smoothing):
    """torch's two kernels, for a small call that goes straight to them."""
    logits = _compat.linear(input, weight, bias)
    return _compat.cross_entropy_loss(logits, target, None, code, ignore_index, smoothing)


def linear_cross_entropy(
    input: torch.Tensor,
    linear_weight: torch.Tensor,
    target: torch.Tensor,
    *,
    linear_bias: torch.Tensor | None = None,
    weight: torch.Tensor | None = None,
    reduction: str = "mean",
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """``cross_entropy(input @ linear_weight.T + linear_bias, target, ...)`` in
    bounded memory.

    input (..., H), linear_weight (V, H), linear_bias (V), target (...) class
    indices; ``weight`` is the class weight, as in :func:`cross_entropy`, whose
    rules (weighted mean, ignore_index, label smoothing, a mean over no kept
    target being 0) apply unchanged. The N x V logits never exist at once, so
    N x V may exceed 2^31 elements. The chunk size is chosen from V. Gradients
    flow to input, linear_weight and linear_bias; double backward gives exact
    second derivatives (recomputed by autograd), and a retained graph
    backpropagates twice.

    Below the crossover of :mod:`lossopt._policy` (where the logits are small
    and torch's kernels are at the limit), on devices not measured, and under
    torch.func, torch.compile, export and autocast, it is
    ``cross_entropy(F.linear(input, linear_weight, linear_bias), target)`` on
    torch's kernels; under autocast a float32 head then meets half-precision
    activations exactly as ``F.linear`` does.
    """
    code = TORCH_REDUCTION.get(reduction) if type(reduction) is str else None
    if (
        code is not None
        and weight is None
        and type(label_smoothing) is float
        and 0.0 <= label_smoothing <= 1.0
        and direct(None, input, linear_weight)  # first: both are plain tensors after it
        and type(target) is torch.Tensor
        and target.dtype == torch.long
        and input.dim() == 2  # (N, H) rows; others take the full path's reshape
        and linear_weight.dim() == 2
        and (
            linear_bias is None
            or (
                type(linear_bias) in (torch.Tensor, torch.nn.Parameter)
                and linear_bias.shape == linear_weight.shape[:1]
            )
        )
        and 0
        < input.shape[0] * linear_weight.shape[0]  # no rows or no classes: the full path's rule
        < _policy.LOSS_CROSSOVER["linear_cross_entropy"]["cpu"]
    ):
        loss = direct_call(
            _linear_then_cross_entropy,
            code == MEAN,
            input,
            linear_weight,
            linear_bias,
            target,
            code,
            ignore_index,
            label_smoothing,
        )
        if loss is not None:
            return loss
    check_reduction(reduction)
    check_number("label_smoothing", label_smoothing, low=0.0, high=1.0)
    check_floating("input", input)
    check_floating("linear_weight", linear_weight)
    check_integer("target", target)
    if input.dim() < 1 or linear_weight.dim() != 2 or input.shape[-1] != linear_weight.shape[1]:
        raise ValueError(
            f"input (..., H) and linear_weight (V, H) must share H, got shapes "
            f"{tuple(input.shape)} and {tuple(linear_weight.shape)}"
        )
    for name, tensor in (("linear_weight", linear_weight), ("linear_bias", linear_bias)):
        if tensor is not None and tensor.dtype != input.dtype and not autocast_on(input.device):
            raise TypeError(
                f"{name} has dtype {tensor.dtype}, input has {input.dtype}; they must match"
            )
    num_classes = linear_weight.shape[0]
    if num_classes == 0:
        raise ValueError(f"linear_weight has no classes: shape {tuple(linear_weight.shape)}")
    if linear_bias is not None:
        check_floating("linear_bias", linear_bias)
        if linear_bias.shape != (num_classes,):
            raise ValueError(
                f"linear_bias must have shape ({num_classes},), got {tuple(linear_bias.shape)}"
            )
    if target.shape != input.shape[:-1]:
        raise ValueError(
            f"target must have shape {tuple(input.shape[:-1])} (input without its last dim), "
            f"got {tuple(target.shape)}"
        )
    class_weight = _check_weight(weight, num_classes)
    h = input.reshape(target.numel(), input.shape[-1])
    flat = target.reshape(-1)
    smoothing = float(label_smoothing)
    where = route(
        "linear_cross_entropy", h.shape[0] * num_classes, input, linear_weight, linear_bias, target
    )
    if where != OWN:
        logits, flat = _torch_layout(F.linear(h, linear_weight, linear_bias), flat, 1, False)
        plan = torch_plan(where, logits, flat, class_weight)
        loss = _with_torch(
            F.cross_entropy, plan, ignore_index, reduction, label_smoothing=smoothing
        )
        return loss if reduction != "none" else loss.reshape(target.shape)
    flat = flat.long()
    keep = _check_index_target(flat, num_classes, ignore_index)
    compute = compute_dtype(input)
    denominator = _kept_weight(flat, keep, class_weight, compute)
    scale = None
    if reduction != "none":
        scale = reduction_scale(reduction, len(keep), denominator=denominator)
    need = tuple(
        t is not None and t.requires_grad and torch.is_grad_enabled()
        for t in (input, linear_weight, linear_bias)
    )
    eager = scale is not None and any(need)
    loss, *_ = _LinearCrossEntropy.apply(
        h, linear_weight, linear_bias, flat, keep, class_weight, smoothing, scale, eager, need
    )
    return (loss if scale is not None else loss.reshape(target.shape)).to(input.dtype)
