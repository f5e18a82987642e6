"""The one adapter between lossopt and torch's private or version-dependent names.

Everything here detects what the installed torch offers (the declared floor is
torch 2.4) and, where a name is missing, falls back to something that still
gives correct results, saying so once with a warning. No other module touches
``torch._dynamo``, a code object's ``replace()``, DTensor's module path or
torch.optim's hook tables.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

import torch

_warned: set[str] = set()

# Files whose frames a warning skips, to name the user's line that led to it.
_INTERNAL = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(torch.__file__)) + os.sep,
)


def warn(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """Warn at the first frame outside lossopt and torch (the user's call),
    however many of their frames (hooks, no_grad wrappers, overrides) lie in
    between: ``skip_file_prefixes`` where Python has it (3.12), else the
    ``stacklevel`` of that frame, found by walking the stack."""
    if sys.version_info >= (3, 12):
        warnings.warn(message, category, skip_file_prefixes=_INTERNAL)
        return
    frame, level = sys._getframe(1), 2  # stacklevel 2: the frame that called this one
    while frame is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def _fallback(feature: str, consequence: str) -> None:
    if feature not in _warned:
        _warned.add(feature)
        warn(f"lossopt: this torch ({torch.__version__}) lacks {feature}; {consequence}")


# -- torch.compile -------------------------------------------------------------
def compile_limits(graphs: int, total: int) -> contextlib.AbstractContextManager[None]:
    """Allow ``graphs`` compiled graphs per code object and ``total`` in all
    (torch's defaults are 8 and 256). torch renamed the settings in 2.6
    (``cache_size_limit`` -> ``recompile_limit``); either works here."""
    try:
        config = torch._dynamo.config
    except AttributeError:  # pragma: no cover - torch without dynamo
        _fallback("torch._dynamo.config", "compiled steps use torch's recompile limits")
        return contextlib.nullcontext()
    names = {}
    for new, old, value in (
        ("recompile_limit", "cache_size_limit", graphs),
        ("accumulated_recompile_limit", "accumulated_cache_size_limit", total),
    ):
        for name in (new, old):
            if hasattr(config, name):
                names[name] = value
                break
    if not names:
        _fallback("torch._dynamo's recompile limits", "compiled steps use torch's defaults")
        return contextlib.nullcontext()
    return config.patch(**names)


def inductor_options() -> dict[str, Any]:
    """Inductor options for lossopt's compiled steps: without the size asserts
    on every input (they repeat what dynamo's guards check), where this
    torch's Inductor has that setting."""
    try:
        from torch._inductor import config
    except ImportError:  # pragma: no cover - torch without Inductor
        return {}
    return {"size_asserts": False} if hasattr(config, "size_asserts") else {}


def own_code(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give ``fn`` a code object of its own. torch.compile keeps its graphs per
    code object and checks them in turn on every call, so closures made from
    one ``def`` would otherwise pile their graphs onto one list."""
    try:
        fn.__code__ = fn.__code__.replace()
    except (AttributeError, TypeError):  # pragma: no cover - other Python
        _fallback("code.replace()", "compiled steps of different optimizers share graphs")
    return fn


# -- torch's multi-tensor operations ----------------------------------------------
# torch.optim's own multi-tensor form: torch._foreach_* are private names, so
# lossopt's optimizers reach them only here, as ``foreach.add_`` and so on.
# Every operation and overload used (a 0-d Tensor scalar, a list of 0-d lerp
# weights) exists from the floor, torch 2.4, on.
_FOREACH = (
    "add",
    "add_",
    "addcdiv_",
    "addcmul",
    "addcmul_",
    "div",
    "div_",
    "lerp_",
    "maximum_",
    "mul",
    "mul_",
    "neg",
    "norm",
    "pow",
    "reciprocal",
    "sqrt",
    "sqrt_",
    "sub",
)
foreach = types.SimpleNamespace(**{name: getattr(torch, f"_foreach_{name}") for name in _FOREACH})


# -- torch's loss kernels, called without their Python wrappers ------------------
# torch.nn.functional's wrappers spend about a microsecond per call on checks
# for __torch_function__ overrides and reduction strings; a small loss call
# that lossopt has already found to be on plain tensors calls the bindings
# beneath them. Reductions are torch's enum: none 0, mean 1, sum 2.
def _binding(name: str, wrapper: Callable[..., Any]) -> Callable[..., Any]:
    kernel = getattr(torch._C._nn, name, None)
    if kernel is None:  # pragma: no cover - another torch
        _fallback(f"torch._C._nn.{name}", "small losses call torch.nn.functional's wrapper")
    return kernel or wrapper


def _reduction_name(code: int) -> str:
    """torch's reduction number as the functional wrappers take it (only a
    torch without the kernel bindings needs it)."""
    from lossopt.losses._reduction import REDUCTIONS  # the one list of the names

    return REDUCTIONS[code]


def _cross_entropy_wrapper(input, target, weight, reduction, ignore_index, label_smoothing):
    return torch.nn.functional.cross_entropy(
        input,
        target,
        weight,
        None,
        ignore_index,
        None,
        _reduction_name(reduction),
        label_smoothing,
    )


def _nll_wrapper(input, target, weight, reduction, ignore_index):
    return torch.nn.functional.nll_loss(
        input, target, weight, None, ignore_index, None, _reduction_name(reduction)
    )


def _pointwise_wrapper(name: str, threshold: str | None = None) -> Callable[..., Any]:
    def wrapper(input, target, reduction, *value):
        options = {threshold: value[0]} if threshold else {}
        loss = getattr(torch.nn.functional, name)
        return loss(input, target, reduction=_reduction_name(reduction), **options)

    return wrapper


cross_entropy_loss = _binding("cross_entropy_loss", _cross_entropy_wrapper)
nll_loss_nd = _binding("nll_loss_nd", _nll_wrapper)
linear = _binding("linear", torch.nn.functional.linear)
# The element-wise losses' kernels, for inputs of one shape (the functional
# wrappers broadcast first: one more dispatched operation per call).
l1_loss = _binding("l1_loss", _pointwise_wrapper("l1_loss"))
mse_loss = _binding("mse_loss", _pointwise_wrapper("mse_loss"))
huber_loss = _binding("huber_loss", _pointwise_wrapper("huber_loss", "delta"))
smooth_l1_loss = _binding("smooth_l1_loss", _pointwise_wrapper("smooth_l1_loss", "beta"))


def _no_transforms() -> bool:  # pragma: no cover - torch without functorch
    return False


# Whether a torch.func transform (grad, vmap, jvp, ...) is running: torch's C
# function itself, called on every small loss call.
transforms_active = getattr(torch._C, "_are_functorch_transforms_active", _no_transforms)


def apply_function(function: type[torch.autograd.Function], *args: Any) -> Any:
    """``function.apply(*args)`` for a Function whose forward takes every
    argument positionally. torch's ``apply`` binds the arguments with
    ``inspect.signature`` on every call when ``setup_context`` is defined
    (tens of microseconds, a tenth of a small loss); outside torch.func
    transforms that binding changes nothing, so the call goes to the C
    ``apply`` beneath it."""
    if transforms_active():
        return function.apply(*args)
    try:
        return super(torch.autograd.Function, function).apply(*args)
    except AttributeError:  # pragma: no cover - another torch
        _fallback("autograd.Function's C apply", "custom Functions bind their arguments per call")
        return function.apply(*args)


# -- DTensor (FSDP2) ------------------------------------------------------------
_DTENSOR: Any = None  # the DTensor class, once torch's module for it is loaded


def _dtensor_class() -> type | None:
    """DTensor, if any code has imported it (no DTensor can exist otherwise,
    so lossopt never pays for importing torch.distributed.tensor itself)."""
    global _DTENSOR
    if _DTENSOR is None:
        for module in ("torch.distributed.tensor", "torch.distributed._tensor"):
            cls = getattr(sys.modules.get(module), "DTensor", None)
            if isinstance(cls, type):
                _DTENSOR = cls
                break
    return _DTENSOR


def is_dtensor_type(kind: type) -> bool:
    cls = _DTENSOR if _DTENSOR is not None else _dtensor_class()
    return cls is not None and issubclass(kind, cls)


def is_dtensor(t: Any) -> bool:
    return is_dtensor_type(type(t))


def local(t: torch.Tensor) -> torch.Tensor:
    """A DTensor's local shard; any other tensor itself."""
    return t.to_local() if is_dtensor(t) else t


def implicit_replication() -> contextlib.AbstractContextManager[None]:
    """Let plain tensors mix with DTensors as replicated values."""
    for module in (
        "torch.distributed.tensor.experimental",
        "torch.distributed._tensor.experimental",
    ):
        try:
            return importlib.import_module(module).implicit_replication()
        except (ImportError, AttributeError):
            continue
    _fallback("implicit_replication", "sharded parameters may reject plain tensor operands")
    return contextlib.nullcontext()


# -- torch.optim internals ------------------------------------------------------
@contextlib.contextmanager
def load_pre_hooks_run(optimizer: torch.optim.Optimizer) -> Iterator[list[Callable]]:
    """The optimizer's load_state_dict pre-hooks, held back from torch's
    load_state_dict while the block runs, so a subclass can run them itself,
    check their result, and then call torch's load."""
    name = "_optimizer_load_state_dict_pre_hooks"
    hooks = getattr(optimizer, name, None)
    if not isinstance(hooks, dict):
        _fallback("the optimizer's load pre-hook table", "checks run before the pre-hooks")
        yield []
        return
    setattr(optimizer, name, OrderedDict())
    try:
        yield list(hooks.values())
    finally:
        setattr(optimizer, name, hooks)
