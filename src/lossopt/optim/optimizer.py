"""The small base every lossopt optimizer stands on.

It owns what cuts across algorithms: the step loop, the non-finite gradient
policy, the compiled fast path, and a load_state_dict that checks everything
before changing anything. Each algorithm supplies its state (``_init_state``),
its hyperparameters split into numbers (``_hyper``) and structural choices
(``_flags``), the per-parameter numbers that follow the step count
(``_scalars``: bias corrections, for a whole group at once) and its
update rule (``_update``), written once, in place, for one parameter. The
numbers reach ``_update`` as 0-d tensors, so the same function
runs eagerly or compiled by torch.compile (``fused=True``) without a
recompilation each time a scheduler changes the learning rate.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch

from lossopt._checks import check_choice, check_number

NONFINITE = ("propagate", "skip", "raise")


def scalar_dtype() -> torch.dtype:
    """The dtype torch.optim keeps its 'step' counters in."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def step_counter() -> torch.Tensor:
    return torch.tensor(0.0, dtype=scalar_dtype())


def next_steps(states: list[dict[str, Any]], h: dict[str, torch.Tensor]) -> torch.Tensor:
    """The count t of the coming step (each state's 'step' + 1), as one tensor
    in the hyperparameters' dtype and device. ``_update`` advances the counter
    itself, inside the same fused loop."""
    reference = next(iter(h.values()))
    if not states:
        return reference.new_zeros(0)
    return torch.stack([state["step"] for state in states]).to(reference) + 1


def check_betas(betas: Any) -> tuple[float, float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        check_number(f"betas[{i}]", beta, low=0.0, high=1.0, high_open=True)
    return tuple(betas)


def _is_dtensor_type(kind: type) -> bool:
    return kind.__name__ == "DTensor"


def _is_dtensor(t: Any) -> bool:
    return _is_dtensor_type(type(t))


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if _is_dtensor(t) else t


def _replicate_scalars(sharded: bool):
    """With DTensor (FSDP2) parameters, let the 0-d hyperparameter tensors act
    as replicated values; otherwise nothing."""
    if sharded:
        from torch.distributed.tensor.experimental import implicit_replication

        return implicit_replication()
    return contextlib.nullcontext()


def _real(t: Any) -> Any:
    return torch.view_as_real(t) if isinstance(t, torch.Tensor) and t.is_complex() else t


# A warning raised inside a group's step names the caller of optimizer.step():
# the frames in between are the warning's method, _step_group, step, torch's
# no_grad decorator and torch.optim's step hook wrapper.
_USER_FRAME = 6

# Tensors per compiled call, at most: large enough to amortize the call, small
# enough that a model with thousands of parameters compiles a few graphs, not
# one huge one.
_FUSED_CHUNK = 64
_COMPILED: dict[Callable[..., None], Callable[..., None]] = {}


def _compiled(update: Callable[..., None]) -> Callable[..., None]:
    compiled = _COMPILED.get(update)
    if compiled is None:

        def apply_all(params, grads, states, hyper, flags, scalars):
            for i, (p, g, state) in enumerate(zip(params, grads, states, strict=True)):
                update(p, g, state, hyper, flags, {k: v[i] for k, v in scalars.items()})

        # torch.compile keeps its graphs per code object and, on every call,
        # checks them in turn until one's guards pass: a code object of its own
        # per algorithm keeps each algorithm's calls off the others' graphs.
        apply_all.__code__ = apply_all.__code__.replace()
        # Inductor's size asserts on every input repeat what the guards check.
        compiled = _COMPILED[update] = torch.compile(
            apply_all, dynamic=False, options={"size_asserts": False}
        )
    return compiled


def _run_compiled(update, params, grads, states, hyper, flags, scalars) -> None:
    """Apply ``update`` to every parameter through torch.compile: Inductor fuses
    each parameter's whole update into one loop over its elements (C++/OpenMP
    on CPU, Triton on GPU). The math is the eager ``update`` itself."""
    compiled = _compiled(update)
    # Chunks of equal length where possible (200 parameters: 4 x 50, not
    # 3 x 64 + 8), so that like-shaped parameters share one graph.
    count = -(-len(params) // _FUSED_CHUNK)
    size = -(-len(params) // count)
    # Every flag set and chunk shape is one more graph of the same function:
    # allow more of them than torch's default of 8.
    with torch._dynamo.config.patch(recompile_limit=256, accumulated_recompile_limit=4096):
        for start in range(0, len(params), size):
            part = slice(start, start + size)
            # Own copies of the chunk's numbers: a view's offset would be one
            # more thing for the compiled code to be specialized on.
            numbers = {k: v[part].clone() for k, v in scalars.items()}
            compiled(params[part], grads[part], states[part], hyper, flags, numbers)


class Optimizer(torch.optim.Optimizer):
    """torch.optim.Optimizer plus lossopt's safety.

    ``nonfinite`` decides what a step does when any gradient holds NaN or Inf:
    'propagate' (torch's behaviour) updates anyway; 'skip' leaves every
    parameter and all state untouched, does not advance the step counter, and
    counts the step in ``skipped_steps``; 'raise' raises FloatingPointError
    naming the parameter, before anything changes.

    ``fused=True`` runs the same update compiled by torch.compile, which fuses
    each parameter's update into a single pass over memory. It costs a
    compilation (seconds, cached on disk by torch) at the second step, so it
    is opt-in; results equal the eager path's to rounding.
    """

    def __init__(
        self,
        params: Iterable[Any],
        defaults: dict[str, Any],
        *,
        nonfinite: str = "propagate",
        fused: bool | None = None,
    ) -> None:
        self.nonfinite = check_choice("nonfinite", nonfinite, NONFINITE)
        if fused not in (None, False, True):
            raise TypeError(f"fused must be a bool or None, got {fused!r}")
        self.fused = bool(fused)
        self.skipped_steps = 0
        self._eps_warned = False
        self._fallback_warned = False
        super().__init__(params, defaults)

    # -- what an algorithm defines -------------------------------------------
    def _init_state(self, param: torch.Tensor, group: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _hyper(self, group: dict[str, Any]) -> dict[str, float]:
        """The numbers the update uses; they may change between steps."""
        raise NotImplementedError

    def _flags(self, group: dict[str, Any]) -> dict[str, bool]:
        """The choices that change the update's structure."""
        raise NotImplementedError

    @staticmethod
    def _scalars(
        states: list[dict[str, Any]], h: dict[str, torch.Tensor], f: dict[str, bool]
    ) -> dict[str, torch.Tensor]:
        """Per-parameter numbers that depend on the coming step's count, as one
        vector each over the group's parameters (see :func:`next_steps`).
        ``_update`` gets parameter i's entries as 0-d tensors. Kept out of
        ``_update`` so that a compiled update only loads and scales by them."""
        return {}

    @staticmethod
    def _update(
        param: torch.Tensor,
        grad: torch.Tensor,
        state: dict[str, Any],
        h: dict[str, torch.Tensor],
        f: dict[str, bool],
        s: dict[str, torch.Tensor],
    ) -> None:
        raise NotImplementedError

    def _ready(self, state: dict[str, Any], f: dict[str, bool]) -> bool:
        """Whether a parameter's state is complete, so a compiled step can run."""
        return True

    # -- the step --------------------------------------------------------------
    def _work(self) -> list[tuple[dict[str, Any], list[int], list[torch.Tensor]]]:
        """Each group with the indices of its parameters that have a gradient and
        those parameters, after checking every gradient, so that a failing step
        changes nothing."""
        work = []
        for g, group in enumerate(self.param_groups):
            indices, params = [], []
            for i, p in enumerate(group["params"]):
                grad = p.grad
                if grad is None:
                    continue
                if grad.is_sparse:
                    raise ValueError(
                        f"{type(self).__name__} does not support sparse gradients "
                        f"({self._param_name(g, i)})"
                    )
                if grad.shape != p.shape:
                    raise ValueError(
                        f"gradient of {self._param_name(g, i)} has shape "
                        f"{tuple(grad.shape)}, expected {tuple(p.shape)}"
                    )
                indices.append(i)
                params.append(p)
            work.append((group, indices, params))
        return work

    def _param_name(self, g: int, i: int) -> str:
        names = self.param_groups[g].get("param_names")
        shape = tuple(self.param_groups[g]["params"][i].shape)
        where = f"group {g}, index {i}, shape {shape}"
        return f"parameter '{names[i]}' ({where})" if names else f"parameter at {where}"

    def _first_nonfinite(self, work) -> str | None:
        """The first parameter whose gradient holds NaN or Inf, or None.

        Sharded (DTensor) gradients are checked shard by shard and the verdict
        is agreed across ranks, so every rank skips (or raises) together."""
        grads = [_local(p.grad) for _, _, params in work for p in params]
        finite = (
            torch.stack([g.isfinite().all() for g in grads]).all() if grads else torch.tensor(True)
        )
        if any(_is_dtensor(p) for _, _, params in work for p in params):
            import torch.distributed as dist

            agreed = finite.to(torch.int32)
            dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
            finite = agreed.bool()
        if bool(finite):
            return None
        for g, (_, indices, params) in enumerate(work):
            for i, p in zip(indices, params, strict=True):
                if not bool(_local(p.grad).isfinite().all()):
                    return self._param_name(g, i)
        return "a parameter sharded on another rank"

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        work = self._work()
        if self.nonfinite != "propagate":
            culprit = self._first_nonfinite(work)
            if culprit is not None:
                if self.nonfinite == "raise":
                    raise FloatingPointError(f"non-finite gradient in {culprit}")
                self.skipped_steps += 1
                return loss
        for group, _, params in work:
            if params:
                self._step_group(group, params)
        return loss

    def _step_group(self, group: dict[str, Any], params: list[torch.Tensor]) -> None:
        flags = self._flags(group)
        hyper = self._hyper_tensors(group, params[0])
        states, fresh = [], False
        for p in params:
            state = self.state[p]
            if not state:
                state.update(self._init_state(p, group))
                fresh = True
            states.append(state)
        grads = [p.grad for p in params]
        dtypes = {p.dtype for p in params}
        sharded = any(map(_is_dtensor_type, {type(p) for p in params}))
        if torch.float16 in dtypes:
            self._warn_if_eps_underflows(hyper)
        # The first step of a parameter runs eagerly: a short run never waits
        # for a compilation, and state created lazily then exists.
        compiled = (
            self.fused
            and not fresh
            and not any(d.is_complex for d in dtypes)
            and not self._sharded_fallback(sharded)
            and all(self._ready(s, flags) for s in states)
        )
        with _replicate_scalars(sharded):
            scalars = self._scalars(states, hyper, flags)
            if compiled:
                _run_compiled(self._update, params, grads, states, hyper, flags, scalars)
            else:
                self._apply_eagerly(params, grads, states, hyper, flags, scalars)

    def _hyper_tensors(self, group, first: torch.Tensor) -> dict[str, torch.Tensor]:
        """The group's numbers as 0-d tensors in the parameters' precision
        (float32 for half precision): float64 scalars would slow compiled loops."""
        double = first.dtype in (torch.float64, torch.complex128)
        dtype = torch.float64 if double else torch.float32
        return {
            k: torch.as_tensor(v, dtype=dtype, device=first.device)
            for k, v in self._hyper(group).items()
        }

    def _apply_eagerly(self, params, grads, states, hyper, flags, scalars) -> None:
        for i, (p, grad, state) in enumerate(zip(params, grads, states, strict=True)):
            s = {k: v[i] for k, v in scalars.items()}
            if p.is_complex():
                # Complex parameters update as pairs of reals, as in torch.
                view = {k: _real(v) for k, v in state.items()}
                self._update(_real(p), _real(grad), view, hyper, flags, s)
                for key in view.keys() - state.keys():
                    state[key] = torch.view_as_complex(view[key])
            else:
                self._update(p, grad, state, hyper, flags, s)

    def _sharded_fallback(self, sharded: bool) -> bool:
        """fused=True on DTensor (FSDP2) parameters runs the eager update, which
        is exact; say so once rather than compile through DTensor dispatch."""
        if not sharded:
            return False
        if not self._fallback_warned:
            self._fallback_warned = True
            warnings.warn(
                f"{type(self).__name__}(fused=True): DTensor (sharded) parameters take "
                "the eager update path; results are the same, only slower",
                RuntimeWarning,
                stacklevel=_USER_FRAME,
            )
        return True

    def _warn_if_eps_underflows(self, hyper) -> None:
        """Called for a group that holds float16 parameters."""
        eps = hyper.get("eps")
        if eps is None or self._eps_warned or not float(eps) > 0:
            return
        if float(eps.to(torch.float16)) == 0:
            self._eps_warned = True
            warnings.warn(
                f"{type(self).__name__}: eps={float(eps):g} is 0 in float16, so the "
                "denominator can be 0 where a gradient's history is 0 (division by "
                "zero); use eps >= 6e-8 with float16 parameters, or keep float32 "
                "master weights",
                RuntimeWarning,
                stacklevel=_USER_FRAME,
            )

    # -- checkpoints -------------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's load_state_dict, after checking that the checkpoint fits.

        The group count, each group's parameter count and every state tensor's
        shape are checked against the parameters first; a mismatch raises a
        ValueError listing them and leaves the optimizer exactly as it was.
        When both the checkpoint and the optimizer name their parameters
        (``param_names``, from ``named_parameters()``, torch >= 2.5), state is
        matched by name, so a checkpoint still loads after parameters were
        reordered; names that do not match are listed in the error.
        """
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
        super().load_state_dict(state_dict)

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
