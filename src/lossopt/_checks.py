"""Argument checks shared by the losses and the optimizers.

Every check raises before anything is computed or changed, with a message that
names the argument and the offending value, so that no C++ assertion text ever
reaches a user.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def check_choice(name: str, value: Any, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_tensor(name: str, value: Any) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_floating(name: str, value: Any) -> torch.Tensor:
    check_tensor(name, value)
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    return value


# The dtypes of integer class indices and labels (not bool): the one rule that
# check_integer applies and one-expression guards test by membership.
INTEGER_DTYPES = frozenset(
    dtype
    for dtype in vars(torch).values()
    if isinstance(dtype, torch.dtype)
    and not (dtype.is_floating_point or dtype.is_complex or dtype == torch.bool)
)


def check_integer(name: str, value: Any) -> torch.Tensor:
    check_tensor(name, value)
    if value.dtype not in INTEGER_DTYPES:
        raise TypeError(f"{name} must hold integer class indices, got dtype {value.dtype}")
    return value


def floating_of_one_shape(a: Any, b: Any) -> bool:
    """Whether a and b are floating-point tensors of one shape, from metadata
    in one expression: the common call of a loss, which then skips the named
    checks (:func:`check_floating`, :func:`check_same_shape`)."""
    return (
        isinstance(a, torch.Tensor)
        and isinstance(b, torch.Tensor)
        and a.is_floating_point()
        and b.is_floating_point()
        and a.shape == b.shape
    )


def check_same_shape(name_a: str, a: torch.Tensor, name_b: str, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_b} shape {tuple(b.shape)} must equal {name_a} shape {tuple(a.shape)} "
            "(lossopt does not broadcast silently)"
        )


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A real number inside [low, high]; either end may be open or absent."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(value.shape)}")
        number = value.item()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    else:
        number = value
    if number != number:
        raise ValueError(f"{name} must not be NaN, got {value!r}")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        interval = f"{left}{lo}, {hi}{right}"
        raise ValueError(f"{name} must lie in {interval}, got {value!r}")
    return value
