"""Which implementation a loss call takes: torch's own kernel or lossopt's
hand-derived one-pass path.

lossopt's path is a custom autograd Function with loops over blocks of rows;
it pays only where :mod:`lossopt._policy` measured it faster. Everywhere a
transform or tracer looks at the computation (torch.func, torch.compile,
torch.export, fake or meta tensors, tensor subclasses) and under autocast,
the call takes torch's kernel, so it composes exactly as torch's loss does
and follows torch's autocast policy.
"""

from __future__ import annotations

import math

import torch

from lossopt import _policy
from lossopt._compat import transforms_active

_PLAIN = (torch.Tensor, torch.nn.Parameter)
_DIRECT_DTYPES = (torch.float32, torch.float64)


def autocast_on(device: torch.device) -> bool:
    try:
        return torch.is_autocast_enabled(device.type)
    except TypeError:  # torch < 2.4 takes no device type
        return device.type == "cuda" and torch.is_autocast_enabled()
    except RuntimeError:  # a device without autocast (meta)
        return False


def plain(*tensors: torch.Tensor | None) -> bool:
    """The one routing predicate: nothing traces the call (torch.compile,
    export, a torch.func transform) and every tensor is a plain one (not a
    subclass such as fake tensors or DTensor, not meta; None is a tensor not
    given). Only then may a custom autograd Function with loops run, or a
    value be read into Python."""
    if _is_compiling() or transforms_active():  # first: compile traces nothing after it
        return False
    for t in tensors:
        if t is not None and (type(t) not in _PLAIN or t.is_meta):
            return False
    return True


def traced(*tensors: torch.Tensor | None) -> bool:
    """Whether torch.func, torch.compile or export is at work, or a tensor is
    a subclass (fake, meta-tracing, DTensor): then only torch's own
    operations compose, not a custom autograd Function with loops."""
    return not plain(*tensors)


def regrad(fn, inputs: tuple[torch.Tensor, ...], grad_output: torch.Tensor):
    """Gradients of ``fn(*inputs)`` by autograd, with a graph of their own.

    A hand-derived backward computes its gradient without a graph; when a
    graph of the gradient is asked for (``create_graph=True``: gradient
    penalties, Hessian-vector products), the backward calls this on the
    forward's own formula, so second derivatives are exact and the math is
    written once."""
    with torch.enable_grad():
        out = fn(*inputs)
        wanted = [x for x in inputs if x.requires_grad]
        grads = iter(torch.autograd.grad(out, wanted, grad_output, create_graph=True))
    return tuple(next(grads) if x.requires_grad else None for x in inputs)


# What a call may do, decided once per call (see :func:`route`).
OWN = "own"  # lossopt's one-pass kernel (CPU, above the crossover)
CPU = "cpu"  # torch's kernel; values may be read into Python (free on the CPU)
DEVICE = "device"  # torch's kernel; no value is read (accelerators, transforms, tracers)


def route(loss: str | None, numel: int, input: torch.Tensor, *others) -> str:
    """Where a loss call runs, with as few Python steps as a small call affords.
    ``loss`` None: there is no lossopt kernel to choose."""
    if not plain(input, *others) or not input.is_cpu or _policy.forced():
        return DEVICE
    if loss is None or not _policy.lossopt_kernel(loss, numel, "cpu"):
        return CPU
    return CPU if torch.is_autocast_enabled("cpu") else OWN


def direct(loss: str | None, input: torch.Tensor, other: torch.Tensor) -> bool:
    """Whether a call may go straight to torch's kernel and read its result:
    the common call, told from metadata in one expression (every step of it
    counts: a small loss takes a few tens of microseconds in all).

    Plain float32 or float64 CPU tensors, with nothing tracing them and the
    accelerator path not forced; where lossopt has a kernel of its own for
    ``loss`` (None: it has none), not empty and below its crossover. Such a
    call checks nothing of its own: it calls torch's kernel, which rejects bad
    input, and only when torch raised or a mean came out NaN
    (:func:`direct_call`) does it take the loss's full path, which names the
    culprit or applies lossopt's rule. Everything else takes the full path at once.
    """
    return (
        input is not None
        and other is not None
        and plain(input, other)
        and input.is_cpu
        and input.dtype in _DIRECT_DTYPES
        and (loss is None or 0 < input.numel() < _policy.LOSS_CROSSOVER[loss]["cpu"])
        and not _forced.value
    )


_forced = _policy._forced
_is_compiling = torch.compiler.is_compiling


# What torch's kernels raise for input they refuse, caught on a direct call so
# that the loss's full path can check the input again and name the culprit.
DIRECT_REFUSALS = (RuntimeError, ValueError, IndexError, TypeError)


def direct_call(kernel, mean: bool, *args) -> torch.Tensor | None:
    """``kernel(*args)`` for a call :func:`direct` let through, or None for the
    loss's full path: when torch refused the input, or when a mean came out
    NaN (read once: free on the CPU), where lossopt's rule may differ from
    torch's (a mean over nothing is 0; 0 log 0 = 0) or the input holds NaN."""
    try:
        loss = kernel(*args)
    except DIRECT_REFUSALS:
        return None
    return None if mean and math.isnan(loss.tolist()) else loss
