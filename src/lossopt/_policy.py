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
import os
import threading
from collections.abc import Iterator

import torch


class _Forced(threading.local):
    value = False  # a class default: a thread that never set it reads it without a miss


_forced = _Forced()


def forced() -> bool:
    """Whether :func:`accelerator_path` is in force."""
    return _forced.value


def on_accelerator(device: torch.device | str) -> bool:
    """True for any device but the CPU (and meta), or when forced by
    :func:`accelerator_path`."""
    if _forced.value:
        return True
    kind = torch.device(device).type
    return kind not in ("cpu", "meta")


@contextlib.contextmanager
def accelerator_path(enabled: bool = True) -> Iterator[None]:
    """Run lossopt's accelerator path (no host synchronisation, a constant
    number of operations per call) on whatever device the tensors are on."""
    previous = _forced.value
    _forced.value = bool(enabled)
    try:
        yield
    finally:
        _forced.value = previous


# -- losses ----------------------------------------------------------------------
# Logit elements (rows x classes) from which lossopt's one-pass cross-entropy
# and KL beat torch's kernels on the CPU, forward + backward, float32
# (``python -m benchmarks --sweep``): below it the call overhead of a custom
# autograd Function and the block loop outweigh the memory saved, and torch's
# fused log_softmax + nll_loss is at the memory limit. Devices not measured
# use torch's kernel at every size.
LOSS_CROSSOVER: dict[str, dict[str, float]] = {
    "cross_entropy": {"cpu": 1 << 21},
    "kl_div": {"cpu": 1 << 21},
    "linear_cross_entropy": {"cpu": 1 << 21},
}

# Elements per block of rows in the one-pass losses: a block of logits and its
# probabilities stay in cache, so each pass reads the logits from memory once.
LOSS_BLOCK_ELEMENTS = 1 << 19
# Logit elements per chunk of linear_cross_entropy (16 MB in float32), and at
# least this many rows: each chunk reads W twice and reads and writes W's
# gradient once, so with fewer rows that W-sized traffic sets the pace (at
# N=8192, H=1024, V=128256, 64-row chunks took 60-76 s against 47-48 s for 256).
LINEAR_CHUNK_ELEMENTS = 1 << 22
LINEAR_MIN_CHUNK_ROWS = 256
# Anchors mined at a time in batch_triplet_loss: the sorts and searches of a
# block need a few times block x B memory.
MINE_BLOCK_ELEMENTS = 1 << 22
# batch_hard up to this batch size differentiates the whole distance matrix
# (one matrix, two reductions: fewest operations); above it, only the 2B mined
# distances, so memory stays a few B x B matrices at B = 8192.
HARD_MATRIX_MAX_BATCH = 1024


def lossopt_kernel(loss: str, numel: int, device_type: str) -> bool:
    """Whether ``loss`` over ``numel`` elements on a device of this type takes
    lossopt's own fast path (True) or torch's kernel (False)."""
    if _forced.value:
        return False  # the accelerator path: torch's kernels, not measured here
    crossover = LOSS_CROSSOVER[loss].get(device_type)
    return crossover is not None and numel >= crossover


# On an accelerator, a bad class index is found without stopping the host: the
# check is off by default there (torch's kernel asserts on device), and
# LOSSOPT_SYNC_CHECKS=1 or sync_checks(True) turns on lossopt's synchronous,
# named checks for debugging. CPU tensors are always checked at once.
_sync_checks = os.environ.get("LOSSOPT_SYNC_CHECKS", "") not in ("", "0")


def sync_checks(enabled: bool | None = None) -> bool:
    """Get, or set, whether accelerator tensors get lossopt's synchronous input
    checks (named errors at the cost of a host synchronisation per call)."""
    global _sync_checks
    if enabled is not None:
        _sync_checks = bool(enabled)
    return _sync_checks


# -- Optimizers (lossopt.optim) ------------------------------------------------
# Tensors per compiled call of fused=True, at most: large enough to amortise
# the call, small enough that a model with thousands of parameters compiles a
# few graphs, not one huge one.
OPTIM_FUSED_CHUNK = 64
# On CPU the multi-tensor form (torch._foreach_*) wins while the per-parameter
# Python overhead dominates: measured with torch.optim's own two forms on the
# 2-core development machine (one thread, median of interleaved rounds),
# foreach is 1.3-1.9x faster on 200 tensors of 1000 elements and 1.05-2x
# slower on 24 tensors of 200k, where its whole-list temporaries fall out of
# cache. Groups whose mean tensor is at most this many elements take foreach
# on CPU; larger ones the per-parameter loop.
OPTIM_FOREACH_CPU_MAX_NUMEL = 1 << 15


def optim_foreach(device: torch.device | str, mean_numel: float) -> bool:
    """Whether an optimizer step whose ``foreach`` is not given takes the
    multi-tensor form: always on an accelerator (a constant number of kernel
    launches per group), on CPU below the measured crossover."""
    return on_accelerator(device) or mean_numel <= OPTIM_FOREACH_CPU_MAX_NUMEL
