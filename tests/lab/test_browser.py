"""The report in a real browser: headless Chromium opens index.html, every
image loads, the console stays clean, the table of contents leads to every
section, each figure has its "try it" line, and a screenshot is kept."""

import json
from urllib.parse import parse_qsl

import pytest

from lossopt.__main__ import main
from lossopt.lab import report as report_module
from lossopt.lab.experiments import EXPERIMENTS
from lossopt.lab.knobs import LIVE_HOST, LIVE_PORT
from lossopt.lab.live.catalog import EXPLORABLES as LIVE
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
        headings="Array.from(document.querySelectorAll('section h2')).map(h => h.textContent)",
        sections="Array.from(document.querySelectorAll('section')).map(s => [s.id,"
        " s.querySelector('h2').textContent, s.querySelector('p') !== null,"
        " Array.from(s.querySelectorAll('img')).map(i => [i.complete, i.naturalWidth])])",
        # Each link of the contents, and what its anchor leads to in the page.
        contents="Array.from(document.querySelectorAll('nav#contents a')).map(a => {"
        " const target = document.querySelector(a.getAttribute('href'));"
        " return [a.getAttribute('href'), a.textContent, target && target.tagName,"
        " target && target.querySelector('h2').textContent]; })",
        # The try-it line of each section: the live lab's link and the CLI command.
        tries="Array.from(document.querySelectorAll('section')).map(s => {"
        " const t = s.querySelector('p.try'), a = t && t.querySelector('a.live');"
        " return [s.id, a ? a.getAttribute('href') : null,"
        " t && t.querySelector('code.cli').textContent,"
        " t && t.compareDocumentPosition(s.querySelector('img')) ==="
        " Node.DOCUMENT_POSITION_PRECEDING]; })",
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
    # The contents: one link per section, in order, each leading to its section.
    contents = seen["contents"]
    assert [href for href, _, _, _ in contents] == [f"#{s[0]}" for s in sections]
    for href, text, tag, heading in contents:
        assert tag == "SECTION" and heading == text, href
    # Under each figure, the same settings in the live lab and on the command line.
    assert [t[0] for t in seen["tries"]] == list(EXPERIMENTS)
    results = json.loads((report.parent / "results.json").read_text())["results"]
    for name, url, command, after_figure in seen["tries"]:
        assert command == f"lossopt lab {name} --seed 0 --quick", name
        assert after_figure, name  # the line sits under the figure
        explorable = LIVE.get(report_module.LIVE.get(name, ("",))[0])
        if explorable is None:
            assert url is None, name  # no live explorable: the command only
            continue
        address, _, query = url.partition("?")
        assert address == f"http://{LIVE_HOST}:{LIVE_PORT}/#{explorable.name}", name
        values = explorable.parse(dict(parse_qsl(query)))  # the live lab takes every setting
        if name == "paths":  # ...and they are the run's own
            for path in results["paths"]["paths"]:
                assert values[f"lr_{path['optimizer']}"] == path["lr"]
            assert values["steps"] == results["paths"]["steps"]
            assert (values["x0"], values["y0"]) == tuple(results["paths"]["start"])
    # Every section links its explorable (the live trainer may not be in this tree yet).
    assert {name for name, url, _, _ in seen["tries"] if url is None} <= {"training"}
