"""The three forms one update rule runs in, and the choice among them.

- per parameter (torch's "for-loop"), on tensors, with Python numbers;
- multi-tensor (torch's "foreach"), on :class:`TensorList`: a constant number
  of dispatched operations per group, whatever the parameter count;
- compiled by torch.compile (``fused=True``), on :class:`Traced` tensors with
  the numbers as 0-d tensors, so a scheduler that changes the learning rate
  does not recompile.

Each runner takes the algorithm's ``update`` rule and its ``at_step`` numbers
(see :class:`lossopt.optim.Optimizer`); the operand types live in
:mod:`lossopt.optim.operands`.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import Any

import torch

from lossopt import _compat, _policy
from lossopt._policy import OPTIM_FUSED_CHUNK, optim_foreach
from lossopt.optim.operands import TensorList, Traced
from lossopt.optim.steps import at_counts

FOREACH, LOOP, FUSED = "foreach", "for-loop", "fused"
_NUMBER_DTYPES = (torch.float32, torch.float64)

__all__ = ["FOREACH", "FUSED", "LOOP", "TensorList", "Traced", "choose", "run", "run_compiled"]


def _real(t: Any) -> Any:
    return torch.view_as_real(t) if isinstance(t, torch.Tensor) and t.is_complex() else t


def _number_dtype(t: torch.Tensor) -> torch.dtype:
    """The precision the compiled step's numbers take for a parameter: float64
    for float64 (and complex128) parameters, float32 for all others (float64
    would slow the compiled loops)."""
    return torch.float64 if t.dtype in (torch.float64, torch.complex128) else torch.float32


def choose(group, params, states, *, fused, sparse, sharded, fresh, complex_, ready, memo) -> str:
    """The form of a group's step. ``ready(state)``: whether a parameter's
    state is complete; ``fresh``: whether some state was made at this step;
    ``memo``: the remembered CPU choices (see :func:`default_foreach`)."""
    if fused and not sharded and not sparse:
        # The first step of a parameter runs uncompiled: a short run never
        # waits for a compilation, and state created lazily then exists.
        if not fresh and not complex_ and all(map(ready, states)):
            return FUSED
    if sparse or sharded:
        return LOOP
    if len(set(map(len, states))) > 1:  # state made lazily in some only
        return LOOP
    foreach = group.get("foreach")
    if foreach is None:
        foreach = default_foreach(memo, params)
    return FOREACH if foreach else LOOP


def default_foreach(memo: dict[tuple[int, int], bool], params: list[torch.Tensor]) -> bool:
    """``foreach=None``'s form for a group: always multi-tensor on an
    accelerator; on CPU by the group's mean tensor size. The choice sets
    only the speed (both forms give the same numbers), so the CPU choice
    is remembered in ``memo`` per parameter list and count: summing hundreds
    of sizes every step would cost a fifth of a small step."""
    if not params[0].is_cpu or _policy.forced():
        return True
    key = (id(params), len(params))
    choice = memo.get(key)
    if choice is None:
        if len(memo) > 64:  # lists of the gradients present: bounded
            memo.clear()
        mean = sum(map(torch.Tensor.numel, params)) / len(params)
        choice = memo[key] = optim_foreach("cpu", mean)
    return choice


def _per_parameter(at: Any, count: int) -> list[Any]:
    """A NamedTuple of vectors over the parameters as one NamedTuple each."""
    if at is None:
        return [None] * count
    return [type(at)(*(v[i] for v in at)) for i in range(count)]


def run(form, update, at_step, params, grads, states, hyper, options, steps, on_device, dtypes):
    """Run ``update`` over a group in ``form``; ``steps``: the group's
    counters, already advanced (None without counters)."""
    if form == FUSED:
        _run_fused(update, at_step, params, grads, states, hyper, options, steps)
    elif form == FOREACH:
        _run_foreach(
            update, at_step, params, grads, states, hyper, options, steps, on_device, dtypes
        )
    else:
        _run_loop(update, at_step, params, grads, states, hyper, options, steps, on_device)


def _on_device_numbers(at_step, steps, hyper, params) -> list[Any]:
    devices = {p.device for p in params}
    if len(devices) == 1:
        return _per_parameter(at_counts(at_step, steps, hyper, params[0].device), len(params))
    pairs = zip(steps, params, strict=True)
    return [_per_parameter(at_counts(at_step, [t], hyper, p.device), 1)[0] for t, p in pairs]


def _run_loop(update, at_step, params, grads, states, hyper, options, steps, on_device) -> None:
    if steps is None:
        numbers = [None] * len(params)
    elif on_device:
        numbers = _on_device_numbers(at_step, steps, hyper, params)
    else:
        numbers = at_counts(at_step, steps, hyper)
    for p, grad, state, at in zip(params, grads, states, numbers, strict=True):
        if p.is_complex():
            # Complex parameters update as pairs of reals, as in torch.
            view = {k: _real(v) for k, v in state.items()}
            update(_real(p), _real(grad), view, hyper, options, at)
            for key in view.keys() - state.keys():
                state[key] = torch.view_as_complex(view[key])
        else:
            update(p, grad, state, hyper, options, at)


def _run_foreach(
    update, at_step, params, grads, states, hyper, options, steps, on_device, dtypes
) -> None:
    complex_ = any(d.is_complex for d in dtypes)
    if steps is None:
        at = None
    elif on_device:
        # The numbers as vectors over the group (a few operations, not a few
        # per parameter), then one 0-d tensor per parameter for foreach.
        at = at_counts(at_step, steps, hyper, params[0].device)
        if at is not None:
            at = type(at)(*(TensorList(v.unbind()) for v in at))
    else:
        numbers = at_counts(at_step, steps, hyper)
        first = numbers[0]
        if first is None or numbers.count(first) == len(numbers):  # one count (cached)
            at = first
        else:  # counts differ: one number per tensor
            at = type(first)(*map(list, zip(*numbers, strict=True)))
    slots = {k: list(map(itemgetter(k), states)) for k in states[0] if k != "step"}
    if complex_:  # pairs of reals, as in torch
        kinds = [p.is_complex() for p in params]
        params, grads = [_real(p) for p in params], [_real(g) for g in grads]
        slots = {k: [_real(t) for t in v] for k, v in slots.items()}
    # One dtype on the CPU: numbers become 0-d tensors once (see TensorList).
    number_dtype = None
    if not on_device and len(dtypes) == 1 and params[0].is_cpu and not _policy.forced():
        number_dtype = next(iter(dtypes))
        number_dtype = number_dtype if number_dtype in _NUMBER_DTYPES else None
    view = {k: TensorList(v, number_dtype) for k, v in slots.items()}
    update(
        TensorList(params, number_dtype),
        TensorList(grads, number_dtype),
        view,
        hyper,
        options,
        at,
    )
    for key in view.keys() - states[0].keys():
        for i, (state, t) in enumerate(zip(states, view[key].tensors, strict=True)):
            state[key] = torch.view_as_complex(t) if complex_ and kinds[i] else t


def _run_fused(update, at_step, params, grads, states, hyper, options, steps) -> None:
    first = params[0]
    dtype = _number_dtype(first)
    numbers = type(hyper)(*(torch.as_tensor(v, dtype=dtype, device=first.device) for v in hyper))
    at = None
    if steps is not None:
        at = at_counts(at_step, steps, hyper, first.device)
        if at is not None:
            at = type(at)(*(v.to(dtype) for v in at))
    run_compiled(update, params, grads, states, numbers, options, at)


_COMPILED: dict[Callable[..., None], Callable[..., None]] = {}


def _compiled(update: Callable[..., None]) -> Callable[..., None]:
    compiled = _COMPILED.get(update)
    if compiled is None:

        def apply_all(params, grads, states, hyper, options, at):
            for i, (p, g, state) in enumerate(zip(params, grads, states, strict=True)):
                numbers = None if at is None else type(at)(*(v[i] for v in at))
                slots = {k: Traced(v) for k, v in state.items() if k != "step"}
                update(Traced(p), Traced(g), slots, hyper, options, numbers)

        compiled = _COMPILED[update] = torch.compile(
            _compat.own_code(apply_all), dynamic=False, options=_compat.inductor_options()
        )
    return compiled


def run_compiled(update, params, grads, states, hyper, options, at) -> None:
    """Apply ``update`` to every parameter through torch.compile: Inductor fuses
    each parameter's whole update into one loop over its elements (C++/OpenMP
    on CPU, Triton on GPU). The math is the eager ``update`` itself."""
    compiled = _compiled(update)
    # Chunks of equal length where possible (200 parameters: 4 x 50, not
    # 3 x 64 + 8), so that like-shaped parameters share one graph.
    count = -(-len(params) // OPTIM_FUSED_CHUNK)
    size = -(-len(params) // count)
    # Every option set and chunk shape is one more graph of the same function.
    with _compat.compile_limits(256, 4096):
        for start in range(0, len(params), size):
            part = slice(start, start + size)
            # Own copies of the chunk's numbers: a view's offset would be one
            # more thing for the compiled code to be specialized on.
            numbers = None if at is None else type(at)(*(v[part].clone() for v in at))
            compiled(params[part], grads[part], states[part], hyper, options, numbers)
