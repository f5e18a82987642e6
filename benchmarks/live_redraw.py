"""How fast the live lab redraws after a change: a control moved in Chromium, to
the new figures drawn (the request, lossopt's computation, the answer, plotly).

    python -m benchmarks.live_redraw [--repeat 15]

For each 2-D explorable, one control is set to `repeat` different values, one
at a time, each time waiting for the drawing. The redraw is timed in the page,
from the request the change sends to the end of plotly's drawing (its median
and 90th percentile, then its two parts), beside the time Playwright saw from
its change event to the drawing (its own round trips included) and the median
of lossopt's computation alone (in this process, on one thread, as the server
runs it). Not a test: the numbers depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import threading
import time

import torch

from lossopt.lab.live.catalog import EXPLORABLES
from lossopt.lab.live.server import make_server

# explorable, knob, values it takes in turn (none of them its default)
CASES = [
    ("paths", "lr-sgd", [0.1 + 0.05 * i for i in range(40)]),
    ("learning-rate", "lr-large", [1.01 + 0.01 * i for i in range(40)]),
    ("triplet", "margin", [0.1 + 0.05 * i for i in range(40)]),
    ("softmax", "z0", [-2 + 0.1 * i for i in range(40)]),
    ("kl", "q-mean", [-2 + 0.1 * i for i in range(40)]),
    ("derivative", "w", [-1 + 0.1 * i for i in range(40)]),
    ("regression", "delta", [0.2 + 0.1 * i for i in range(40)]),
]


def _compute_ms(name: str, knob: str, values: list[float]) -> float:
    torch.set_num_threads(1)
    explorable = EXPLORABLES[name]
    times = []
    for value in values:
        start = time.perf_counter()
        explorable.run({knob: value})
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        for name, knob, values in CASES:
            values = values[: args.repeat]
            page.goto("about:blank")
            page.goto(f"http://127.0.0.1:{port}/#{name}")
            page.wait_for_function("Number(document.body.dataset.drawn || 0) >= 1")
            box = f"#knob-{knob} input[type=number]"
            times, split = [], []
            for value in values:
                before = page.evaluate("Number(document.body.dataset.drawn)")
                page.fill(box, f"{value:.6g}")
                start = time.perf_counter()
                page.dispatch_event(box, "change")
                page.wait_for_function(f"Number(document.body.dataset.drawn) > {before}")
                times.append(time.perf_counter() - start)
                split.append(page.evaluate("[lab.timing.answer, lab.timing.draw]"))
            in_page = sorted(a + d for a, d in split)
            rows.append(
                (
                    name,
                    knob,
                    statistics.median(in_page),
                    in_page[int(0.9 * (len(in_page) - 1))],
                    statistics.median(a for a, _ in split),
                    statistics.median(d for _, d in split),
                    1000 * statistics.median(times),
                    _compute_ms(name, knob, values),
                )
            )
        browser.close()
    server.should_exit = True
    thread.join(timeout=10)
    print(
        "| explorable | control moved | redraw median (ms) | p90 | of which: answer | drawing"
        " | as the driver saw it | compute alone |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, knob, median, p90, answer, drawing, driver, compute in rows:
        print(
            f"| {name} | {knob} | {median:.0f} | {p90:.0f} | {answer:.0f} | {drawing:.0f}"
            f" | {driver:.0f} | {compute:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
