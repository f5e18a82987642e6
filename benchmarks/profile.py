"""`python -m benchmarks.profile CASE SIZE DEVICE FILE`: where each variant's
time goes, the operators torch's profiler sees and the Python functions that
cProfile sees, over the same warm calls. `python -m benchmarks.profile --sweep
CASE TIER SHAPE DEVICE FILE` profiles one row of the sweep the same way.

`python -m benchmarks --profile` runs it once per case, in a fresh process
after the case's timings: the profilers leave hooks behind that would slow
every later measurement of the same process. A ratio in the table can then be
read against the work behind it (kernel time, compiled-call overhead, Python
bookkeeping).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks import sweep
from benchmarks.cases import CASES

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


def profile_variant(name: str, fn: Callable[[], object]) -> str:
    """One variant's profile: about a second of warm calls (at least 3)."""
    fn()
    fn()  # warm: compilation and first-call allocations are not the profile
    start = time.perf_counter()
    fn()
    calls = max(3, min(200, int(1.0 / max(time.perf_counter() - start, 1e-6))))
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


def main() -> None:
    if sys.argv[1] == "--sweep":
        case, tier, shape, device, path = sys.argv[2:7]
        tiers = [tier] if tier in sweep.TIERS else []
        (row,) = [
            r
            for r in sweep.rows(tiers, [case], device, False)
            if (r.case, r.shape) == (case, shape)
        ]
        row.parity()
        ours, references = row.variants()
        variants = {**ours, **references}
        title = f"{case} {shape}"
    else:
        case, size, device, path = sys.argv[1:5]
        bench = CASES[case](size, device)
        bench.parity()
        variants, title = bench.variants, case
    text = "\n".join(profile_variant(v, fn) for v, fn in variants.items())
    Path(path).write_text(f"# {title}\n\n{text}")


if __name__ == "__main__":
    main()
