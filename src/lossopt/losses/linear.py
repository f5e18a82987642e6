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

from lossopt._checks import check_floating, check_integer, check_number
from lossopt.losses._autograd import single_backward
from lossopt.losses._reduction import check_reduction, compute_dtype, reduction_scale
from lossopt.losses.classification import (
    _check_index_target,
    _check_weight,
    _index_loss,
    _kept_weight,
    index_loss_and_grad,
    index_terms,
    logsumexp_rows,
)

# Logit elements per chunk: 4M float32 values (16 MB), and at least 256 rows.
# Each chunk reads W twice and reads and writes W's gradient once: with fewer
# rows that W-sized traffic, not the arithmetic, sets the pace (at N=8192,
# H=1024, V=128256, 64-row chunks took 60-76 s against 47-48 s for 256 rows,
# whose 131 MB of logits are a quarter of W).
CHUNK_ELEMENTS = 1 << 22
MIN_CHUNK_ROWS = 256


def _chunk_rows(num_classes: int) -> int:
    return max(MIN_CHUNK_ROWS, CHUNK_ELEMENTS // max(1, num_classes))


class _LinearCrossEntropy(torch.autograd.Function):
    """cross_entropy(h W^T + b, y) computed in row chunks.

    With ``scale`` None it returns the per-row losses ('none') and the backward
    recomputes each chunk's logits. With a scalar reduction it returns
    scale * sum of the losses; the gradients are then formed during the
    forward, already scaled, so the logits are computed once and the backward
    only multiplies them by the incoming gradient (or not at all when it is 1).
    """

    @staticmethod
    def forward(ctx, h, w, b, target, keep, class_weight, smoothing, scale):
        compute = compute_dtype(h)
        rows = _chunk_rows(w.shape[0])
        need = ctx.needs_input_grad[:3]
        eager = scale is not None and any(need)
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
        # The precomputed gradients are saved like any tensor, so autograd frees
        # them after the backward unless retain_graph=True: a second backward
        # then fails with torch's own error instead of reusing stale memory.
        done = (grads.h, grads.w, grads.b) if eager else (None, None, None)
        ctx.save_for_backward(h, w, b, target, keep, class_weight, *done)
        ctx.smoothing, ctx.rows, ctx.eager = smoothing, rows, eager
        return losses if scale is None else losses.sum() * scale

    @staticmethod
    @single_backward
    def backward(ctx, grad_losses):
        h, w, b, target, keep, class_weight, *done = ctx.saved_tensors
        if ctx.eager:
            # grad_losses is the gradient of the scalar loss: usually 1, and
            # then the saved gradients are returned as they are, with no copy.
            unit = grad_losses.device.type == "cpu" and grad_losses.item() == 1.0
            out = tuple(g if g is None or unit else g * grad_losses.to(g.dtype) for g in done)
        else:
            need = ctx.needs_input_grad[:3]
            grads = _Grads(h, w, b, need)
            logits = _ChunkLogits(h, w, b, ctx.rows, grad_losses.dtype)
            for part in logits.parts():
                z = logits(part)
                args = (target[part], keep[part], class_weight, ctx.smoothing, grad_losses[part])
                index_loss_and_grad(z, *args, out=z)  # z becomes dz
                grads.add(part, z.to(h.dtype), h, w)
            out = (grads.h, grads.w, grads.b)
        return (*out, None, None, None, None, None)


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
    flow to input, linear_weight and linear_bias. As for any torch graph, a
    second backward needs ``retain_graph=True`` on the first (else torch
    raises); a double backward raises a clear error.
    """
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
        if tensor is not None and tensor.dtype != input.dtype:
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
    flat = target.reshape(-1).long()
    keep = _check_index_target(flat, num_classes, ignore_index)
    compute = compute_dtype(input)
    denominator = _kept_weight(flat, keep, class_weight, compute)
    scale = None
    if reduction != "none":
        scale = reduction_scale(reduction, len(keep), denominator=denominator)
    loss = _LinearCrossEntropy.apply(
        h, linear_weight, linear_bias, flat, keep, class_weight, float(label_smoothing), scale
    )
    return (loss if scale is not None else loss.reshape(target.shape)).to(input.dtype)
