"""The operand types one update rule runs on, besides plain tensors.

An algorithm's ``_update`` is written once in terms of tensor methods
(``add_``, ``mul_``, ``lerp_``, ``addcmul_``, ``addcdiv_``, ``sqrt``, ...).
:class:`TensorList` gives those methods to a whole list of tensors as
``torch._foreach_*`` calls (torch's multi-tensor form, reached through
``lossopt._compat``); :class:`Traced` gives them to one tensor inside
torch.compile (the compiled form, ``fused=True``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from lossopt._compat import foreach


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
        return self._like(foreach.neg(self.tensors))

    def __add__(self, other: Any) -> TensorList:
        return self._like(foreach.add(self.tensors, self._addend(other)))

    __radd__ = __add__

    def __sub__(self, other: Any) -> TensorList:
        return self._like(foreach.sub(self.tensors, _args(other)))

    def __rsub__(self, other: Any) -> TensorList:
        out = foreach.neg(self.tensors)
        foreach.add_(out, self._addend(other))
        return self._like(out)

    def __mul__(self, other: Any) -> TensorList:
        return self._like(foreach.mul(self.tensors, self._scalar(other)))

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> TensorList:
        return self._like(foreach.div(self.tensors, self._scalar(other)))

    def __rtruediv__(self, other: Any) -> TensorList:
        out = foreach.reciprocal(self.tensors)
        foreach.mul_(out, self._scalar(other))
        return self._like(out)

    def __pow__(self, exponent: Any) -> TensorList:
        return self._like(foreach.pow(self.tensors, _args(exponent)))

    def __rpow__(self, base: Any) -> TensorList:
        return self._like(foreach.pow(base, self.tensors))

    def add(self, other: Any, *, alpha: Any = 1) -> TensorList:
        if _is_tensor(alpha):
            return self._like(foreach.add(self.tensors, _product(other, alpha)))
        return self._like(foreach.add(self.tensors, _args(other), alpha=alpha))

    def addcmul(self, a: TensorList, b: TensorList, *, value: Any = 1) -> TensorList:
        if _is_tensor(value):  # value * a * b, in the kernel's order
            return self._like(foreach.addcmul(self.tensors, _product(a, value), b.tensors))
        return self._like(foreach.addcmul(self.tensors, a.tensors, b.tensors, value))

    def sqrt(self) -> TensorList:
        return self._like(foreach.sqrt(self.tensors))

    def clone(self) -> TensorList:
        return self._like([t.clone() for t in self.tensors])

    # in place
    def add_(self, other: Any, *, alpha: Any = 1) -> TensorList:
        if isinstance(other, TensorList) and _is_tensor(alpha):
            foreach.add_(self.tensors, _product(other, alpha))
        elif isinstance(other, TensorList):
            foreach.add_(self.tensors, other.tensors, alpha=alpha)
        else:
            foreach.add_(self.tensors, self._addend(other if alpha == 1 else other * alpha))
        return self

    def mul_(self, other: Any) -> TensorList:
        foreach.mul_(self.tensors, self._scalar(other))
        return self

    def div_(self, other: Any) -> TensorList:
        foreach.div_(self.tensors, self._scalar(other))
        return self

    def sqrt_(self) -> TensorList:
        foreach.sqrt_(self.tensors)
        return self

    def lerp_(self, end: TensorList, weight: Any) -> TensorList:
        if _is_tensor(weight):  # the list overload takes 0-d weights
            weight = [weight] * len(self.tensors)
        foreach.lerp_(self.tensors, end.tensors, weight)
        return self

    def addcmul_(self, a: TensorList, b: TensorList, *, value: Any = 1) -> TensorList:
        if _is_tensor(value):  # value * a * b, in the kernel's order
            foreach.addcmul_(self.tensors, _product(a, value), b.tensors)
        else:
            foreach.addcmul_(self.tensors, a.tensors, b.tensors, value)
        return self

    def addcdiv_(self, a: TensorList, b: TensorList, *, value: Any = 1) -> TensorList:
        if _is_tensor(value):  # value * (a / b), in the kernel's order
            quotient = foreach.div(a.tensors, b.tensors)
            foreach.mul_(quotient, value)
            foreach.add_(self.tensors, quotient)
        else:
            foreach.addcdiv_(self.tensors, a.tensors, b.tensors, value)
        return self

    def clamp_min_(self, other: TensorList) -> TensorList:
        foreach.maximum_(self.tensors, other.tensors)
        return self


def _product(other: Any, factor: torch.Tensor) -> Any:
    """``other * factor`` for a 0-d tensor factor: one foreach operation over a
    TensorList, or the product of plain operands."""
    if isinstance(other, TensorList):
        return foreach.mul(other.tensors, factor)
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
