"""The small base every lossopt optimizer stands on.

It owns what cuts across algorithms: the step loop, the step counters, the
non-finite gradient policy, the three forms a step runs in, and a
load_state_dict that checks everything before changing anything. Each
algorithm supplies its state (``_init_state``), its numbers (``_hyper``, a
NamedTuple: they may change between steps), its structural choices
(``_options``, a NamedTuple of bools), the numbers that follow the step count
t (``_at_step``: bias corrections) and its update rule (``_update``), written
once, in place, in terms of tensor methods. The same rule runs in three forms:

- per parameter (torch's "for-loop"), on tensors, with Python numbers;
- multi-tensor (torch's "foreach"), on :class:`TensorList`, whose arithmetic
  is ``torch._foreach_*``: a constant number of dispatched operations per
  group, whatever the parameter count;
- compiled by torch.compile (``fused=True``), on :class:`Traced` tensors with
  the numbers as 0-d tensors, so a scheduler that changes the learning rate
  does not recompile.

The base, not the rule, advances the step counters: a compiled call may drop
an in-place update of a 0-d counter (torch 2.13 does, for float64 ones).
"""

from __future__ import annotations

import contextlib
import operator
import os
import sys
import warnings
from collections.abc import Callable, Iterable
from functools import partial
from operator import attrgetter, itemgetter
from typing import Any, NamedTuple

import torch

from lossopt import _compat, _policy
from lossopt._checks import check_choice, check_number
from lossopt._policy import on_accelerator, optim_foreach
from lossopt.optim.forms import TensorList, run_compiled

NONFINITE = ("propagate", "skip", "raise")
FOREACH, LOOP, FUSED = "foreach", "for-loop", "fused"

# Per-parameter reads for C-level maps over a group (no Python frame each).
_GRAD, _SHAPE, _DTYPE = attrgetter("grad"), attrgetter("shape"), attrgetter("dtype")
_IS_SPARSE, _IS_CPU = attrgetter("is_sparse"), attrgetter("is_cpu")
_STEP = itemgetter("step")
_IS_NONE = partial(operator.is_, None)
_ONE = torch.tensor(1.0)
_NUMBER_DTYPES = (torch.float32, torch.float64)


class _Work(NamedTuple):
    """A group's share of a step: its parameters that have a gradient."""

    group: dict[str, Any]
    params: list[torch.Tensor]
    grads: list[torch.Tensor]
    sparse: bool  # whether any gradient is sparse


def scalar_dtype() -> torch.dtype:
    """The dtype torch.optim keeps its 'step' counters in."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def step_counter() -> torch.Tensor:
    """A new 'step' counter: a CPU tensor, as torch.optim keeps it unless
    capturable, so reading it never waits for an accelerator."""
    return torch.tensor(0.0, dtype=scalar_dtype())


def check_betas(betas: Any) -> tuple[float, float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        check_number(f"betas[{i}]", beta, low=0.0, high=1.0, high_open=True)
    return tuple(betas)


def check_flag(name: str, value: Any, *, allow_none: bool = False) -> Any:
    if value is None and allow_none:
        return None
    if not isinstance(value, bool):
        kinds = "a bool or None" if allow_none else "a bool"
        raise TypeError(f"{name} must be {kinds}, got {value!r}")
    return value


def _real(t: Any) -> Any:
    return torch.view_as_real(t) if isinstance(t, torch.Tensor) and t.is_complex() else t


def _number_dtype(t: torch.Tensor) -> torch.dtype:
    """The precision the step's numbers take for a parameter: float64 for
    float64 (and complex128) parameters, float32 for all others."""
    return torch.float64 if t.dtype in (torch.float64, torch.complex128) else torch.float32


def _count_dtype(t: torch.Tensor) -> torch.dtype:
    """The precision of bias corrections computed on the device: float64, as
    torch's Python numbers, where the device has it."""
    return torch.float32 if t.device.type == "mps" else torch.float64


def _dense(grad: torch.Tensor) -> torch.Tensor:
    """The values to check for NaN and Inf: a shard's, or a sparse gradient's."""
    grad = _compat.local(grad)
    return grad.coalesce().values() if grad.is_sparse else grad


_INTERNAL = (os.path.dirname(__file__), os.path.dirname(torch.__file__))


def _user_stacklevel() -> int:
    """The ``stacklevel`` for a warning issued by the calling function that
    names the first frame outside lossopt.optim and torch: the user's
    ``optimizer.step()`` (or their own override of it), whatever torch's
    hook and no_grad wrappers put in between."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    return level


class Optimizer(torch.optim.Optimizer):
    """torch.optim.Optimizer plus lossopt's safety, in torch's three forms.

    **Forms.** ``foreach=None`` (the default) picks the faster form for the
    device: on accelerators the multi-tensor form (``torch._foreach_*``, a
    constant number of kernel launches per group, whatever the parameter
    count); on CPU the multi-tensor form for groups of small tensors and the
    per-parameter loop for large ones (the measured crossover lives in
    ``lossopt._policy``). ``foreach=True`` / ``False`` choose explicitly.
    ``fused=True`` runs the same update compiled by torch.compile, which fuses
    each parameter's update into a single pass over memory; it compiles at a
    parameter's second step (seconds, cached on disk by torch), so it is
    opt-in; results equal the other forms' to rounding. All three run each
    algorithm's one ``_update``.

    **Non-finite gradients.** ``nonfinite`` decides what a step does when any
    gradient holds NaN or Inf: 'propagate' (torch's behaviour) updates anyway;
    'skip' leaves every parameter and all state as they were, does not advance
    the step counters, and counts the step in ``skipped_steps``; 'raise'
    raises FloatingPointError naming the parameter, before anything changes.
    On CPU tensors the check reads the verdict at once. On an accelerator,
    'propagate' and 'skip' never synchronise the host: 'skip' computes the
    update with the gradients masked and keeps the old values where any was
    not finite (as optax's ``apply_if_finite``), which costs a copy of the
    group's parameters and state and one masking operation per gradient;
    its step counters then live on the device and ``skipped_steps`` is a
    device count that is read (one synchronisation) only when the property
    is. 'raise' must know before it changes anything, so it synchronises once
    per step. The first step of a parameter whose state is made at that step
    (SGD's momentum buffer) is checked synchronously.

    **torch's keywords.** ``capturable=True`` (Adam, AdamW, RMSprop) keeps
    the step counters on the parameters' device and computes bias corrections
    there, so a step never reads a device value (CUDA graphs). ``foreach`` as
    above. ``differentiable=True`` (a step autograd can differentiate through)
    is not supported: the step runs under no_grad, so it raises ValueError;
    the default False is accepted. State and state_dicts keep torch's layout
    ('step' a CPU tensor unless capturable), so checkpoints load both ways.
    """

    # Whether the algorithm takes sparse gradients (torch: SGD and Adagrad).
    _sparse = False
    # Group keys an older checkpoint or pickle may lack.
    _group_fallbacks: dict[str, Any] = {"foreach": None, "differentiable": False, "maximize": False}
    # Instance attributes an older pickle may lack, with their defaults.
    _attribute_fallbacks: dict[str, Any] = {
        "nonfinite": "propagate",
        "fused": False,
        "_skipped": 0,
        "_eps_warned": False,
        "_fallback_warned": False,
    }

    def __init__(
        self,
        params: Iterable[Any],
        defaults: dict[str, Any],
        *,
        nonfinite: str = "propagate",
        fused: bool | None = None,
        foreach: bool | None = None,
        differentiable: bool = False,
    ) -> None:
        self.nonfinite = check_choice("nonfinite", nonfinite, NONFINITE)
        check_flag("fused", fused, allow_none=True)
        check_flag("foreach", foreach, allow_none=True)
        check_flag("differentiable", differentiable)
        if "capturable" in defaults:
            check_flag("capturable", defaults["capturable"])
        if differentiable:
            raise ValueError(
                "differentiable=True is not supported: lossopt's step runs under "
                "no_grad; use torch.optim for a step autograd differentiates through"
            )
        if fused and foreach:
            raise ValueError("fused=True and foreach=True cannot be used together")
        self.fused = bool(fused)
        self._skipped = 0
        self._skipped_on_device: dict[torch.device, torch.Tensor] = {}
        self._foreach_memo: dict[tuple[int, int], bool] = {}
        self._eps_warned = False
        self._fallback_warned = False
        defaults = {**defaults, "foreach": foreach, "differentiable": differentiable}
        super().__init__(params, defaults)

    # -- pickling and older state --------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        for name in self._attribute_fallbacks:
            state[name] = getattr(self, name)
        state["_skipped"] = self.skipped_steps
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "skipped_steps" in self.__dict__:  # pickled before it was a property
            self.__dict__["_skipped"] = self.__dict__.pop("skipped_steps")
        for name, value in self._attribute_fallbacks.items():
            self.__dict__.setdefault(name, value)
        self.__dict__.setdefault("_skipped_on_device", {})
        self.__dict__["_foreach_memo"] = {}  # ids of another process's lists mean nothing
        for key, value in self._group_fallbacks.items():
            self.defaults.setdefault(key, value)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                if key != "params":
                    group.setdefault(key, value)

    @property
    def skipped_steps(self) -> int:
        """Steps skipped by ``nonfinite='skip'``. Steps skipped on an
        accelerator are counted there; reading this property then reads that
        count (one synchronisation), never ``step()``."""
        on_device = sum(int(c) for c in self._skipped_on_device.values())
        return self._skipped + on_device

    @skipped_steps.setter
    def skipped_steps(self, value: int) -> None:
        self._skipped = int(value)
        self._skipped_on_device = {}

    # -- what an algorithm defines ---------------------------------------------
    def _init_state(self, param: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _hyper(self, group: dict[str, Any]) -> NamedTuple:
        """The numbers the update uses; they may change between steps."""
        raise NotImplementedError

    def _options(self, group: dict[str, Any]) -> NamedTuple:
        """The choices that change the update's structure."""
        raise NotImplementedError

    @staticmethod
    def _at_step(t: Any, hyper: NamedTuple) -> NamedTuple | None:
        """The numbers that follow the coming step's count t (the counter
        after the base advanced it). t and ``hyper`` are Python numbers, or
        tensors (a vector of t over the group, or a TensorList of counters),
        so the arithmetic is written once for all forms."""
        return None

    @staticmethod
    def _update(param, grad, state, hyper, options, at) -> None:
        """One step of the algorithm, in place, on a parameter and its state
        slots (a dict by slot name; 'step' is the base's). The arguments are
        tensors, or TensorLists in the multi-tensor form."""
        raise NotImplementedError

    def _ready(self, state: dict[str, Any], options: NamedTuple) -> bool:
        """Whether a parameter's state is complete before its update runs."""
        return True

    def _stateless(self, options: NamedTuple) -> bool:
        """Whether the update keeps no state at all with these options (then
        the step never touches ``self.state``, as torch's SGD without
        momentum)."""
        return False

    def _sparse_problem(self, group: dict[str, Any]) -> str | None:
        """Why this group cannot take a sparse gradient, or None."""
        return None

    # -- the step ----------------------------------------------------------------
    def _work(self) -> list[_Work]:
        """Each group with its parameters that have a gradient and those
        gradients, after checking every gradient, so that a failing step
        changes nothing. The checks run as C-level maps over the group: a
        step over hundreds of small tensors is bound by per-parameter Python."""
        work = []
        for g, group in enumerate(self.param_groups):
            params = group["params"]
            grads = list(map(_GRAD, params))
            if any(map(_IS_NONE, grads)):
                params = [p for p in params if p.grad is not None]
                grads = list(map(_GRAD, params))
            sparse = any(map(_IS_SPARSE, grads))
            if sparse:
                problem = (
                    "it does not support sparse gradients"
                    if not self._sparse
                    else self._sparse_problem(group)
                )
                for p, grad in zip(params, grads, strict=True):
                    if grad.is_sparse and problem is not None:
                        raise ValueError(
                            f"{type(self).__name__}: sparse gradient of "
                            f"{self._param_name(g, p)}: {problem}"
                        )
            if list(map(_SHAPE, grads)) != list(map(_SHAPE, params)):
                for p, grad in zip(params, grads, strict=True):
                    if grad.shape != p.shape:
                        raise ValueError(
                            f"gradient of {self._param_name(g, p)} has shape "
                            f"{tuple(grad.shape)}, expected {tuple(p.shape)}"
                        )
            work.append(_Work(group, params, grads, sparse))
        return work

    def _param_name(self, g: int, param: torch.Tensor) -> str:
        group = self.param_groups[g]
        i = next(i for i, p in enumerate(group["params"]) if p is param)
        names = group.get("param_names")
        shape = tuple(param.shape)
        where = f"group {g}, index {i}, shape {shape}"
        return f"parameter '{names[i]}' ({where})" if names else f"parameter at {where}"

    def _first_nonfinite(self, work) -> str | None:
        """The first parameter whose gradient holds NaN or Inf, or None (reads
        the verdict on the host).

        Sharded (DTensor) gradients are checked shard by shard and the verdict
        is agreed across ranks, so every rank skips (or raises) together."""
        grads = [_dense(grad) for w in work for grad in w.grads]
        finite = (
            torch.stack([g.isfinite().all() for g in grads]).all() if grads else torch.tensor(True)
        )
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
                    return self._param_name(g, p)
        return "a parameter sharded on another rank"

    def _maskable(self, work) -> bool:
        """Whether 'skip' can mask this step on the device instead of reading
        the verdict: every parameter on one accelerator, dense, real, local,
        with its state complete."""
        devices = set()
        for group, params, _, _ in work:
            options = self._options(group)
            for p in params:
                if p.grad.is_sparse or p.is_complex() or _compat.is_dtensor(p):
                    return False
                state = self.state.get(p)
                if state and not self._ready(state, options):
                    return False
                if not state and not self._ready({}, options):
                    return False
                devices.add(p.device)
        return len(devices) == 1 and on_accelerator(next(iter(devices)))

    def _finite(self, work) -> torch.Tensor:
        """A 0-d bool on the device: every gradient finite. A skipped step is
        counted on the device, so nothing here waits for it."""
        grads = [grad for w in work for grad in w.grads]
        keep = torch.stack(torch._foreach_norm(grads, float("inf"))).isfinite().all()
        counter = self._skipped_on_device.get(keep.device)
        if counter is None:
            counter = self._skipped_on_device[keep.device] = torch.zeros(
                (), dtype=torch.int64, device=keep.device
            )
        counter.add_(keep.logical_not())
        return keep

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = self._work()
        keep = None
        if self.nonfinite == "skip" and self._maskable(work):
            keep = self._finite(work)
        elif self.nonfinite != "propagate":
            culprit = self._first_nonfinite(work)
            if culprit is not None:
                if self.nonfinite == "raise":
                    raise FloatingPointError(f"non-finite gradient in {culprit}")
                self._skipped += 1
                return loss
        for group, params, grads, sparse in work:
            if params:
                self._step_group(group, params, grads, sparse, keep)
        return loss

    def _step_group(
        self,
        group: dict[str, Any],
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
        sparse: bool,
        keep: torch.Tensor | None,
    ) -> None:
        options = self._options(group)
        hyper = self._hyper(group)
        if self._stateless(options):
            states, fresh = [{}] * len(params), False
        else:
            states = list(map(self.state.__getitem__, params))
            fresh = not all(states)
            if fresh:
                for p, state in zip(params, states, strict=True):
                    if not state:
                        state.update(self._init_state(p, group))
        sharded = any(map(_compat.is_dtensor_type, set(map(type, params))))
        dtypes = set(map(_DTYPE, params))
        if torch.float16 in dtypes:
            self._warn_if_eps_underflows(hyper)
        complex_ = any(d.is_complex for d in dtypes)
        form = self._form(group, params, sparse, states, options, fresh, sharded, complex_)
        on_device = bool(group.get("capturable")) or keep is not None
        steps = self._advance(params, states, on_device, keep)
        with _compat.implicit_replication() if sharded else contextlib.nullcontext():
            if keep is not None:
                tensors, before = self._snapshot(params, states)
                grads = self._masked(grads, keep)
            if form == FUSED:
                self._run_fused(params, grads, states, hyper, options, steps)
            elif form == FOREACH:
                self._run_foreach(params, grads, states, hyper, options, steps, on_device, dtypes)
            else:
                self._run_loop(params, grads, states, hyper, options, steps, on_device)
            if keep is not None:
                self._restore(tensors, before, keep)

    def _form(self, group, params, sparse, states, options, fresh, sharded, complex_) -> str:
        if self.fused and not sharded and not sparse:
            # The first step of a parameter runs uncompiled: a short run never
            # waits for a compilation, and state created lazily then exists.
            if not fresh and not complex_ and all(self._ready(s, options) for s in states):
                return FUSED
        elif self.fused and sharded:
            self._warn_sharded_fallback()
        if sparse or sharded:
            return LOOP
        if len(set(map(len, states))) > 1:  # state made lazily in some only
            return LOOP
        foreach = group.get("foreach")
        if foreach is None:
            foreach = self._default_foreach(params)
        return FOREACH if foreach else LOOP

    def _default_foreach(self, params: list[torch.Tensor]) -> bool:
        """``foreach=None``'s form for a group: always multi-tensor on an
        accelerator; on CPU by the group's mean tensor size. The choice sets
        only the speed (both forms give the same numbers), so the CPU choice
        is remembered per parameter list and count: summing hundreds of sizes
        every step would cost a fifth of a small step."""
        if not params[0].is_cpu or _policy.forced():
            return True
        key = (id(params), len(params))
        choice = self._foreach_memo.get(key)
        if choice is None:
            if len(self._foreach_memo) > 64:  # lists of the gradients present: bounded
                self._foreach_memo.clear()
            mean = sum(map(torch.Tensor.numel, params)) / len(params)
            choice = self._foreach_memo[key] = optim_foreach("cpu", mean)
        return choice

    def _advance(self, params, states, on_device, keep) -> list[torch.Tensor] | None:
        """Advance every state's 'step' (by ``keep`` on a masked step), on the
        CPU, or on the parameters' device when capturable or masked."""
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
            torch._foreach_add_(steps, _ONE, alpha=1)
        elif keep is None:
            torch._foreach_add_(steps, 1)
        else:  # a list of one 0-d tensor: the 0-d Tensor overload reads it on CPU
            by = keep.to(steps[0].dtype)
            torch._foreach_add_(steps, [by] * len(steps))
        return steps

    def _numbers(self, steps, hyper, on_device, params) -> list[Any]:
        """The per-parameter ``_at_step`` numbers: computed once per distinct
        count from the CPU counters (a memory read, no synchronisation)."""
        if steps is None:
            return [None] * len(params)
        if on_device:
            pairs = zip(steps, params, strict=True)
            return [self._at_step(t.to(_count_dtype(p)), hyper) for t, p in pairs]
        values = list(map(torch.Tensor.tolist, steps))  # no stack: 0-d stacks are slow
        cache = {t: self._at_step(t, hyper) for t in set(values)}
        return list(map(cache.__getitem__, values))

    def _run_loop(self, params, grads, states, hyper, options, steps, on_device) -> None:
        numbers = self._numbers(steps, hyper, on_device, params)
        for p, grad, state, at in zip(params, grads, states, numbers, strict=True):
            if p.is_complex():
                # Complex parameters update as pairs of reals, as in torch.
                view = {k: _real(v) for k, v in state.items()}
                self._update(_real(p), _real(grad), view, hyper, options, at)
                for key in view.keys() - state.keys():
                    state[key] = torch.view_as_complex(view[key])
            else:
                self._update(p, grad, state, hyper, options, at)

    def _run_foreach(self, params, grads, states, hyper, options, steps, on_device, dtypes) -> None:
        complex_ = any(d.is_complex for d in dtypes)
        if steps is None:
            at = None
        elif on_device:
            # The counts in float64 (3 operations, not one per parameter):
            # 1 - beta2^t in float32 keeps only a few digits.
            t = torch.stack(steps).to(_count_dtype(params[0])).unbind()
            at = self._at_step(TensorList(t), hyper)
        else:
            numbers = self._numbers(steps, hyper, False, params)
            first = numbers[0]
            if numbers.count(first) == len(numbers):  # one count (by identity: cached)
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
        self._update(
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

    def _run_fused(self, params, grads, states, hyper, options, steps) -> None:
        first = params[0]
        # The numbers as 0-d tensors in the parameters' precision (float32 for
        # half precision): float64 would slow the compiled loops.
        dtype = _number_dtype(first)
        numbers = type(hyper)(
            *(torch.as_tensor(v, dtype=dtype, device=first.device) for v in hyper)
        )
        at = None
        if steps is not None:
            t = torch.stack(steps).to(dtype=dtype, device=first.device)
            at = self._at_step(t, numbers)
        run_compiled(self._update, params, grads, states, numbers, options, at)

    @staticmethod
    def _snapshot(params, states) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Copies of the group's parameters and state slots (one operation)."""
        tensors = list(params)
        for state in states:
            tensors.extend(v for k, v in state.items() if k != "step")
        return tensors, torch._foreach_mul(tensors, 1)

    @staticmethod
    def _masked(grads, keep) -> list[torch.Tensor]:
        """The gradients, or zeros where ``keep`` is False, so that a skipped
        step computes with finite numbers (one operation per gradient: no
        foreach operation selects without propagating NaN)."""
        zeros = {dtype: keep.new_zeros((), dtype=dtype) for dtype in {g.dtype for g in grads}}
        return [torch.where(keep, g, zeros[g.dtype]) for g in grads]

    @staticmethod
    def _restore(tensors, before, keep) -> None:
        """Where ``keep`` is False, every tensor gets its copy back: lerp with a
        weight of exactly 0 or 1 returns one end unchanged (the update ran on
        masked, finite gradients, so both ends are finite)."""
        drop = keep.logical_not()
        weights = {dtype: drop.to(dtype) for dtype in {t.dtype for t in tensors}}
        torch._foreach_lerp_(tensors, before, [weights[t.dtype] for t in tensors])

    def _warn_sharded_fallback(self) -> None:
        """fused=True on DTensor (FSDP2) parameters runs the uncompiled update,
        which is exact; say so once rather than compile through DTensor
        dispatch."""
        if not self._fallback_warned:
            self._fallback_warned = True
            warnings.warn(
                f"{type(self).__name__}(fused=True): DTensor (sharded) parameters take "
                "the eager update path; results are the same, only slower",
                RuntimeWarning,
                stacklevel=_user_stacklevel(),
            )

    def _warn_if_eps_underflows(self, hyper) -> None:
        """Called for a group that holds float16 parameters."""
        eps = getattr(hyper, "eps", None)
        if eps is None or self._eps_warned or not float(eps) > 0:
            return
        # Below half of float16's smallest subnormal (2^-24), eps rounds to 0.
        if float(eps) <= 2.0**-25:
            self._eps_warned = True
            warnings.warn(
                f"{type(self).__name__}: eps={float(eps):g} is 0 in float16, so the "
                "denominator can be 0 where a gradient's history is 0 (division by "
                "zero); use eps >= 6e-8 with float16 parameters, or keep float32 "
                "master weights",
                RuntimeWarning,
                stacklevel=_user_stacklevel(),
            )

    # -- checkpoints -------------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's load_state_dict, after checking that the checkpoint fits.

        The checkpoint is checked after torch's load_state_dict pre-hooks ran
        (so a hook that migrates an old checkpoint works): the group count,
        each group's parameter count and every state tensor's shape against
        the parameters; a mismatch raises a ValueError listing them and leaves
        the optimizer exactly as it was. When both the checkpoint and the
        optimizer name their parameters (``param_names``, from
        ``named_parameters()``, torch >= 2.5), state is matched by name, so a
        checkpoint still loads after parameters were reordered; names that do
        not match are listed in the error.
        """
        if not isinstance(state_dict, dict):
            raise ValueError("state_dict must be a dict with 'state' and 'param_groups'")
        state_dict = state_dict.copy()  # as torch: a hook may change it in place
        with _compat.load_pre_hooks_run(self) as hooks:
            for hook in hooks:
                result = hook(self, state_dict)
                if result is not None:
                    state_dict = result
            state_dict = self._checked(state_dict)
            super().load_state_dict(state_dict)

    def _checked(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise ValueError("state_dict must be a dict with 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups)} parameter groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        state_dict = self._match_names(state_dict)
        saved_groups = state_dict["param_groups"]
        problems = []
        saved_state = state_dict["state"]
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            if len(group["params"]) != len(saved["params"]):
                problems.append(
                    f"group {g} has {len(saved['params'])} parameters in the state_dict, "
                    f"{len(group['params'])} in the optimizer"
                )
                continue
            for i, (p, key) in enumerate(zip(group["params"], saved["params"], strict=True)):
                for name, value in saved_state.get(key, {}).items():
                    if (
                        isinstance(value, torch.Tensor)
                        and value.dim() > 0
                        and value.shape != p.shape
                    ):
                        problems.append(
                            f"group {g}, index {i}: state '{name}' has shape "
                            f"{tuple(value.shape)}, the parameter {tuple(p.shape)}"
                        )
        if problems:
            raise ValueError("state_dict does not fit this optimizer: " + "; ".join(problems))
        return state_dict

    def _match_names(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        """Reorder each saved group's parameter ids to this optimizer's name order."""
        saved_groups = state_dict["param_groups"]
        named = all("param_names" in g for g in (*saved_groups, *self.param_groups))
        if not named:
            return state_dict
        groups, problems = [], []
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            ids = dict(zip(saved["param_names"], saved["params"], strict=True))
            missing = [n for n in group["param_names"] if n not in ids]
            unexpected = [n for n in saved["param_names"] if n not in set(group["param_names"])]
            if missing or unexpected:
                problems.append(
                    f"group {g}: missing from the state_dict {missing}, "
                    f"not in the optimizer {unexpected}"
                )
                continue
            order = [ids[n] for n in group["param_names"]]
            groups.append({**saved, "params": order, "param_names": list(group["param_names"])})
        if problems:
            raise ValueError("state_dict names other parameters: " + "; ".join(problems))
        return {**state_dict, "param_groups": groups}
