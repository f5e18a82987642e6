"""The report in a real browser: headless Chromium opens index.html, every
image loads, the console stays clean, and a screenshot is kept."""

import pytest

from lossopt.__main__ import main
from lossopt.lab.experiments import EXPERIMENTS
from tests.lab.browser import open_report


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab") / "report"
    assert main(["lab", "--quick", "--quiet", "--out", str(out)]) == 0
    return out / "index.html"


def test_report_renders_in_chromium(report):
    seen = open_report(
        report,
        "lab-report.png",
        headings="Array.from(document.querySelectorAll('h2')).map(h => h.textContent)",
        sections="Array.from(document.querySelectorAll('section')).map(s => [s.id,"
        " s.querySelector('h2').textContent, s.querySelector('p') !== null,"
        " Array.from(s.querySelectorAll('img')).map(i => [i.complete, i.naturalWidth])])",
    )
    errors, images, requests = seen["errors"], seen["images"], seen["requests"]
    headings, sections = seen["headings"], seen["sections"]
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
