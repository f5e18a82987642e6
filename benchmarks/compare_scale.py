"""How `lossopt lab compare` scales: time and peak memory on synthetic tables of
40 columns (38 numbers with 1% blanks, 2 text columns, 3 classes), with the
default settings, in a fresh process. Not a test.

    python -m benchmarks.compare_scale --rows 100000 [--rows 400000] [--keep DIR]

The table is generated here (nothing downloaded). Memory is the peak of the
summed proportional set size (PSS: shared pages split between the processes
that share them) of the command and its worker processes, sampled every 0.2 s;
reading alone is measured apart (read_table in a fresh process). The CPU
seconds of the command and its workers are given beside the wall time, and the
load average when it started: on a shared machine the wall time says how busy
the machine was as much as how long compare takes, and the CPU seconds over the
cores bound what it takes on an idle one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

COLUMNS = 40
TEXT = {"region": ["north", "south", "east", "west"], "plan": ["basic", "plus", "pro"]}


def write_table(path: Path, rows: int, seed: int = 0, chunk: int = 50_000) -> None:
    """rows x 40: 38 numbers (1% blank), 2 text columns; 3 classes from a few of them."""
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(38, 3)) * (rng.random((38, 1)) < 0.3)
    header = [f"x{i}" for i in range(38)] + list(TEXT) + ["label"]
    with path.open("w", encoding="utf-8") as file:
        file.write(",".join(header) + "\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            x = rng.normal(size=(n, 38))
            texts = [rng.integers(0, len(v), n) for v in TEXT.values()]
            logits = x @ weights + 0.8 * np.eye(3)[texts[1] % 3] + rng.gumbel(size=(n, 3))
            label = logits.argmax(axis=1)
            cells = np.char.mod("%.15g", x).astype(object)  # as pandas writes float64
            cells[rng.random((n, 38)) < 0.01] = ""
            lines = []
            for i in range(n):
                words = [TEXT[k][t[i]] for k, t in zip(TEXT, texts, strict=True)]
                lines.append(",".join([*cells[i], *words, f"c{label[i]}"]))
            file.write("\n".join(lines) + "\n")


def _pss(process) -> int:
    import psutil

    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def _cpu_of_children() -> float:
    # every process waited for, and the ones they waited for (compare's workers)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(argv: list[str]) -> tuple[float, int, str, float]:
    """Wall time, peak summed PSS, stderr and CPU seconds of a command."""
    import psutil

    cpu = _cpu_of_children()
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        try:
            peak = max(peak, _pss(process))
        except psutil.NoSuchProcess:
            break
        time.sleep(0.2)
    _, err = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{err}")
    return time.perf_counter() - start, peak, err, _cpu_of_children() - cpu


READ = "from lossopt.lab.data import read_table; t = read_table({path!r}, 'label'); print(t.rows)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="table rows (repeatable)")
    parser.add_argument("--keep", metavar="DIR", help="write the tables and reports here")
    args = parser.parse_args(argv)
    folder = Path(args.keep or tempfile.mkdtemp(prefix="compare-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    # the fixed overhead: the same processes (interpreters, torch, scikit-learn) on a
    # 1,000-row table, one optimizer, one epoch
    tiny = folder / "synthetic-1000.csv"
    if not tiny.exists():
        write_table(tiny, 1000)
    _, read_fixed, _, _ = measure([sys.executable, "-c", READ.format(path=str(tiny))])
    command = [sys.executable, "-m", "lossopt", "lab", "compare", "--data", str(tiny)]
    command += ["--target", "label", "--out", str(folder / "report-fixed"), "--quiet"]
    _, fixed, _, _ = measure([*command, "--quick", "--optimizers", "adam", "--steps", "1"])
    print(
        json.dumps({"fixed_read_mib": round(read_fixed / 2**20), "fixed_mib": round(fixed / 2**20)})
    )
    found = []
    for rows in args.rows or [100_000]:
        path = folder / f"synthetic-{rows}.csv"
        if not path.exists():
            write_table(path, rows)
        size = path.stat().st_size
        read_time, read_peak, _, _ = measure([sys.executable, "-c", READ.format(path=str(path))])
        out = folder / f"report-{rows}"
        command = [sys.executable, "-m", "lossopt", "lab", "compare", "--data", str(path)]
        command += ["--target", "label", "--out", str(out), "--quiet"]
        load = os.getloadavg()[0]
        seconds, peak, _, cpu = measure(command)
        result = json.loads((out / "results.json").read_text())["results"]["compare"]
        row = {
            "rows": rows,
            "csv_mib": round(size / 2**20, 1),
            "read_s": round(read_time, 1),
            "read_peak_mib": round(read_peak / 2**20),
            "compare_s": round(seconds),
            "compare_cpu_s": round(cpu),
            "cores": os.cpu_count(),
            "load_at_start": round(load, 1),
            "peak_mib": round(peak / 2**20),
            "peak_over_csv": round(peak / size, 2),
            "read_above_fixed_over_csv": round((read_peak - read_fixed) / size, 2),
            "above_fixed_over_csv": round((peak - fixed) / size, 2),
            "search_rows": result["search_rows"],
            "batch_size": result["batch_size"],
            "max_epochs": result["max_epochs"],
            "jobs": result["jobs"],
            "pick": f"{result['final']['optimizer']} lr={result['final']['lr']:g}",
            "rule": round(result["rule"]["mean"], 3),
        }
        found.append(row)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
