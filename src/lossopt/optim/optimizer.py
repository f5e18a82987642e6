"""The small base every lossopt optimizer stands on.

It owns the step loop over the parameter groups and the state; what cuts
across algorithms lives in a module each: the non-finite gradient policy
(:mod:`~lossopt.optim.nonfinite`), the three forms a step runs in and the
choice among them (:mod:`~lossopt.optim.forms`), the step counters and the
numbers that follow them (:mod:`~lossopt.optim.steps`), and what a checkpoint
or an older pickle brings back (:mod:`~lossopt.optim.checkpoint`).

Each algorithm supplies its state (``_init_state``), its numbers (``_hyper``,
a NamedTuple: they may change between steps), its structural choices
(``_options``, a NamedTuple of bools), the numbers that follow the step count
t (``_at_step``: bias corrections) and its update rule (``_update``), written
once, in place, in terms of tensor methods, so that the same rule runs on
tensors, on lists of tensors and inside torch.compile.

The base, not the rule, advances the step counters: a compiled call may drop
an in-place update of a 0-d counter (torch 2.13 does, for float64 ones).
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Callable, Iterable
from functools import partial
from operator import attrgetter
from typing import Any, NamedTuple

import torch

from lossopt import _compat
from lossopt._checks import check_choice, check_number
from lossopt.optim import checkpoint, forms, nonfinite
from lossopt.optim.nonfinite import NONFINITE
from lossopt.optim.steps import advance, scalar_dtype, step_counter

__all__ = [
    "NONFINITE",
    "Optimizer",
    "check_betas",
    "check_flag",
    "regularized",
    "scalar_dtype",
    "step_counter",
]

# Per-parameter reads for C-level maps over a group (no Python frame each).
_GRAD, _SHAPE, _DTYPE = attrgetter("grad"), attrgetter("shape"), attrgetter("dtype")
_IS_SPARSE = attrgetter("is_sparse")
_IS_NONE = partial(operator.is_, None)
_compiling = torch.compiler.is_compiling


class _Work(NamedTuple):
    """A group's share of a step: its parameters that have a gradient."""

    group: dict[str, Any]
    params: list[torch.Tensor]
    grads: list[torch.Tensor]
    sparse: bool  # whether any gradient is sparse


def check_betas(betas: Any) -> tuple[Any, Any]:
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


def regularized(param, grad, options: NamedTuple, weight_decay: Any, *, coupled: bool = True):
    """The gradient an update rule follows: -g when ``options.maximize``
    (gradient ascent), plus lambda W when ``options.weight_decay`` and the
    decay is ``coupled`` (L2 regularisation added to the gradient, torch's
    ``weight_decay``; AdamW's decoupled decay is not)."""
    if options.maximize:
        grad = -grad
    if options.weight_decay and coupled:
        grad = grad.add(param, alpha=weight_decay)
    return grad


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
        checkpoint.fill_older_pickle(self, self._attribute_fallbacks, self._group_fallbacks)

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

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = self._work()
        keep = None
        if self.nonfinite == "skip" and nonfinite.maskable(work, self.state, self._group_ready):
            grads = [grad for w in work for grad in w.grads]
            keep = nonfinite.finite_on_device(grads, self._skipped_on_device)
        elif self.nonfinite != "propagate":
            culprit = nonfinite.first_nonfinite(work, self._param_name)
            if culprit is not None:
                if self.nonfinite == "raise":
                    raise FloatingPointError(f"non-finite gradient in {culprit}")
                self._skipped += 1
                return loss
        for group, params, grads, sparse in work:
            if params:
                self._step_group(group, params, grads, sparse, keep)
        return loss

    def _group_ready(self, state: dict[str, Any], group: dict[str, Any]) -> bool:
        return self._ready(state, self._options(group))

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
        if self.fused and sharded:
            self._warn_sharded_fallback()
        form = forms.choose(
            group,
            params,
            states,
            fused=self.fused,
            sparse=sparse,
            sharded=sharded,
            fresh=fresh,
            complex_=any(d.is_complex for d in dtypes),
            ready=partial(self._ready, options=options),
            memo=self._foreach_memo,
        )
        # Compiled, the step numbers are tensors in the graph as on a device: a
        # counter read into Python would break the graph at every step.
        on_device = bool(group.get("capturable")) or keep is not None or _compiling()
        steps = advance(params, states, on_device, keep)
        with _compat.implicit_replication() if sharded else contextlib.nullcontext():
            if keep is not None:
                tensors, before = nonfinite.snapshot(params, states)
                grads = nonfinite.masked(grads, keep)
            forms.run(
                form,
                self._update,
                self._at_step,
                params,
                grads,
                states,
                hyper,
                options,
                steps,
                on_device,
                dtypes,
            )
            if keep is not None:
                nonfinite.restore(tensors, before, keep)

    def _warn_sharded_fallback(self) -> None:
        """fused=True on DTensor (FSDP2) parameters runs the uncompiled update,
        which is exact; say so once rather than compile through DTensor
        dispatch."""
        if not self._fallback_warned:
            self._fallback_warned = True
            _compat.warn(
                f"{type(self).__name__}(fused=True): DTensor (sharded) parameters take "
                "the eager update path; results are the same, only slower",
            )

    def _warn_if_eps_underflows(self, hyper) -> None:
        """Called for a group that holds float16 parameters."""
        eps = getattr(hyper, "eps", None)
        if eps is None or self._eps_warned or not float(eps) > 0:
            return
        # Below half of float16's smallest subnormal (2^-24), eps rounds to 0.
        if float(eps) <= 2.0**-25:
            self._eps_warned = True
            _compat.warn(
                f"{type(self).__name__}: eps={float(eps):g} is 0 in float16, so the "
                "denominator can be 0 where a gradient's history is 0 (division by "
                "zero); use eps >= 6e-8 with float16 parameters, or keep float32 "
                "master weights",
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
            state_dict = checkpoint.checked(self.param_groups, state_dict)
            super().load_state_dict(state_dict)
