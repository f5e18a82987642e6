"""Measuring side by side: interleaved repetitions, medians, peak memory of a
fresh process per variant, and the in-place triad bandwidth of this machine."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_variants(
    variants: dict[str, Callable[[], object]],
    reps: int,
    device: str,
    budget_s: float = 0.0,
    max_reps: int = 400,
) -> tuple[dict[str, float], dict[str, float]]:
    """Median seconds per variant over interleaved repetitions (the order turns
    each round, so drifts in machine load hit every variant alike), and each
    variant's first two calls (warm-up and any compilation) apart.

    At least ``reps`` rounds; where rounds are short, as many more (up to
    ``max_reps``) as fit in ``budget_s``: a millisecond step on a shared
    machine needs hundreds of samples for a steady median."""
    first = {}
    for name, fn in variants.items():
        sync(device)
        start = time.perf_counter()
        fn()
        fn()  # a fused optimizer compiles at its second step
        sync(device)
        first[name] = time.perf_counter() - start
    samples: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    rep = 0
    while rep < reps:
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            sync(device)
            start = time.perf_counter()
            variants[name]()
            sync(device)
            samples[name].append(time.perf_counter() - start)
        rep += 1
        if rep == 1 and budget_s:
            round_s = sum(s[0] for s in samples.values())
            reps = max(reps, min(max_reps, int(budget_s / max(round_s, 1e-9))))
    return {name: statistics.median(s) for name, s in samples.items()}, first


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def peak_growth_here(fn: Callable[[], object], device: str, *, warmup: bool = True) -> int:
    """Peak memory growth of one call, in bytes, in this process: on CPU the
    peak resident set (reset through /proc/self/clear_refs) above the resident
    set before the call; on CUDA, torch's allocator peak."""
    if warmup:
        fn()  # first-call allocations (caches, compiled code) are not the call's
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets VmHWM to the current resident set
    base = _rss_kib("VmRSS:")
    fn()
    return max(0, _rss_kib("VmHWM:") - base) * 1024


def peak_growth(case: str, variant: str, size: str, device: str) -> int | None:
    """Peak memory growth of one call of a variant, measured in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", case, variant, size, device],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        print(f"  memory of {case}/{variant} failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_bytes"]


def profile(case: str, size: str, device: str, path: Path, *, sweep_row: tuple = ()) -> None:
    """Profile every variant of a case into ``path``, in a fresh process; with
    ``sweep_row`` (tier, shape), the sweep's row of that case."""
    where = ["--sweep", case, *sweep_row] if sweep_row else [case, size]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.profile", *where, device, str(path)],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        print(f"  profile of {case} failed: {done.stderr.strip()[-300:]}", file=sys.stderr)


def triad(device: str, elements: int = 1 << 26) -> Callable[[], object]:
    """The in-place triad a += s * b (read a and b, write a: 12 bytes per element)."""
    a = torch.rand(elements, device=device)
    b = torch.rand(elements, device=device)
    return lambda: a.add_(b, alpha=0.5)


def triad_bandwidth(device: str, elements: int = 1 << 26, reps: int = 7) -> float:
    """Bytes per second of the in-place triad."""
    seconds, _ = time_variants({"triad": triad(device, elements)}, reps, device)
    return 3 * 4 * elements / seconds["triad"]
