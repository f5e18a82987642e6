"""Exact counts of what a computation dispatches, for tests that need no GPU.

On an accelerator each dispatched ATen operation is a kernel launch and each
``aten::_local_scalar_dense`` is a host synchronisation (``.item()``,
``bool(t)``, ``int(t)``; ``.tolist()`` of a CPU tensor reads memory without
dispatching, so a test must not rely on it being counted). Counting them on CPU tensors is exact
and deterministic, unlike a timing.
"""

from __future__ import annotations

from collections import Counter

from torch.utils._python_dispatch import TorchDispatchMode

SYNC = "aten._local_scalar_dense.default"
# Operations that only make a new view of existing memory, or wrap a Python
# number: no kernel runs for them on an accelerator.
NO_KERNEL = {
    "alias",
    "as_strided",
    "detach",
    "expand",
    "permute",
    "scalar_tensor",
    "select",
    "slice",
    "squeeze",
    "t",
    "transpose",
    "unsqueeze",
    "view",
    "_unsafe_view",
    "_reshape_alias",
}


class DispatchCounter(TorchDispatchMode):
    """Counts every ATen operation dispatched while active (after autograd)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func)] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.ops.values())

    @property
    def kernels(self) -> int:
        """Operations that launch a kernel on an accelerator (no views)."""
        return sum(n for op, n in self.ops.items() if op.split(".")[1] not in NO_KERNEL)

    @property
    def syncs(self) -> int:
        return self.ops[SYNC]


def count(fn, *args, **kwargs) -> tuple[object, DispatchCounter]:
    """Run fn(*args, **kwargs) under a DispatchCounter; return (result, counter)."""
    with DispatchCounter() as counter:
        result = fn(*args, **kwargs)
    return result, counter
