"""Step counters, and the numbers that follow a step's count (bias
corrections, a decayed learning rate), computed in one place for every form."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import torch

from lossopt._compat import foreach

_STEP_ONE = torch.tensor(1.0)
# C-level maps over a group's counters (no Python frame per parameter).
_STEP, _IS_CPU = itemgetter("step"), attrgetter("is_cpu")


def scalar_dtype() -> torch.dtype:
    """The dtype torch.optim keeps its 'step' counters in."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def step_counter() -> torch.Tensor:
    """A new 'step' counter: a CPU tensor, as torch.optim keeps it unless
    capturable, so reading it never waits for an accelerator."""
    return torch.tensor(0.0, dtype=scalar_dtype())


def count_dtype(device: torch.device) -> torch.dtype:
    """The precision of numbers computed from counts on a device: float64, as
    torch's Python numbers, where the device has it (1 - beta2^t in float32
    keeps only a few digits)."""
    return torch.float32 if device.type == "mps" else torch.float64


def advance(params, states, on_device: bool, keep: torch.Tensor | None):
    """Advance every state's 'step' (by ``keep`` on a masked step), on the
    CPU, or on the parameters' device when capturable or masked; the
    counters, or None for an algorithm that keeps none."""
    if "step" not in states[0]:
        return None
    steps = list(map(_STEP, states))
    if on_device or not all(map(_IS_CPU, steps)):
        for i, (p, state) in enumerate(zip(params, states, strict=True)):
            where = p.device if on_device else torch.device("cpu")
            if steps[i].device != where:
                steps[i] = state["step"] = steps[i].to(where)
    if keep is None and not on_device:
        # A 0-d tensor, not the number 1: CPU counters take foreach's
        # per-tensor path, which would wrap a number into a new tensor for
        # each counter (3.5x slower over 200 counters).
        foreach.add_(steps, _STEP_ONE, alpha=1)
    elif keep is None:
        foreach.add_(steps, 1)
    else:  # a list of one 0-d tensor: the 0-d Tensor overload reads it on CPU
        by = keep.to(steps[0].dtype)
        foreach.add_(steps, [by] * len(steps))
    return steps


def at_counts(
    at_step: Callable[[Any, NamedTuple], NamedTuple | None],
    steps: list[torch.Tensor],
    hyper: NamedTuple,
    device: torch.device | None = None,
) -> Any:
    """``at_step``'s numbers for the counters ``steps``, always in float64
    (float32 only on a device without it), whatever the form.

    Without ``device``: from the CPU counters' values (a memory read, no
    synchronisation), as Python numbers, one NamedTuple per counter, computed
    once per distinct count. With ``device``: on that device, one NamedTuple
    of vectors over the counters, so that nothing reads a device value."""
    if device is None:
        values = list(map(torch.Tensor.tolist, steps))  # no stack: 0-d stacks are slow
        cache = {t: at_step(t, hyper) for t in set(values)}
        return list(map(cache.__getitem__, values))
    t = torch.stack(steps).to(device=device, dtype=count_dtype(device))
    return at_step(t, hyper)
