"""Open a lab report in headless Chromium (Debian's, never a downloaded one)."""

import shutil
from pathlib import Path

from playwright.sync_api import sync_playwright

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
IMAGES = "Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])"


def open_report(index: Path, screenshot: str, **expressions: str) -> dict:
    """Load index.html, keep a screenshot in test-artifacts/, and return the
    console errors, the URLs requested, the images as [src, complete, width],
    the page title and the value of each named JavaScript expression."""
    assert Path(CHROMIUM).exists(), "make test installs Debian's chromium; it is missing"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors, requests = [], []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("request", lambda request: requests.append(request.url))
        page.goto(index.as_uri(), wait_until="load")
        seen = {name: page.evaluate(js) for name, js in expressions.items()}
        seen.update(errors=errors, requests=requests, images=page.evaluate(IMAGES))
        seen["title"] = page.title()
        page.screenshot(path=str(ARTIFACTS / screenshot), full_page=False)
        browser.close()
    assert (ARTIFACTS / screenshot).stat().st_size > 10_000
    return seen
