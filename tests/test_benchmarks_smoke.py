"""The benchmark suite at tiny sizes: every case builds, passes its parity
check and reports ratios. Timings here mean nothing; `make bench` measures."""

import json
import math

from benchmarks.cases import CASES
from benchmarks.run import SLOW, main


def test_benchmark_suite_smoke(tmp_path):
    assert main(["--size", "smoke", "--out", str(tmp_path), "--cases", ",".join(CASES)]) == 0
    report = json.loads((tmp_path / "results-cpu-smoke.json").read_text())
    cases = {row["case"] for row in report["rows"]}
    assert cases == set(CASES) and SLOW <= cases
    assert report["triad_gb_per_s"] > 0
    for row in report["rows"]:
        assert row["ours_ms"] > 0
        if row["reference"]:
            assert math.isfinite(row["time_ratio"]) and row["time_ratio"] > 0
    ce = next(r for r in report["rows"] if r["case"] == "cross-entropy")
    assert "peak_mb" in ce and "bandwidth_fraction" in ce  # tiny sizes: ratios may be 0/0
    table = (tmp_path / "results-cpu-smoke.md").read_text()
    assert table.count("\n| ") == len(report["rows"]) + 1


def test_profile_writes_operator_and_python_tables_for_every_variant(tmp_path):
    args = ["--size", "smoke", "--cases", "adam-24-tensors,cross-entropy", "--no-memory"]
    assert main([*args, "--profile", "--out", str(tmp_path)]) == 0
    adam = (tmp_path / "profile-adam-24-tensors.txt").read_text()
    for variant in ("lossopt", "lossopt fused=True", "torch fused=True"):
        assert f"## {variant}: " in adam
    assert adam.count("### operators") == adam.count("### Python functions") == 3
    assert "Optimizer.step#Adam.step" in adam and "_update" in adam
    ce = (tmp_path / "profile-cross-entropy.txt").read_text()
    assert "ms per call unprofiled" in ce and "aten::" in ce


def test_short_rounds_are_repeated_up_to_the_time_budget():
    from benchmarks.harness import time_variants

    calls = {"a": 0, "b": 0}

    def counter(name):
        def fn():
            calls[name] += 1

        return fn

    time_variants({k: counter(k) for k in calls}, 3, "cpu")
    assert calls == {"a": 5, "b": 5}  # two warm-up calls, then 3 rounds
    calls.update(a=0, b=0)
    time_variants({k: counter(k) for k in calls}, 3, "cpu", budget_s=1.0, max_reps=50)
    assert calls == {"a": 52, "b": 52}  # microsecond rounds: the cap, not the budget
