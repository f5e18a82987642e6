"""Where a variant's time goes: the operators torch's profiler sees and the
Python functions that cProfile sees, over the same warm calls.

Written by `python -m benchmarks --profile` as one text file per case, so a
ratio in the table can be read against the work behind it (kernel time,
compiled-call overhead, Python bookkeeping).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable

import torch

ROWS = 12


def _operators(fn: Callable[[], object], calls: int) -> str:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(calls):
            fn()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=ROWS)


def _python(fn: Callable[[], object], calls: int) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).strip_dirs().sort_stats("tottime").print_stats(ROWS)
    # pstats opens with blank lines and a header naming this process; keep the table.
    lines = out.getvalue().strip().splitlines()
    return "\n".join(line for line in lines if line.strip())


def profile_variant(name: str, fn: Callable[[], object], seconds: float) -> str:
    """One variant's profile: about a second of warm calls (at least 3)."""
    calls = max(3, min(200, int(1.0 / max(seconds, 1e-6))))
    fn()  # warm: compilation and first-call allocations are not the profile
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    plain_ms = 1e3 * (time.perf_counter() - start) / calls
    return (
        f"## {name}: {calls} calls, {plain_ms:.3f} ms per call unprofiled\n\n"
        f"### operators (torch.profiler, self time)\n\n{_operators(fn, calls)}\n"
        f"### Python functions (cProfile, own time; profiling inflates Python)\n\n"
        f"{_python(fn, calls)}\n"
    )
