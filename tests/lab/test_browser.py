"""The report in a real browser: headless Chromium opens index.html, every
image loads, the console stays clean, and a screenshot is kept."""

import shutil
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from lossopt.__main__ import main
from lossopt.lab.experiments import EXPERIMENTS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab") / "report"
    assert main(["lab", "--quick", "--quiet", "--out", str(out)]) == 0
    return out / "index.html"


def test_report_renders_in_chromium(report):
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
        headings = page.evaluate(
            "Array.from(document.querySelectorAll('h2')).map(h => h.textContent)"
        )
        sections = page.evaluate(
            "Array.from(document.querySelectorAll('section')).map(s => [s.id,"
            " s.querySelector('h2').textContent, s.querySelector('p') !== null,"
            " Array.from(s.querySelectorAll('img')).map(i => [i.complete, i.naturalWidth])])"
        )
        page.screenshot(path=str(ARTIFACTS / "lab-report.png"), full_page=False)
        browser.close()
    assert errors == []
    for src, complete, width in images:
        assert complete and width > 0, src  # no broken image
    assert all(url.startswith("file://") for url in requests)  # offline: no external asset
    # Every section of the lecture is there, in order, with prose and its loaded figure.
    assert [s[0] for s in sections] == list(EXPERIMENTS)
    assert headings == [s[1] for s in sections]
    for number, (name, heading, has_prose, imgs) in enumerate(sections, start=1):
        assert heading.startswith(f"{number}. "), heading
        assert has_prose, name
        assert len(imgs) >= 1 and all(done and width > 0 for done, width in imgs), name
    assert len(images) == len(EXPERIMENTS)
    assert (ARTIFACTS / "lab-report.png").stat().st_size > 10_000
