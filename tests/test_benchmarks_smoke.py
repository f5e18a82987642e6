"""The benchmark suite and the sweep at tiny sizes: every case and every sweep
row builds, passes its parity check and reports ratios. Timings here mean
nothing; `make bench` and `python -m benchmarks --sweep` measure."""

import json
import math

import pytest
import torch

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
    ours = adam.split("## lossopt fused=True: ")[0]
    # lossopt's own frames, whatever the step's internals are called
    assert "aten::" in ours and "(_step_group)" in ours  # lossopt's base, in its own frames
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


def _sweep(tmp_path, *args, device="cpu"):
    status = main(["--sweep", "--size", "smoke", "--device", device, "--out", str(tmp_path), *args])
    report = json.loads((tmp_path / f"sweep-{device}-smoke.json").read_text())
    return status, report, (tmp_path / f"sweep-{device}-smoke.md").read_text()


def test_sweep_smoke_has_every_loss_and_optimizer_checked_and_timed(tmp_path):
    from lossopt import losses, optim

    status, report, table = _sweep(tmp_path)
    rows = report["rows"]
    failed = [(r["case"], r["parity"]) for r in rows if r["parity"] != "passed"]
    assert status == 0 and not failed
    assert report["seconds"] < 20  # the smoke sweep stays cheap enough for every `make test`
    cases = [r["case"] for r in rows]
    public_losses = {n for n in losses.__all__ if n.islower() and n != "pairwise_distance"}
    assert public_losses <= {c.split("/")[0] for c in cases}
    for variant in ("probs", "label_smoothing", "weight", "K-dim"):
        assert f"cross_entropy/{variant}" in cases
    for mining in ("batch_all", "batch_hard", "batch_semi_hard"):
        assert f"batch_triplet_loss/{mining}" in cases
    optimizers = {n for n in optim.__all__ if n != "Optimizer"} | {"SGD/momentum"}
    for name in optimizers:
        shapes = [r["shape"] for r in rows if r["case"] == name]
        assert shapes == ["24 x 7", "200 x 3"], name  # both lists, tensor counts kept
    for r in rows:
        assert r["ours_ms"] > 0 and r["reference_ms"] > 0
        assert math.isclose(r["time_ratio"], r["ours_ms"] / r["reference_ms"])
        assert r["met"] == (r["time_ratio"] <= 1.05)
        assert r["reference_ms"] == min(r["references_ms"].values())
        if r["case"] in optimizers:
            assert set(r["references_ms"]) == {
                "torch default",
                "torch foreach=True",
                "torch for-loop",
            }
    assert table.count("\n| ") == len(rows) + 1


def test_sweep_reports_a_row_whose_parity_fails_and_does_not_time_it(tmp_path, monkeypatch):
    import torch.nn.functional as F

    from benchmarks import sweep
    from lossopt import losses

    def off_by_float32_rounding(x, y):
        return losses.mse_loss(x, y) * (1 + 1e-7)

    case = sweep.LossCase(sweep._regression(off_by_float32_rounding, F.mse_loss), {}, (6, 5))
    monkeypatch.setitem(sweep.LOSSES, "mse_loss", case)
    status, report, table = _sweep(tmp_path, "--cases", "mse_loss,Adam")
    assert status == 1
    mse, *adam = report["rows"]
    assert mse["case"] == "mse_loss" and mse["parity"].startswith("failed: AssertionError: loss")
    assert "ours_ms" not in mse and "| mse_loss | 6x5 | - |" in table
    assert [r["parity"] for r in adam] == ["passed", "passed"]


def test_sweep_full_rows_cover_every_size_and_sizes_can_be_skipped():
    from benchmarks import sweep

    every = sweep.rows(list(sweep.TIERS), None, "cpu", smoke=False)  # builds no tensors
    ce = [r.shape for r in every if r.case == "cross_entropy"]
    assert ce == ["64x10", "256x100", "1024x1000", "4096x32768"]
    assert [r.shape for r in every if r.case == "cross_entropy/K-dim"] == ["8x21x64x64"]
    assert [r.shape for r in every if r.case == "linear_cross_entropy"][-1] == "4096x128x32768"
    assert [r.shape for r in every if r.case == "Adam"] == ["24 x 699050", "200 x 1000"]
    quick = sweep.rows(["tiny", "small", "medium"], ["cross_entropy"], "cpu", smoke=False)
    assert {r.tier for r in quick} == {"tiny", "small", "medium"}
    assert len(quick) == 3 * 4 + 1  # four target kinds per tier, and K-dim in the medium tier
    assert main(["--sweep", "--sweep-sizes", "tiny,huge"]) == 2
    assert main(["--sweep", "--cases", "no_such_loss"]) == 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_sweep_smoke_on_cuda_checks_and_times_every_row(tmp_path):
    status, report, _ = _sweep(tmp_path, device="cuda")
    assert status == 0 and all(r["parity"] == "passed" for r in report["rows"])
    assert all(math.isfinite(r["time_ratio"]) for r in report["rows"])


def test_sweep_row_whose_timing_raises_is_reported_and_the_rest_still_run(tmp_path, monkeypatch):
    from benchmarks import sweep

    timed = []

    def out_of_memory_for_l1(variants, *args):
        timed.append(sorted(variants))
        if "torch F.l1_loss" in variants:
            raise RuntimeError("out of memory")
        return {k: 1e-3 for k in variants}, {k: 2e-3 for k in variants}

    monkeypatch.setattr(sweep, "time_variants", out_of_memory_for_l1)
    status, report, table = _sweep(tmp_path, "--cases", "l1_loss,mse_loss")
    assert status == 1 and len(timed) == 2
    l1, mse = report["rows"]
    assert l1["parity"] == "passed" and l1["error"] == "RuntimeError: out of memory"
    assert "| l1_loss | 6x5 | - | - | - | - | error, see JSON |" in table
    assert "error" not in mse and mse["time_ratio"] == 1.0 and mse["met"]


def test_a_sweep_row_is_profiled_in_a_fresh_process(tmp_path):
    from benchmarks.harness import profile

    path = tmp_path / "profile.txt"
    profile("nll_loss", "", "cpu", path, sweep_row=("tiny", "64x10"))
    text = path.read_text()
    assert text.startswith("# nll_loss 64x10")
    for variant in ("lossopt", "torch F.nll_loss"):
        assert f"## {variant}: " in text
    assert "nll_loss" in text.split("## torch F.nll_loss")[0]  # lossopt's operators, profiled
