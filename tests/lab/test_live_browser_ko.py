"""The live lab in Korean, in a real browser (Debian's Chromium): the page, its buttons and
a refused value's message in Korean, Korean glyphs from the font the lab serves (in the
page and in plotly's figures), every request in the page's language, and the language
control switching the page to English on the same explorable."""

import os
import urllib.parse

import pytest
from playwright.sync_api import sync_playwright

from lossopt.lab import i18n
from tests.lab.browser import ARTIFACTS, CHROMIUM
from tests.lab.live import running_server

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DRAWN = "Number(document.body.dataset.drawn || 0) >= 1"
FONT_READY = """async () => {
  await document.fonts.load("16px NanumGothic", "학습률");
  return [document.fonts.check("16px NanumGothic", "학습률"),
          Array.from(document.fonts).filter(f => f.family.includes("NanumGothic"))
               .map(f => f.status)];
}"""


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM and os.path.exists(CHROMIUM), "Debian's chromium is missing"
    with running_server() as (url, _address), sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield url, chromium
        chromium.close()


def test_the_live_lab_in_korean_and_back_to_english(browser):
    base, chromium = browser
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    errors, requests = [], []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{base}/?lang=ko#derivative?h=0.01")
    page.wait_for_function(DRAWN, timeout=60_000)

    assert page.evaluate("document.documentElement.lang") == "ko"
    with i18n.language("ko"):
        assert page.inner_text("nav h1") == i18n._("lossopt live lab")
        assert page.text_content("#train-pause") == i18n._("pause")
        assert page.text_content("#play-button") == "▶ " + i18n._("play")
    assert page.input_value("#language") == "ko"
    # Hangul from the lab's Nanum Gothic, in the page and in plotly's text
    assert page.evaluate(FONT_READY) == [True, ["loaded"]]
    figure_font = page.evaluate("document.querySelector('.figure')._fullLayout.font.family")
    assert "NanumGothic" in figure_font
    # a refused value: the server's message, in Korean
    page.fill("#knob-seed input[type=number]", "1.5")
    page.dispatch_event("#knob-seed input[type=number]", "change")
    page.wait_for_function("Number(document.body.dataset.errors || 0) >= 1", timeout=60_000)
    assert "seed은(는) 0부터 10000까지의 정수여야 합니다" in page.inner_text("#error")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "live-lab-ko.png"))
    # every request of the page asks for its language
    api = [urllib.parse.urlsplit(url) for url in requests if "/api" in url]
    assert api and all(urllib.parse.parse_qs(u.query).get("lang") == ["ko"] for u in api)
    assert all(url.startswith(base) for url in requests)
    page.fill("#knob-seed input[type=number]", "3")
    page.dispatch_event("#knob-seed input[type=number]", "change")
    page.wait_for_function("Number(document.body.dataset.drawn || 0) >= 2", timeout=60_000)

    # the language control: the same explorable and settings, in English
    with page.expect_navigation():
        page.select_option("#language", "en")
    page.wait_for_function(DRAWN, timeout=60_000)
    assert page.evaluate("document.documentElement.lang") == "en"
    assert page.inner_text("nav h1") == "lossopt live lab"
    assert page.text_content("#train-pause") == "pause"
    assert page.evaluate("location.hash").startswith("#derivative?h=0.01&")
    assert page.input_value("#knob-seed input[type=number]") == "3"
    assert page.evaluate("location.search") == "?lang=en"
    assert errors == []
    page.close()
