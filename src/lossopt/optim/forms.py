"""The operand types one update rule runs on, besides plain tensors.

An algorithm's ``_update`` is written once in terms of tensor methods
(``add_``, ``mul_``, ``lerp_``, ``addcmul_``, ``addcdiv_``, ``sqrt``, ...).
:class:`TensorList` gives those methods to a whole list of tensors as
``torch._foreach_*`` calls (torch's multi-tensor form); :class:`Traced` gives
them to one tensor inside torch.compile (the compiled form, ``fused=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

from lossopt import _compat
from lossopt._policy import OPTIM_FUSED_CHUNK


def _args(other: Any) -> Any:
    return other.tensors if isinstance(other, TensorList) else other


def _is_tensor(number: Any) -> bool:
    """Whether a number is a 0-d tensor (a tensor ``lr`` or ``betas``, or the
    compiled and capturable forms' numbers). foreach's ``alpha=`` and
    ``value=`` take only numbers (a tensor ``value=`` is read as a packed 1-d
    list), so such a number enters as an explicit product."""
    return isinstance(number, torch.Tensor)


class TensorList:
    """A list of tensors that an update rule treats as one tensor: each method
    a rule uses is one ``torch._foreach_*`` call over the whole list. A number
    argument may be a Python number, a list of numbers (one per tensor) or
    another TensorList.

    ``number_dtype``, given for a list of CPU tensors of that one dtype
    (float32 or float64), turns a Python number into a 0-d tensor of the dtype
    once per call. On the CPU, foreach runs a loop over the tensors that would
    otherwise wrap and cast the number anew for every tensor: 3-4x the time of
    the arithmetic itself over 200 small tensors, with bitwise the same result.
    """

    __slots__ = ("tensors", "number_dtype")
    is_sparse = False

    def __init__(
        self, tensors: Iterable[torch.Tensor], number_dtype: torch.dtype | None = None
    ) -> None:
        self.tensors = list(tensors)
        self.number_dtype = number_dtype

    def __len__(self) -> int:
        return len(self.tensors)

    def _like(self, tensors: list[torch.Tensor]) -> TensorList:
        return TensorList(tensors, self.number_dtype)

    def _scalar(self, other: Any) -> Any:
        """A number as a foreach operation takes it fastest here."""
        if isinstance(other, TensorList):
            return other.tensors
        if self.number_dtype is not None and type(other) in (float, int):
            return torch.tensor(other, dtype=self.number_dtype)
        return other

    def _addend(self, other: Any) -> Any:
        """``_scalar`` for the add family, whose 0-d Tensor overload is not the
        fast one: the 0-d tensor repeated as a list."""
        if self.number_dtype is not None and type(other) in (float, int):
            return [torch.tensor(other, dtype=self.number_dtype)] * len(self.tensors)
        return _args(other)

    # out of place
    def __neg__(self) -> TensorList:
        return self._like(torch._foreach_neg(self.tensors))

    def __add__(self, other: Any) -> TensorList:
        return self._like(torch._foreach_add(self.tensors, self._addend(other)))

    __radd__ = __add__

    def __sub__(self, other: Any) -> TensorList:
        return self._like(torch._foreach_sub(self.tensors, _args(other)))

    def __rsub__(self, other: Any) -> TensorList:
        out = torch._foreach_neg(self.tensors)
        torch._foreach_add_(out, self._addend(other))
        return self._like(out)

    def __mul__(self, other: Any) -> TensorList:
        return self._like(torch._foreach_mul(self.tensors, self._scalar(other)))

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> TensorList:
        return self._like(torch._foreach_div(self.tensors, self._scalar(other)))

    def __rtruediv__(self, other: Any) -> TensorList:
        out = torch._foreach_reciprocal(self.tensors)
        torch._foreach_mul_(out, self._scalar(other))
        return self._like(out)

    def __pow__(self, exponent: Any) -> TensorList:
        return self._like(torch._foreach_pow(self.tensors, _args(exponent)))

    def __rpow__(self, base: Any) -> TensorList:
        return self._like(torch._foreach_pow(base, self.tensors))

    def add(self, other: Any, *, alpha: Any = 1) -> TensorList:
        if _is_tensor(alpha):
            return self._like(torch._foreach_add(self.tensors, _product(other, alpha)))
        return self._like(torch._foreach_add(self.tensors, _args(other), alpha=alpha))

    def addcmul(self, a: TensorList, b: TensorList, *, value: Any = 1) -> TensorList:
        if _is_tensor(value):  # value * a * b, in the kernel's order
            return self._like(torch._foreach_addcmul(self.tensors, _product(a, value), b.tensors))
        return self._like(torch._foreach_addcmul(self.tensors, a.tensors, b.tensors, value))

    def sqrt(self) -> TensorList:
        return self._like(torch._foreach_sqrt(self.tensors))

    def clone(self) -> TensorList:
        return self._like([t.clone() for t in self.tensors])

    # in place
    def add_(self, other: Any, *, alpha: Any = 1) -> TensorList:
        if isinstance(other, TensorList) and _is_tensor(alpha):
            torch._foreach_add_(self.tensors, _product(other, alpha))
        elif isinstance(other, TensorList):
            torch._foreach_add_(self.tensors, other.tensors, alpha=alpha)
        else:
            torch._foreach_add_(self.tensors, self._addend(other if alpha == 1 else other * alpha))
        return self

    def mul_(self, other: Any) -> TensorList:
        torch._foreach_mul_(self.tensors, self._scalar(other))
        return self

    def div_(self, other: Any) -> TensorList:
        torch._foreach_div_(self.tensors, self._scalar(other))
        return self

    def sqrt_(self) -> TensorList:
        torch._foreach_sqrt_(self.tensors)
        return self

    def lerp_(self, end: TensorList, weight: Any) -> TensorList:
        if _is_tensor(weight):  # the list overload takes 0-d weights
            weight = [weight] * len(self.tensors)
        torch._foreach_lerp_(self.tensors, end.tensors, weight)
        return self

    def addcmul_(self, a: TensorList, b: TensorList, *, value: Any = 1) -> TensorList:
        if _is_tensor(value):  # value * a * b, in the kernel's order
            torch._foreach_addcmul_(self.tensors, _product(a, value), b.tensors)
        else:
            torch._foreach_addcmul_(self.tensors, a.tensors, b.tensors, value)
        return self

    def addcdiv_(self, a: TensorList, b: TensorList, *, value: Any = 1) -> TensorList:
        if _is_tensor(value):  # value * (a / b), in the kernel's order
            quotient = torch._foreach_div(a.tensors, b.tensors)
            torch._foreach_mul_(quotient, value)
            torch._foreach_add_(self.tensors, quotient)
        else:
            torch._foreach_addcdiv_(self.tensors, a.tensors, b.tensors, value)
        return self

    def clamp_min_(self, other: TensorList) -> TensorList:
        torch._foreach_maximum_(self.tensors, other.tensors)
        return self


def _product(other: Any, factor: torch.Tensor) -> Any:
    """``other * factor`` for a 0-d tensor factor: one foreach operation over a
    TensorList, or the product of plain operands."""
    if isinstance(other, TensorList):
        return torch._foreach_mul(other.tensors, factor)
    return other * factor


def _raw(other: Any) -> Any:
    return other.tensor if isinstance(other, Traced) else other


class Traced:
    """One tensor of the compiled form, where the numbers are 0-d tensors.
    torch.compile (2.13) keeps the first call's value of a tensor passed as
    ``alpha=`` or ``value=``, so here those become explicit products, which
    Inductor fuses into the same single loop anyway. The other methods are
    the tensor's own."""

    __slots__ = ("tensor",)
    is_sparse = False

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor

    def __neg__(self) -> Traced:
        return Traced(-self.tensor)

    def add(self, other: Any, *, alpha: Any = 1) -> Traced:
        return Traced(self.tensor + _raw(other) * alpha)

    def addcmul(self, a: Traced, b: Traced, *, value: Any = 1) -> Traced:
        return Traced(self.tensor + a.tensor * b.tensor * value)

    def sqrt(self) -> Traced:
        return Traced(self.tensor.sqrt())

    def clone(self) -> Traced:
        return Traced(self.tensor.clone())

    def add_(self, other: Any, *, alpha: Any = 1) -> Traced:
        self.tensor.add_(_raw(other) * alpha)
        return self

    def mul_(self, other: Any) -> Traced:
        self.tensor.mul_(_raw(other))
        return self

    def div_(self, other: Any) -> Traced:
        self.tensor.div_(_raw(other))
        return self

    def sqrt_(self) -> Traced:
        self.tensor.sqrt_()
        return self

    def lerp_(self, end: Traced, weight: Any) -> Traced:
        self.tensor.lerp_(end.tensor, weight)
        return self

    def addcmul_(self, a: Traced, b: Traced, *, value: Any = 1) -> Traced:
        self.tensor.add_(a.tensor * b.tensor * value)
        return self

    def addcdiv_(self, a: Traced, b: Traced, *, value: Any = 1) -> Traced:
        self.tensor.add_(a.tensor / b.tensor * value)
        return self

    def clamp_min_(self, other: Traced) -> Traced:
        self.tensor.clamp_min_(other.tensor)
        return self


_COMPILED: dict[Callable[..., None], Callable[..., None]] = {}


def _compiled(update: Callable[..., None]) -> Callable[..., None]:
    compiled = _COMPILED.get(update)
    if compiled is None:

        def apply_all(params, grads, states, hyper, options, at):
            for i, (p, g, state) in enumerate(zip(params, grads, states, strict=True)):
                numbers = None if at is None else type(at)(*(v[i] for v in at))
                slots = {k: Traced(v) for k, v in state.items() if k != "step"}
                update(Traced(p), Traced(g), slots, hyper, options, numbers)

        # Inductor's size asserts on every input repeat what the guards check.
        compiled = _COMPILED[update] = torch.compile(
            _compat.own_code(apply_all), dynamic=False, options={"size_asserts": False}
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
