"""The live lab in the lecture's language: the page, its controls, the API's answers and
errors in the language of ?lang=, else of `serve --lang`, else of the browser; a language
control that switches it; Korean drawn with the font the lab serves."""

import io
import json
import re

import pytest
from fontTools.ttLib import TTFont
from starlette.testclient import TestClient

from lossopt.lab import fonts, i18n
from lossopt.lab.i18n import N_, _
from lossopt.lab.knobs import Knob
from lossopt.lab.live.catalog import EXPLORABLES
from lossopt.lab.live.explorable import Explorable, View
from lossopt.lab.live.server import PAGE, create_app
from tests.lab.test_i18n import english_in_figures, english_sentences

HANGUL = re.compile("[가-힣]")


@pytest.fixture
def no_locale(monkeypatch):
    for variable in i18n.ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    i18n.set_language(None)
    yield
    i18n.set_language(None)


def _page_language(client, **kwargs):
    response = client.get("/", **kwargs)
    assert response.status_code == 200
    found = re.search(r"<html lang=\"(\w+)\">", response.text)
    assert response.headers["content-language"] == found.group(1)
    return found.group(1), response.text


def test_the_page_in_korean(no_locale):
    with TestClient(create_app()) as client:
        lang, page = _page_language(client, params={"lang": "ko"})
    assert lang == "ko"
    with i18n.language("ko"):
        for english in PAGE.values():
            assert _(english) in page and HANGUL.search(_(english)), english
    assert "<option value='ko' selected>한국어</option>" in page
    assert "<option value='en'>English</option>" in page
    assert english_sentences(page) == []  # scripts, styles and code aside
    # the script's messages come with the page, by their English
    messages = re.search(r'<script id="messages" type="application/json">(.*?)</script>', page)
    assert json.loads(messages.group(1).replace("<\\/", "</")) == i18n.messages("ko")
    # and the font that draws them is served by the lab
    assert "@font-face" in page and "url('/static/NanumGothic.ttf')" in page


def test_the_page_in_english_is_found_english(no_locale):
    """The check above can fail: the English page has its sentences."""
    with TestClient(create_app()) as client:
        lang, page = _page_language(client, params={"lang": "en"})
        font = client.get("/static/NanumGothic.ttf")
    assert lang == "en" and english_sentences(page)
    assert "<option value='en' selected>English</option>" in page
    assert font.status_code == 200 and font.headers["content-type"] == "font/ttf"
    # the whole font, without the empty hinting tables Chromium's sanitizer refuses
    served = TTFont(io.BytesIO(font.content))
    assert not set(fonts.HINTING_SOURCES) & set(served.keys())
    assert set(TTFont(str(fonts.font_path()))["cmap"].getBestCmap()) == set(
        served["cmap"].getBestCmap()
    )


@pytest.mark.parametrize(
    "served, header, query, expected",
    [
        (None, "ko-KR,ko;q=0.9,en;q=0.8", None, "ko"),  # the browser's
        (None, "en-US,en;q=0.9,ko;q=0.5", None, "en"),
        (None, "fr-FR", None, "en"),  # none of the lab's: the locale's (none here: English)
        (None, None, None, "en"),
        ("ko", "en-US", None, "ko"),  # `serve --lang ko` over the browser's
        ("ko", "en-US", "en", "en"),  # ?lang= over both: the page's control
        (None, "en-US", "ko", "ko"),
    ],
)
def test_the_language_of_a_request(no_locale, served, header, query, expected):
    headers = {"Accept-Language": header} if header else {}
    params = {"lang": query} if query else {}
    with TestClient(create_app(served)) as client:
        assert _page_language(client, headers=headers, params=params)[0] == expected
        described = client.get("/api", headers=headers, params=params).json()
        error = client.get("/api/no-such", headers=headers, params=params).json()["error"]
    assert bool(HANGUL.search(error)) == (expected == "ko")
    assert [e["name"] for e in described["explorables"]] == list(EXPLORABLES)


def test_the_locale_decides_when_nothing_else_does(no_locale, monkeypatch):
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    with TestClient(create_app()) as client:
        assert _page_language(client)[0] == "ko"
        assert _page_language(client, headers={"Accept-Language": "en"})[0] == "en"


def test_lang_is_no_knob_and_an_unknown_one_is_refused(no_locale):
    with TestClient(create_app()) as client:
        answered = client.get("/api/derivative", params={"lang": "ko", "h": "0.01"})
        assert answered.status_code == 200 and answered.json()["params"]["h"] == 0.01
        refused = client.get("/api/derivative", params={"lang": "xx"})
        assert refused.status_code == 400
        assert "lang" in refused.json()["error"] and "'xx'" in refused.json()["error"]
        assert client.get("/", params={"lang": "xx"}).status_code == 400
        assert client.get("/api/derivative").status_code == 200  # and it goes on


@pytest.mark.parametrize(
    "query, korean, english",
    [
        ({"steps": "abc"}, "steps은(는) 5부터 300까지의 정수여야 합니다", "steps must be a whole"),
        ({"steps": "9999"}, "steps은(는) 5부터 300까지여야 합니다", "steps must be from 5"),
        ({"nope": "1"}, "알 수 없는 매개변수 'nope'", "unknown parameter 'nope'"),
        ({"seed": "1", "seed ": "2"}, "알 수 없는 매개변수 'seed '", "unknown parameter"),
    ],
)
def test_a_refused_value_is_said_in_the_language(no_locale, query, korean, english):
    with TestClient(create_app()) as client:
        said = client.get("/api/gd-vs-sgd", params={**query, "lang": "ko"})
        assert said.status_code == 400 and korean in said.json()["error"], said.json()
        said = client.get("/api/gd-vs-sgd", params={**query, "lang": "en"})
        assert said.status_code == 400 and english in said.json()["error"], said.json()


def test_what_an_explorable_says_is_in_the_requests_language(no_locale, monkeypatch):
    """Titles, knob meanings and labels, and the notes computed in a worker thread: each
    in the language of its request, from the catalog (the lecture's terms here)."""

    def compute(*, lr, what):
        return View([], {"lr": lr}, [i18n.term("learning_rate")])

    knob = Knob("lr", N_("learning rate"), 0.1, lo=0.01, hi=1.0, label=N_("step"))
    choice = Knob("what", N_("loss"), "a", kind="choice", choices=("a",), labels={"a": N_("loss")})
    spoken = Explorable("spoken", N_("momentum"), N_("gradient"), (knob, choice), compute)
    monkeypatch.setitem(EXPLORABLES, "spoken", spoken)
    with TestClient(create_app()) as client:
        korean = client.get("/api", params={"lang": "ko"}).json()["explorables"][-1]
        english = client.get("/api", params={"lang": "en"}).json()["explorables"][-1]
        notes = client.get("/api/spoken", params={"lang": "ko", "lr": "0.5"}).json()["notes"]
        other = client.get("/api/spoken", headers={"Accept-Language": "en"}).json()["notes"]
    assert (korean["title"], korean["intro"]) == ("모멘텀(momentum)", "기울기")
    assert korean["knobs"][0]["help"] == "학습률(learning rate)"
    assert korean["knobs"][0]["label"] == "스텝"
    assert korean["knobs"][1]["labels"] == {"a": "손실(loss)"}
    assert (english["title"], english["knobs"][0]["help"]) == ("momentum", "learning rate")
    assert notes == ["학습률(learning rate)"] and other == ["learning rate"]


def test_serve_speaks_the_language_on_the_command_line(no_locale, capsys):
    from lossopt.lab.cli import main

    assert main(["lab", "serve", "--lang", "ko", "--help"]) == 0
    text = capsys.readouterr().out
    assert "브라우저를 열지 않음" in text and "?lang=en|ko를 붙이면" in text
    assert main(["lab", "serve", "--lang", "ko", "--port", "0"]) == 2
    assert "--port는 1부터 65535까지의 정수여야 합니다" in capsys.readouterr().err
    assert main(["lab", "serve", "derivative", "--lang", "ko", "--help"]) == 0
    assert "기본값:" in capsys.readouterr().out


# Every explorable: its words and notes are in the catalog
SPOKEN = list(EXPLORABLES)


@pytest.mark.parametrize("name", SPOKEN)
def test_an_explorables_words_and_notes_in_korean(no_locale, name):
    query = {"lang": "ko", **({"epochs": "1"} if name == "training" else {})}
    with TestClient(create_app()) as client:
        described = {e["name"]: e for e in client.get("/api", params=query).json()["explorables"]}
        answer = client.get(f"/api/{name}", params=query).json()
        english = client.get(f"/api/{name}", params={**query, "lang": "en"}).json()
    shown = described[name]
    said = [shown["title"], shown["intro"], *(k["help"] for k in shown["knobs"])]
    assert all(HANGUL.search(text) for text in said), said
    assert answer["notes"] and all(HANGUL.search(note) for note in answer["notes"])
    assert not [text for text in said + answer["notes"] if english_sentences(text)]
    assert english["notes"] != answer["notes"]  # the check can fail: English is found English
    assert english_sentences(" ".join(english["notes"]), min_words=3) or name == "training"
    # and its figures: titles, axes, legends and labels, names and equations as they are
    assert answer["figures"] and english_in_figures(answer["figures"]) == []
    assert english_in_figures(english["figures"])  # the check can fail: English is found
    # the same numbers, filled in after translation
    numbers = re.compile(r"\d+\.\d+")
    assert sorted(numbers.findall(" ".join(answer["notes"]))) == sorted(
        numbers.findall(" ".join(english["notes"]))
    )
