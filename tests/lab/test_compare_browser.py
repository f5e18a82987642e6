"""The compare report in a real browser: headless Chromium opens index.html, the
figures load, the page has its own title, the console stays clean, and a
screenshot is kept."""

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from lossopt.__main__ import main

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    from sklearn.datasets import load_wine

    folder = tmp_path_factory.mktemp("compare")
    data = folder / "wine.csv"
    load_wine(as_frame=True).frame.to_csv(data, index=False)  # ships with scikit-learn
    out = folder / "report"
    args = ["--quick", "--quiet", "--optimizers", "sgd,momentum,adam", "--out", str(out)]
    assert main(["lab", "compare", "--data", str(data), "--target", "target", *args]) == 0
    return out / "index.html"


def test_compare_report_renders_in_chromium(report):
    assert Path(CHROMIUM).exists(), "make test installs Debian's chromium; it is missing"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        requests = []
        page.on("request", lambda request: requests.append(request.url))
        page.goto(report.as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images)"
            ".map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"
        )
        title = page.title()
        recommendation = page.evaluate("document.querySelector('.recommend').textContent")
        code = page.evaluate("document.querySelector('pre code').textContent")
        page.screenshot(path=str(ARTIFACTS / "compare-report.png"), full_page=False)
        browser.close()
    assert errors == []
    assert title == "lossopt lab compare: wine.csv"
    assert [src for src, _, _ in images] == ["compare.png"]
    for src, complete, width in images:
        assert complete and width > 0, src
    assert all(url.startswith("file://") for url in requests)  # offline: no external asset
    assert "95% interval" in recommendation
    assert "torch.optim." in code and "nn.Sequential" in code
    assert (ARTIFACTS / "compare-report.png").stat().st_size > 10_000
