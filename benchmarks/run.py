"""`python -m benchmarks`: every case side by side with torch, as a markdown
table and JSON. Ratios are ours / reference; below 1 is better.

`python -m benchmarks --sweep`: every public loss and every optimizer's default
step against torch's fastest, at every size (see benchmarks/sweep.py)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

from benchmarks import sweep
from benchmarks.cases import CASES
from benchmarks.harness import peak_growth, profile, time_variants, triad, triad_bandwidth

SLOW = {"linear-cross-entropy-8192x1024x128256"}


def _machine(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.machine()} CPU, {torch.get_num_threads()} threads, torch {torch.__version__}"


def run_case(
    name: str,
    size: str,
    device: str,
    triad_bps: float | None,
    memory: bool,
    profile_to: Path | None = None,
) -> list[dict]:
    bench = CASES[name](size, device)
    start = time.perf_counter()
    bench.parity()  # also where a fused optimizer compiles first
    parity_s = time.perf_counter() - start
    smoke = size == "smoke"
    # Cases with a bandwidth target time the triad in the same rounds, so that
    # the fraction compares with the machine's bandwidth of that moment.
    elements = 1 << (16 if smoke else 26)
    extra = {"triad": triad(device, elements)} if "bandwidth" in bench.targets else {}
    seconds, first = time_variants(
        {**bench.variants, **extra}, 2 if smoke else bench.reps, device, 0 if smoke else 4.0
    )
    if extra:
        triad_bps = 12 * elements / seconds.pop("triad")
    peaks = {}
    if memory and bench.memory:
        peaks = {v: peak_growth(name, v, size, device) for v in bench.variants}
    if profile_to is not None:
        profile(name, size, device, profile_to / f"profile-{name}.txt")
    rows = []
    for ours in bench.ours:
        if not bench.references:
            rows.append(
                {"case": name, "ours": ours, "ours_ms": 1e3 * seconds[ours], "reference": None}
            )
            continue
        best = min(bench.references, key=seconds.get)
        row = {
            "case": name,
            "ours": ours,
            "ours_ms": 1e3 * seconds[ours],
            "ours_first_ms": 1e3 * first[ours],
            "parity_and_compile_s": parity_s,
            "reference": best if len(bench.references) == 1 else f"fastest: {best}",
            "reference_ms": 1e3 * seconds[best],
            "time_ratio": seconds[ours] / seconds[best],
            "references_ms": {k: 1e3 * seconds[k] for k in bench.references},
            "targets": bench.targets,
        }
        if bench.min_bytes and triad_bps:
            row["bandwidth_fraction"] = bench.min_bytes / seconds[ours] / triad_bps
            row["triad_gb_per_s"] = triad_bps / 1e9
        if peaks.get(ours) is not None:
            row["peak_mb"] = peaks[ours] / 2**20
            row["references_peak_mb"] = {
                k: peaks[k] / 2**20 for k in bench.references if peaks.get(k) is not None
            }
            mem_ref = "torch chunked" if "torch chunked" in peaks else best
            if peaks.get(mem_ref):
                row["memory_ratio"] = peaks[ours] / peaks[mem_ref]
                row["memory_reference"] = mem_ref
        rows.append(row)
    return rows


def _met(row: dict) -> str:
    targets, checks = row.get("targets", {}), []
    if "time" in targets and "time_ratio" in row:
        checks.append(row["time_ratio"] <= targets["time"])
    if "memory" in targets and "memory_ratio" in row:
        checks.append(row["memory_ratio"] <= targets["memory"])
    if "bandwidth" in targets and "bandwidth_fraction" in row:
        checks.append(row["bandwidth_fraction"] >= targets["bandwidth"])
    return "-" if not checks else ("yes" if all(checks) else "no")


def table(rows: list[dict]) -> str:
    lines = [
        "| case | lossopt variant | reference | ours ms | ref ms | time ratio | peak-memory ratio "
        "| of triad bandwidth | ours warm-up ms | target | met |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r.get("targets", {})
        target = (
            ", ".join(f"{k} {'>=' if k == 'bandwidth' else '<='} {v}" for k, v in t.items()) or "-"
        )
        mem = (
            f"{r['memory_ratio']:.2f} (vs {r['memory_reference']})" if "memory_ratio" in r else "-"
        )
        bw = f"{100 * r['bandwidth_fraction']:.0f}%" if "bandwidth_fraction" in r else "-"
        nan = float("nan")
        lines.append(
            f"| {r['case']} | {r['ours']} | {r.get('reference') or '-'} | {r['ours_ms']:.1f} | "
            f"{r.get('reference_ms', nan):.1f} | {r.get('time_ratio', nan):.2f} | "
            f"{mem} | {bw} | {r.get('ours_first_ms', nan):.0f} | {target} | {_met(r)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--size", choices=("full", "smoke"), default="full")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--cases", help="comma-separated subset of: " + ", ".join(CASES))
    parser.add_argument("--large", action="store_true", help="include the N=8192, V=128256 case")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    parser.add_argument("--out", default="benchmarks/results", help="folder for the table and JSON")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also write profile-<case>.txt: operator and Python-function profiles per variant "
        "(with --sweep: profile-sweep-<case>-<shape>.txt for each row above the bar)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="every public loss and optimizer default against torch's fastest, at every size; "
        "--cases then picks sweep cases: " + ", ".join(sweep.case_names()),
    )
    parser.add_argument(
        "--sweep-sizes",
        default=",".join(sweep.TIERS),
        help="comma-separated loss tiers of the sweep: "
        + ", ".join(f"{k} ({'x'.join(map(str, v))})" for k, v in sweep.TIERS.items())
        + "; default all (the optimizers always run both of theirs)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=2.0,
        help="seconds of interleaved rounds per sweep row (at least --rounds rounds)",
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="least interleaved rounds per sweep row"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here", file=sys.stderr)
        return 2
    if args.sweep:
        return run_sweep(args)
    names = (
        args.cases.split(",") if args.cases else [n for n in CASES if args.large or n not in SLOW]
    )
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"unknown case(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    bandwidth = triad_bandwidth(args.device, 1 << 16 if args.size == "smoke" else 1 << 26)
    rows = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(
            run_case(
                name,
                args.size,
                args.device,
                bandwidth,
                not args.no_memory,
                out if args.profile else None,
            )
        )
    machine = _machine(args.device)
    report = {
        "machine": machine,
        "size": args.size,
        "triad_gb_per_s": bandwidth / 1e9,
        "rows": rows,
    }
    suffix = f"{args.device}-{args.size}"
    (out / f"results-{suffix}.json").write_text(json.dumps(report, indent=1))
    text = f"Machine: {machine}; in-place triad {bandwidth / 1e9:.1f} GB/s.\n\n{table(rows)}\n"
    (out / f"results-{suffix}.md").write_text(text)
    print(text)
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    """The sweep's rows one by one, each checked first; exit status 1 when a
    row's check failed or its timing raised (it is in the table, untimed)."""
    tiers = args.sweep_sizes.split(",")
    names = args.cases.split(",") if args.cases else None
    unknown = [t for t in tiers if t not in sweep.TIERS]
    known = sweep.case_names()
    unknown += [n for n in names or [] if not any(k == n or k.startswith(n + "/") for k in known)]
    if unknown:
        print(f"unknown tier(s) or case(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    smoke = args.size == "smoke"
    reps, budget = (2, 0.0) if smoke else (args.rounds, args.budget)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = []
    for row in sweep.rows(tiers, names, args.device, smoke):
        print(f"sweep {row.case} {row.shape} ...", file=sys.stderr, flush=True)
        results.append(sweep.run_row(row, args.device, reps, budget))
        if not sweep.ok(results[-1]):
            print(f"  {results[-1].get('error') or results[-1]['parity']}", file=sys.stderr)
    machine = _machine(args.device)
    failed = [f"{r['case']} {r['shape']}" for r in results if not sweep.ok(r)]
    report = {
        "machine": machine,
        "size": args.size,
        "tiers": tiers,
        "target": sweep.TARGET,
        "seconds": time.perf_counter() - start,
        "rows": results,
    }
    suffix = f"{args.device}-{args.size}"
    (out / f"sweep-{suffix}.json").write_text(json.dumps(report, indent=1))
    text = (
        f"Machine: {machine}. Ratio = lossopt / fastest torch variant, medians of "
        f"interleaved rounds; forward + backward for losses, one warm step for optimizers.\n\n"
        f"{sweep.table(results)}\n"
    )
    (out / f"sweep-{suffix}.md").write_text(text)
    print(text)
    if args.profile:  # the rows above the bar, each in a fresh process
        for r in results:
            if sweep.ok(r) and not r.get("met", True):
                name = f"profile-sweep-{r['case']}-{r['shape']}".replace("/", "-").replace(" ", "")
                print(f"profile {r['case']} {r['shape']} ...", file=sys.stderr, flush=True)
                profile(
                    r["case"],
                    "",
                    args.device,
                    out / f"{name}.txt",
                    sweep_row=(r["tier"], r["shape"]),
                )
    if failed:
        print(f"failed (parity or error), not timed: {'; '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
