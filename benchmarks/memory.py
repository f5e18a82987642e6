"""`python -m benchmarks.memory CASE VARIANT SIZE DEVICE`: one variant's peak
memory growth, alone in a fresh process, printed as JSON."""

import json
import sys

import torch

from benchmarks.cases import CASES
from benchmarks.harness import peak_growth_here


def main() -> None:
    case, variant, size, device = sys.argv[1:5]
    torch.set_num_threads(torch.get_num_threads())
    bench = CASES[case](size, device)
    print(json.dumps({"peak_bytes": peak_growth_here(bench.variants[variant], device)}))


if __name__ == "__main__":
    main()
