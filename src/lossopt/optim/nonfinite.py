"""The non-finite gradient policy: what a step does when a gradient holds NaN
or Inf ('propagate', 'skip' or 'raise'; see :class:`lossopt.optim.Optimizer`).

On the host the verdict is read before anything changes (and agreed across
ranks for sharded gradients). On one accelerator, 'skip' never waits for it:
the update runs on masked gradients and every tensor it touched gets its copy
back where the verdict says so, as optax's ``apply_if_finite``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from lossopt import _compat
from lossopt._compat import foreach
from lossopt._policy import on_accelerator

NONFINITE = ("propagate", "skip", "raise")


def _dense(grad: torch.Tensor) -> torch.Tensor:
    """The values to check for NaN and Inf: a shard's, or a sparse gradient's."""
    grad = _compat.local(grad)
    return grad.coalesce().values() if grad.is_sparse else grad


def first_nonfinite(work: list[Any], name: Callable[[int, torch.Tensor], str]) -> str | None:
    """The ``name`` of the first parameter whose gradient holds NaN or Inf, or
    None (reads the verdict on the host). ``work`` holds each group's
    parameters and gradients.

    Sharded (DTensor) gradients are checked shard by shard and the verdict
    is agreed across ranks, so every rank skips (or raises) together."""
    grads = [_dense(grad) for w in work for grad in w.grads]
    finite = torch.stack([g.isfinite().all() for g in grads]).all() if grads else torch.tensor(True)
    if any(_compat.is_dtensor(p) for w in work for p in w.params):
        import torch.distributed as dist

        agreed = finite.to(torch.int32)
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
        finite = agreed.bool()
    if bool(finite):
        return None
    for g, w in enumerate(work):
        for p, grad in zip(w.params, w.grads, strict=True):
            if not bool(_dense(grad).isfinite().all()):
                return name(g, p)
    return "a parameter sharded on another rank"


def maskable(work: list[Any], states: dict[torch.Tensor, dict[str, Any]], ready) -> bool:
    """Whether 'skip' can mask this step on the device instead of reading
    the verdict: every parameter on one accelerator, dense, real, local,
    with its state complete (``ready(state, group)``)."""
    devices = set()
    for w in work:
        for p in w.params:
            if p.grad.is_sparse or p.is_complex() or _compat.is_dtensor(p):
                return False
            if not ready(states.get(p) or {}, w.group):
                return False
            devices.add(p.device)
    return len(devices) == 1 and on_accelerator(next(iter(devices)))


def finite_on_device(grads: list[torch.Tensor], skipped: dict[torch.device, torch.Tensor]):
    """A 0-d bool on the device: every gradient finite. A skipped step is
    counted there, in ``skipped`` (one counter per device), so nothing here
    waits for the verdict."""
    keep = torch.stack(foreach.norm(grads, float("inf"))).isfinite().all()
    counter = skipped.get(keep.device)
    if counter is None:
        counter = skipped[keep.device] = torch.zeros((), dtype=torch.int64, device=keep.device)
    counter.add_(keep.logical_not())
    return keep


def snapshot(params, states) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Copies of the group's parameters and state slots (one operation)."""
    tensors = list(params)
    for state in states:
        tensors.extend(v for k, v in state.items() if k != "step")
    return tensors, foreach.mul(tensors, 1)


def masked(grads, keep) -> list[torch.Tensor]:
    """The gradients, or zeros where ``keep`` is False, so that a skipped
    step computes with finite numbers (one operation per gradient: no
    foreach operation selects without propagating NaN)."""
    zeros = {dtype: keep.new_zeros((), dtype=dtype) for dtype in {g.dtype for g in grads}}
    return [torch.where(keep, g, zeros[g.dtype]) for g in grads]


def restore(tensors, before, keep) -> None:
    """Where ``keep`` is False, every tensor gets its copy back: lerp with a
    weight of exactly 0 or 1 returns one end unchanged (the update ran on
    masked, finite gradients, so both ends are finite)."""
    drop = keep.logical_not()
    weights = {dtype: drop.to(dtype) for dtype in {t.dtype for t in tensors}}
    foreach.lerp_(tensors, before, [weights[t.dtype] for t in tensors])
