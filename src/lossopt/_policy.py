"""Where lossopt decides which path a computation takes, in one place.

Two kinds of choice live here:

- Whether a tensor's device is treated as an accelerator. On an accelerator
  every dispatched operation is a kernel launch and every read of a device
  value into Python (``.item()``, ``bool()``, ``int()``) stalls the host, so
  hot paths there use a constant number of operations per call and never
  synchronise. CPU tensors take the CPU path, where a read is free and bad
  input is reported at once. :func:`accelerator_path` forces the accelerator
  path on CPU tensors, so tests can count its operations without a GPU.
- The block and chunk sizes and the measured crossovers between torch's own
  kernels and lossopt's equation-level fast paths (see ``benchmarks --sweep``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

_forced = threading.local()


def on_accelerator(device: torch.device | str) -> bool:
    """True for any device but the CPU (and meta), or when forced by
    :func:`accelerator_path`."""
    if getattr(_forced, "value", False):
        return True
    kind = torch.device(device).type
    return kind not in ("cpu", "meta")


@contextlib.contextmanager
def accelerator_path(enabled: bool = True) -> Iterator[None]:
    """Run lossopt's accelerator path (no host synchronisation, a constant
    number of operations per call) on whatever device the tensors are on."""
    previous = getattr(_forced, "value", False)
    _forced.value = enabled
    try:
        yield
    finally:
        _forced.value = previous
