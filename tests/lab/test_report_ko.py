"""The lecture report in Korean (`lossopt lab --lang ko`): its text is Korean, with no English
sentence left outside code, equations and names; its numbers are the run's; it carries the
glyphs it shows; and in Chromium it renders with that font, a screenshot kept."""

import html
import json
import logging
import re
import warnings

import pytest
from matplotlib.ft2font import FT2Font

from lossopt.__main__ import main
from lossopt.lab import fonts, i18n, plots, report
from lossopt.lab.config import Config
from lossopt.lab.experiments import EXPERIMENTS
from tests.lab.test_i18n import english_in_figures, english_sentences

HANGUL = re.compile("[가-힣]")


DRAWN = []  # the figure specs of the Korean report, as plots.panels drew them
MISSED = []  # matplotlib's word of a glyph missing while they were drawn


class _Said(logging.Handler):
    def emit(self, record):  # mathtext logs a missing glyph rather than warning of it
        MISSED.append(record.getMessage())


@pytest.fixture(scope="module")
def korean(tmp_path_factory):
    out = tmp_path_factory.mktemp("lab-ko") / "report"
    drawn = plots.panels

    def recorded(specs, *args, **kwargs):
        DRAWN.extend(spec.to_json() for spec in specs)
        return drawn(specs, *args, **kwargs)

    said = _Said(logging.WARNING)
    logging.getLogger("matplotlib").addHandler(said)
    try:
        with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            patch.setattr(plots, "panels", recorded)
            assert main(["lab", "--quick", "--quiet", "--lang", "ko", "--out", str(out)]) == 0
    finally:
        logging.getLogger("matplotlib").removeHandler(said)
    MISSED.extend(str(w.message) for w in seen)
    i18n.set_language(None)  # --lang sets the process's language; leave it as found
    return out / "index.html"


def _text(fragment):
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


def test_the_korean_report_has_no_english_sentence(korean):
    page = korean.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html><html lang='ko'>")
    assert english_sentences(page) == []


def test_the_korean_reports_figures_have_no_english_word(korean):
    """Titles, axes, legends and labels of every picture: Korean, with names (SGD, Huber)
    and equations (f − f*, H(P, Q)) as they are."""
    assert len({spec["name"] for spec in DRAWN}) > len(EXPERIMENTS) // 2  # every section's
    titles = [spec["title"] for spec in DRAWN]
    assert all(HANGUL.search(title) for title in titles if title), titles
    assert english_in_figures(DRAWN) == []


def test_the_korean_reports_figures_have_every_glyph(korean):
    """Drawn with the font the lab registers: no glyph is reported missing (the check can
    fail: test_i18n draws the same Korean without it and sees the warning)."""
    assert DRAWN
    assert [m for m in MISSED if "missing from font" in m or "does not have a glyph" in m] == []


def test_an_english_figure_is_found_english():
    """The check above can fail: the same pictures in English have English words."""
    result = EXPERIMENTS["entropy"](Config(quick=True))
    specs = []
    with pytest.MonkeyPatch.context() as patch, i18n.language("en"):
        patch.setattr(plots, "panels", lambda drawn, *a, **k: specs.extend(drawn))
        plots.entropy(result)
    found = english_in_figures([spec.to_json() for spec in specs])
    assert {"Entropy", "coin", "fair", "die"} <= {word for *_, words in found for word in words}


def test_every_heading_paragraph_and_table_header_is_korean(korean):
    page = korean.read_text(encoding="utf-8")
    sections = re.findall(r"<section id=\"([^\"]+)\">(.*?)</section>", page, re.DOTALL)
    assert [name for name, _ in sections] == list(EXPERIMENTS)
    for name, body in sections:
        heading = re.search(r"<h2>(.*?)</h2>", body).group(1)
        assert HANGUL.search(heading), (name, heading)
        paragraphs = re.findall(r"<p[ >].*?</p>", body, re.DOTALL)
        assert len(paragraphs) >= 2, name  # the try-it line and the prose
        for paragraph in paragraphs:
            assert HANGUL.search(_text(paragraph)), (name, paragraph)
        for header in re.findall(r"<th>(.*?)</th>", body):
            # a name or a symbol stays as it is ("lr", "KL(P‖Q)"); words are translated
            words = re.findall(r"[A-Za-z]{3,}", _text(header))
            assert HANGUL.search(header) or not set(words) - {"lr"}, (name, header)
    contents = re.search(r"<nav id='contents'><h2>(.*?)</h2>", page).group(1)
    assert contents == "목차"


def test_the_korean_report_shows_the_runs_numbers(korean):
    results = json.loads((korean.parent / "results.json").read_text())["results"]
    text = _text(korean.read_text(encoding="utf-8"))
    entropy = results["entropy"]
    assert f"공정한 주사위의 엔트로피는 {entropy['fair_die']:.3f} nat" in text
    assert f"{entropy['loaded_die']:.3f}" in text
    training = results["training"]
    assert f"{training['epochs']} 에폭" in text
    assert "학습률(learning rate)" in text and "교차 엔트로피(cross-entropy)" in text
    # the equations stay as they are
    assert "H(P) = −Σ<sub>x</sub> P(x) log P(x)" in korean.read_text(encoding="utf-8")


def test_the_korean_report_carries_the_glyphs_it_shows(korean):
    page = korean.read_text(encoding="utf-8")
    font = korean.parent / fonts.SUBSET_FILE
    assert fonts.font_face_css(fonts.SUBSET_FILE) in page
    assert f"body{{font-family:{fonts.css_family('ko')}}}" in page
    marker = json.loads((korean.parent / ".lossopt-report").read_text())
    assert fonts.SUBSET_FILE in marker["files"]  # the lab's own, removed with the report
    shown = {ord(c) for c in _text(page[page.index("<body>") :]) if HANGUL.match(c)}
    carried = set(FT2Font(str(font)).get_charmap())
    assert shown and shown <= carried
    assert font.stat().st_size < fonts.font_path().stat().st_size / 10


def test_an_english_page_stays_english_and_carries_no_font(tmp_path):
    result = EXPERIMENTS["entropy"](Config(quick=True))
    with i18n.language("en"):
        index = report.write({"entropy": result}, tmp_path / "en", {"seed": 0})
    page = index.read_text(encoding="utf-8")
    assert page.startswith("<!doctype html><html lang='en'>")
    assert not HANGUL.search(page) and "@font-face" not in page
    assert not (tmp_path / "en" / fonts.SUBSET_FILE).exists()
    assert english_sentences(page)  # the check finds English where there is English


def test_an_untranslated_sentence_would_be_found(monkeypatch):
    """The page check can fail: a message missing from the catalog shows up as English."""
    result = EXPERIMENTS["entropy"](Config(quick=True))
    with i18n.language("ko"):
        assert english_sentences(report._describe_entropy(result)) == []
        monkeypatch.setattr(
            report,
            "_",
            lambda message: message if message.startswith("An aside") else i18n._(message),
        )
        left = english_sentences(report._describe_entropy(result))
    assert left and left[0].startswith("An aside the lecture does not cover")


def test_the_korean_report_in_chromium(korean):
    from tests.lab.browser import open_report

    seen = open_report(
        korean,
        "lab-report-ko.png",
        lang="document.documentElement.lang",
        first="document.querySelector('section h2').textContent",
        # the embedded face, once the page's fonts have settled
        fonts="document.fonts.ready.then(set => Array.from(set).map(f => [f.family, f.status]))",
        uses="getComputedStyle(document.body).fontFamily",
        # every element with Korean text of its own, and a font list without the face
        # (an equation's box has its own serif list: its Korean words must fall back to it)
        unfaced="Array.from(document.querySelectorAll('body *')).filter(e =>"
        " Array.from(e.childNodes).some(n => n.nodeType === 3 && /[가-힣]/.test(n.textContent))"
        f" && !getComputedStyle(e).fontFamily.includes('{fonts.FAMILY}'))"
        ".map(e => e.tagName + ' ' + e.className + ': ' + e.textContent.slice(0, 60))",
    )
    assert seen["errors"] == []
    assert all(url.startswith("file://") for url in seen["requests"])  # offline
    assert all(complete and width > 0 for _, complete, width in seen["images"])
    assert len(seen["images"]) == len(EXPERIMENTS)
    assert seen["lang"] == "ko" and seen["first"] == "1. L1과 L2"
    assert [fonts.FAMILY, "loaded"] in [[f.strip("'\""), s] for f, s in seen["fonts"]]
    assert seen["uses"].strip("'\"").startswith(fonts.FAMILY)
    assert seen["unfaced"] == []
