"""The lab's languages: complete catalogs in the lecture's words, the language chosen as gettext
does, and Korean text drawn by matplotlib with a font the lab brings along."""

import ast
import html
import io
import re
import string
import threading
import warnings
from pathlib import Path

import matplotlib
import pytest
from babel.messages import frontend
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from lossopt.lab import fonts, i18n

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from matplotlib.ft2font import FT2Font  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# Babel 2.15 renamed it; pyproject allows 2.12
parse_mapping_cfg = getattr(frontend, "parse_mapping_cfg", None) or frontend.parse_mapping
TRANSLATED = [lang for lang in i18n.languages() if lang != i18n.DEFAULT]

# The lecture's word for each idea; a message that names the idea in English names it so.
# Lower-case "momentum" only: "Momentum" alone is the method's name, kept as the lecture does.
GLOSSARY = {
    "ko": {
        r"(?i:\bentropy\b)": "엔트로피",
        r"(?i:\bcross-entropy\b)": "교차 엔트로피",
        r"(?i:\blearning rates?\b)": "학습률",
        r"\bmomentum\b": "모멘텀",
        r"(?i:\bderivatives?\b)": "미분",
        r"(?i:\binstantaneous rate of change\b)": "순간 변화율",
        r"(?i:\bgradient descent\b)": "경사 하강법",
        r"(?i:\bexponential moving average\b)": "지수 이동평균",
    }
}


def _catalog(path):
    with open(path, "rb") as file:
        return read_po(file)


def _messages(catalog):
    return [message for message in catalog if message.id]


def _forms(message):
    """(msgid, msgstr) pairs: one, or for a plural each translated form against the plural."""
    if isinstance(message.id, str):
        return [(message.id, message.string)]
    return [(message.id[-1], form) for form in message.string]


# %(name)s or %s; no space flag, so that prose such as "a 95% interval" is no placeholder
_PERCENT = re.compile(r"%(?:\(\w+\))?[#0+-]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")


def placeholders(text):
    """The named fields `text` fills, with their format: ['{loss:.3f}', '%(name)s', ...]."""
    fields = [
        f"{{{name}{'!' + conversion if conversion else ''}{':' + spec if spec else ''}}}"
        for _, name, spec, conversion in string.Formatter().parse(text)
        if name is not None
    ]
    percents = _PERCENT.findall(text.replace("%%", ""))
    return sorted(fields + percents)


# Words that make a run of English words a sentence rather than a list of names or a command
_FUNCTION_WORDS = frozenset(
    "a an the of and or to is are be was in on at by for from with than as it its each every "
    "this that which when where not no".split()
)
_HIDDEN = re.compile(
    r"<(script|style|code|pre|math)\b.*?</\1>|<[^>]*class=['\"]?eq['\"]?[^>]*>.*?</[^>]+>",
    re.DOTALL | re.IGNORECASE,
)


def english_sentences(text, allowed=(), min_words=4):
    """The runs of English words in `text` (plain or HTML) that read as a sentence: at least
    `min_words` words in a row, three in lower case, one a function word ("the", "of"),
    outside code, scripts and equations. Names the page keeps in English (`allowed`:
    "AdaGrad", a column's name) are taken out first. For the test that a Korean page has no
    English left; a list of names ("SGD, Momentum and Adam") or a command is no sentence."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", _HIDDEN.sub(" ", text)))
    for name in sorted(allowed, key=len, reverse=True):
        text = text.replace(name, " ")
    runs = re.findall(r"[A-Za-z][A-Za-z'-]*(?:[ ,]+[A-Za-z][A-Za-z'-]*)+", text)
    return [
        run
        for run in runs
        if len(words := re.findall(r"[A-Za-z'-]+", run)) >= min_words
        and _FUNCTION_WORDS & {word.lower() for word in words}
        and sum(word.islower() for word in words) >= 3  # not a list of names
    ]


# What a figure keeps as it is: the names of optimizers, losses, functions and options of the
# code, the mining rule's name, a unit and an abbreviation (1-NN). A figure's label is a few
# words, not a sentence, so a Korean figure is checked word by word.
FIGURE_NAMES = frozenset(
    "GD SGD Momentum AdaGrad RMSProp Adam Huber MSE KL softmax autograd log argmin lossopt torch "
    "ignore_index batch_semi_hard lr nat NN".split()
)


def english_words(text, allowed=FIGURE_NAMES):
    """The English words in a figure's label `text`: runs of two or more Latin letters, save
    the names it keeps (`allowed`), the English name the lecture puts beside its word
    ("학습률(learning rate)", "순방향 KL(P||Q) (forward)": in a label with Korean, English
    alone in brackets) and a symbol of an equation (D_KL, g_B, ∂loss)."""
    text = re.sub(r"(?<=[가-힣])\([^()]*\)", " ", text)
    if re.search("[가-힣]", text):
        text = re.sub(r"\([A-Za-z][A-Za-z ,'-]*\)", " ", text)
    words = re.findall(r"(?<![∂\w])[A-Za-z][A-Za-z_]*[A-Za-z]", text)
    symbol = re.compile(r"[A-Za-z]_")  # one letter with a subscript: g_B, Q_t, D_KL
    return [word for word in words if word not in allowed and not symbol.match(word)]


def figure_labels(spec):
    """Every word a figure spec (Figure.to_json) shows: its title, its axes' labels, its
    series' names, the texts beside their points and a bar chart's categories."""
    labels = [spec["title"], spec["x"]["label"], spec["y"]["label"]]
    for series in spec["series"]:
        labels += [series["name"], *(series.get("text") or [])]
        labels += [x for x in series["x"] if series["kind"] == "bar" and isinstance(x, str)]
    return [label for label in labels if label]


def english_in_figures(specs):
    """(figure, label, English words) for each label of `specs` with a word left in English."""
    return [
        (spec["name"], label, found)
        for spec in specs
        for label in figure_labels(spec)
        if (found := english_words(label))
    ]


def _extracted():
    """Every message the code wraps, extracted as `make catalogs` does (from babel.cfg)."""
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = extract_from_dir(ROOT / "src" / "lossopt", method_map, options_map)
    return {message if isinstance(message, str) else message[0] for _, _, message, *_ in found}


# --- the catalogs -------------------------------------------------------------------------


def test_korean_is_a_language():
    assert i18n.languages() == ("en", "ko")


@pytest.mark.parametrize("lang", TRANSLATED)
def test_every_message_has_a_translation(lang):
    catalog = _catalog(i18n.catalog_path(lang))
    messages = _messages(catalog)
    assert messages
    missing = [m.id for m in messages if not all(s.strip() for _, s in _forms(m))]
    fuzzy = [m.id for m in messages if m.fuzzy]  # left out when compiled: still English
    assert not missing, f"{lang}: untranslated {missing}"
    assert not fuzzy, f"{lang}: fuzzy (review, then drop the flag) {fuzzy}"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_the_catalogs_hold_every_wrapped_message(lang):
    """A message wrapped in the code but not in the template and every .po fails here: run
    `make catalogs` and translate. The template holds nothing the code no longer says."""
    extracted = _extracted()
    template = {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in _messages(_catalog(i18n.LOCALE_DIR / f"{i18n.DOMAIN}.pot"))
    }
    translated = {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in _messages(_catalog(i18n.catalog_path(lang)))
    }
    assert extracted, "no wrapped message found: is babel.cfg's mapping right?"
    assert sorted(extracted - template) == [], "not in lossopt.pot: run `make catalogs`"
    assert sorted(template - extracted) == [], "no longer in the code: run `make catalogs`"
    assert sorted(extracted - translated) == [], f"not in {lang}'s .po: run `make catalogs`"


@pytest.mark.parametrize("lang", TRANSLATED)
def test_translations_fill_the_same_placeholders(lang):
    wrong = [
        (source, text)
        for message in _messages(_catalog(i18n.catalog_path(lang)))
        for source, text in _forms(message)
        if placeholders(source) != placeholders(text)
    ]
    assert not wrong


def test_placeholders_are_compared_by_name_and_format():
    assert placeholders("loss {loss:.3f} after {steps} steps") == ["{loss:.3f}", "{steps}"]
    assert placeholders("{steps} 스텝 뒤 손실 {loss:.3f}") == ["{loss:.3f}", "{steps}"]
    assert placeholders("loss {loss:.3f}") != placeholders("손실 {loss:.2f}")
    assert placeholders("{name!r} and %(count)d") == ["%(count)d", "{name!r}"]
    assert placeholders("braces {{kept}} as text") == []
    assert placeholders("required: %s; 100%% sure, a 95% interval") == ["%s"]


def test_the_english_sentence_finder():
    page = (
        "<h2>학습률(learning rate)</h2><p>SGD, Momentum, AdaGrad, RMSProp and Adam 비교."
        "<code>lossopt lab compare --data my.csv --target label</code>"
        "<div class='eq'>W is the weight of the step</div>"
        "<script>const x = 'the value of each bar';</script></p>"
    )
    assert english_sentences(page) == []
    leftover = page + "<p>The learning rate is chosen on a validation part.</p>"
    assert english_sentences(leftover) == ["The learning rate is chosen on a validation part"]
    assert english_sentences("열 the price of a house 예측", allowed=["the price of a house"]) == []
    assert english_sentences("손실: the loss of it") == ["the loss of it"]


def test_the_english_word_finder():
    kept = ["학습률(learning rate) η", "D_KL(P‖Q_t) = H(P, Q_t) − H(P)", "행의 |∂loss/∂logits|",
            "Momentum, lr=0.1", "−log softmax", "1-NN 정확도 93%", "|g_B − g| / |g|",
            "x (완만한 방향)"]  # fmt: skip
    assert [english_words(label) for label in kept] == [[]] * len(kept)
    assert english_words("손실 per epoch") == ["per", "epoch"]
    assert english_words("validation (검증)") == ["validation"]  # only beside Korean
    assert english_words("순방향 KL (forward)") == []
    assert english_words("x (forward)") == ["forward"]
    bars = {"name": "SGD", "kind": "bar", "x": ["fair die"], "text": ["start"]}
    spec = {"title": "스텝", "x": {"label": "step"}, "y": {"label": ""}, "name": "loss",
            "series": [bars]}  # fmt: skip
    assert english_in_figures([spec]) == [
        ("loss", "step", ["step"]),
        ("loss", "start", ["start"]),
        ("loss", "fair die", ["fair", "die"]),
    ]


@pytest.mark.parametrize("lang", TRANSLATED)
def test_no_translation_is_left_in_english(lang):
    left = [
        (source, found)
        for message in _messages(_catalog(i18n.catalog_path(lang)))
        for source, text in _forms(message)
        if (found := english_sentences(text))
    ]
    assert not left


@pytest.mark.parametrize("lang", sorted(GLOSSARY))
def test_translations_use_the_lecture_terms(lang):
    unfaithful = [
        (source, text, word)
        for message in _messages(_catalog(i18n.catalog_path(lang)))
        for source, text in _forms(message)
        for pattern, word in GLOSSARY[lang].items()
        if re.search(pattern, source) and word not in text
    ]
    assert not unfaithful


def test_the_lecture_terms_in_korean():
    with i18n.language("ko"):
        assert i18n.term("learning_rate") == "학습률(learning rate)"
        assert i18n.term("cross_entropy") == "교차 엔트로피(cross-entropy)"
        assert i18n.term("rate_of_change") == "순간 변화율"
        assert i18n.term("momentum").startswith("모멘텀")
    with i18n.language("en"):
        assert i18n.term("learning_rate") == "learning rate"
    with pytest.raises(ValueError, match="'speed'"):
        i18n.term("speed")


def test_every_term_is_translated_in_korean():
    with i18n.language("ko"):
        for key, english in i18n.TERMS.items():
            assert i18n.term(key) != english, key
            assert re.search("[가-힣]", i18n.term(key)), key


# --- choosing the language ----------------------------------------------------------------


@pytest.fixture
def fresh_language():
    """No --lang chosen, before and after the test."""
    i18n.set_language(None)
    yield
    i18n.set_language(None)


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({}, "en"),
        ({"LANG": "ko_KR.UTF-8"}, "ko"),
        ({"LANG": "ko"}, "ko"),
        ({"LC_MESSAGES": "ko_KR.UTF-8@dict", "LANG": "en_US.UTF-8"}, "ko"),
        ({"LC_ALL": "ko_KR.UTF-8", "LANG": "en_US.UTF-8"}, "ko"),
        ({"LC_ALL": "C.UTF-8", "LANG": "ko_KR.UTF-8"}, "en"),  # the first one set decides
        ({"LANGUAGE": "fr:ko", "LANG": "en_US.UTF-8"}, "ko"),  # LANGUAGE's list, in order
        ({"LANGUAGE": "en:ko"}, "en"),
        ({"LANGUAGE": "fr", "LANG": "ko_KR.UTF-8"}, "en"),  # as Python's gettext
        ({"LANGUAGE": "", "LANG": "ko-KR"}, "ko"),  # an empty one is skipped
        ({"LANG": "POSIX"}, "en"),
        ({"LANG": "ja_JP.UTF-8"}, "en"),  # no catalog: the source language
    ],
)
def test_language_from_the_environment(environ, expected):
    assert i18n.from_environment(environ) == expected


def test_the_environment_decides_until_a_language_is_set(monkeypatch, fresh_language):
    for variable in i18n.ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    assert i18n.get_language() == "ko"
    assert i18n._("learning rate") == "학습률(learning rate)"
    assert i18n.set_language("en") == "en"
    assert i18n._("learning rate") == "learning rate"
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert i18n.set_language("ko") == "ko"
    assert i18n.set_language(None) == "en"


@pytest.mark.parametrize("bad, error", [("xx", ValueError), ("", ValueError), (3, TypeError)])
def test_an_unknown_language_is_refused_and_changes_nothing(bad, error, fresh_language):
    i18n.set_language("ko")
    with pytest.raises(error, match="lang must be"):
        i18n.set_language(bad)
    with pytest.raises(error, match="lang must be"):
        with i18n.language(bad):
            pass
    assert i18n.get_language() == "ko"
    if isinstance(bad, str) and bad:
        with pytest.raises(ValueError, match=repr(bad)):
            i18n.check_language(bad)


def test_a_language_block_is_its_own(fresh_language, monkeypatch):
    monkeypatch.setenv("LANGUAGE", "en")
    seen = {}
    with i18n.language("ko") as lang:
        assert lang == "ko" and i18n.get_language() == "ko"
        # another thread (a server's other request) keeps the process's language
        worker = threading.Thread(target=lambda: seen.update(other=i18n.get_language()))
        worker.start()
        worker.join()
        with i18n.language("en"):
            assert i18n._("momentum") == "momentum"
        assert i18n._("momentum") == "모멘텀(momentum)"
    assert seen == {"other": "en"}
    assert i18n.get_language() == "en"


def test_english_needs_no_catalog_and_counts_in_english():
    with i18n.language("en"):
        assert i18n._("a message no catalog holds") == "a message no catalog holds"
        assert i18n.ngettext("{n} step", "{n} steps", 1).format(n=1) == "1 step"
        assert i18n.ngettext("{n} step", "{n} steps", 3).format(n=3) == "3 steps"
    with i18n.language("ko"):  # not in the catalog: the English falls through, never an error
        assert i18n.ngettext("{n} step", "{n} steps", 3).format(n=3) == "3 steps"


def test_korean_is_compiled_from_the_po_itself():
    """What the lab says is what the .po says: every translation, read through gettext."""
    compiled = i18n.translations("ko")
    for message in _messages(_catalog(i18n.catalog_path("ko"))):
        if isinstance(message.id, str):
            assert compiled.gettext(message.id) == message.string
        else:
            for n in (1, 2, 5):
                assert compiled.ngettext(*message.id, n) == message.string[0]


# --- Korean in figures and pages ----------------------------------------------------------

_MISSING = "Glyph .* missing from font"  # a plain text's warning
_MATH_MISSING = "does not have a glyph"  # mathtext's, logged


def _draw(labels):
    figure, axes = plt.subplots(figsize=(3, 2))
    axes.plot([0, 1, 2], [2.0, -0.5, 0.25], label=labels[0])
    axes.set_title(labels[1])
    axes.set_xlabel(labels[2])
    axes.set_ylabel(labels[3])
    axes.text(0.5, 0.5, labels[4])
    axes.legend()
    figure.savefig(io.BytesIO(), format="png")
    plt.close(figure)


def _korean_labels():
    with i18n.language("ko"):
        return [
            i18n.term("learning_rate"),
            f"{i18n.term('cross_entropy')} −0.25, e², η",
            i18n.term("step"),
            i18n.term("loss"),
            i18n.term("rate_of_change"),
        ]


def test_a_korean_figure_renders_without_missing_glyphs(caplog):
    labels = _korean_labels()
    with matplotlib.rc_context(fonts.rc()), warnings.catch_warnings():
        warnings.filterwarnings("error", message=_MISSING)
        _draw(labels)
    assert not [r.getMessage() for r in caplog.records if _MATH_MISSING in r.getMessage()]


def test_without_the_font_the_same_figure_misses_glyphs():
    """The check above can fail: with English fonts only, Hangul is reported missing."""
    fonts.rc()  # registered, but not in the family list
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        with pytest.warns(UserWarning, match=_MISSING):
            _draw(_korean_labels())


_EQUATION = re.compile(r"(?<!\\)\$\S(?:.*?\S)?(?<!\\)\$")


def test_mathtext_has_no_fallback_so_no_korean_message_holds_an_equation(caplog):
    """Hangul beside an equation in one label is lost (mathtext uses the first family only),
    so no message of a catalog is a label with `$...$` in it: equations are labels of their
    own, as they stay as they are."""
    with matplotlib.rc_context(fonts.rc()):
        _draw(["x", "y", "z", r"$\ell_n$", r"학습률 $\eta$"])
    assert [r for r in caplog.records if _MATH_MISSING in r.getMessage()]
    with_math = [
        source
        for lang in TRANSLATED
        for message in _messages(_catalog(i18n.catalog_path(lang)))
        for source, _text in _forms(message)
        if _EQUATION.search(source)
    ]
    assert not with_math
    assert _EQUATION.search(r"loss $\ell_n$") and not _EQUATION.search("costs $5, or 6")


def test_the_font_comes_from_an_installed_package_and_matplotlib_finds_it():
    path = fonts.font_path()
    assert path.is_file() and path.name == fonts.FILE
    assert "koreanize_matplotlib" in path.parts or path in fonts.SYSTEM_FILES
    fonts.rc()
    found = font_manager.fontManager.findfont(
        font_manager.FontProperties(family=fonts.FAMILY), fallback_to_default=False
    )
    assert Path(found).resolve() == path.resolve()


def test_every_korean_message_has_its_glyphs():
    """Each character of every translation is in Nanum Gothic or the English font."""
    covered = set(FT2Font(str(fonts.font_path())).get_charmap())
    english = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"))
    covered |= set(FT2Font(english).get_charmap())
    text = "".join(s for m in _messages(_catalog(i18n.catalog_path("ko"))) for _, s in _forms(m))
    assert re.search("[가-힣]", text)
    assert sorted({c for c in text if ord(c) not in covered and not c.isspace()}) == []


def test_register_puts_the_font_last_once():
    with matplotlib.rc_context({"font.family": ["serif"]}):
        assert fonts.register() == fonts.FAMILY
        fonts.register()
        assert matplotlib.rcParams["font.family"] == ["serif", fonts.FAMILY]
        assert fonts.rc() == {"font.family": ["serif", fonts.FAMILY]}
    assert fonts.families("sans-serif") == ["sans-serif", fonts.FAMILY]


def test_the_page_fonts():
    korean, english = fonts.css_family("ko"), fonts.css_family("en")
    assert korean.startswith(f"'{fonts.FAMILY}'") and english.startswith("system-ui")
    assert f"'{fonts.FAMILY}'" in english and "system-ui" in korean
    assert korean.endswith(", sans-serif") and english.endswith(", sans-serif")
    rule = fonts.font_face_css("/static/NanumGothic.ttf")
    assert rule.startswith("@font-face") and "url('/static/NanumGothic.ttf')" in rule
    assert f"font-family: '{fonts.FAMILY}'" in rule
    for bad in ("", "x') ; }", None):
        with pytest.raises(ValueError, match="url must be"):
            fonts.font_face_css(bad)


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def no_locale(monkeypatch, fresh_language):
    for variable in i18n.ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["lab", "--lang", "ko"], "ko"),
        (["lab", "--lang=ko", "paths"], "ko"),
        (["lab", "--lang", "ko", "compare", "--lang", "en"], "en"),  # the last, as argparse
        (["lab", "--lang", "xx"], None),  # the parser says what is wrong
        (["lab", "--lang"], None),
        (["lab", "--", "--lang", "ko"], None),
        (["lab"], None),
    ],
)
def test_the_language_a_command_line_asks_for(argv, expected):
    assert i18n.requested(argv) == expected


@pytest.mark.parametrize(
    "command", [["lab"], ["lab", "compare"], ["lab", "paths"], ["lab", "serve"]]
)
def test_lang_is_an_option_of_every_command(command, no_locale, capsys):
    from lossopt.lab.cli import main

    assert main([*command, "--lang", "ko", "--help"]) == 0
    korean = capsys.readouterr().out
    assert "--lang {en,ko}" in korean and "보고서와 메시지의 언어" in korean
    assert main([*command, "--lang", "en", "--help"]) == 0
    english = capsys.readouterr().out
    assert "language of the report and the messages" in english


def test_the_command_line_speaks_the_locale_unless_told(monkeypatch, no_locale, capsys):
    from lossopt.lab.cli import main

    monkeypatch.setenv("LANG", "ko_KR.UTF-8")
    assert main([]) == 2
    assert "lossopt: 오류: 명령을 지정하세요" in capsys.readouterr().err
    assert main(["lab", "--lang", "en", "--seed", "x"]) == 2
    assert "lossopt: error: " in capsys.readouterr().err
    assert main(["lab", "--lang", "ko", "--seed", "x"]) == 2
    assert "lossopt: 오류: " in capsys.readouterr().err


def test_an_unknown_lang_is_refused_by_name(no_locale, capsys, tmp_path):
    from lossopt.lab.cli import main

    out = tmp_path / "report"
    assert main(["lab", "paths", "--lang", "xx", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "--lang" in error and "'xx'" in error
    assert not out.exists()


def test_argparse_speaks_the_language_too(no_locale, capsys):
    import argparse
    import gettext

    from lossopt.lab.cli import main

    assert main(["lab", "--lang", "ko", "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("사용법: lossopt lab") and "\n옵션:\n" in text
    assert main(["lab", "--lang", "ko", "--seed"]) == 2
    assert "오류: 인자 --seed: 인자 하나가 필요합니다" in capsys.readouterr().err
    assert main(["lab", "nope", "--lang", "ko"]) == 2
    assert "잘못된 선택: 'nope'" in capsys.readouterr().err
    assert main(["lab", "compare", "--lang", "ko"]) == 2
    assert "다음 인자가 필요합니다: --data, --target" in capsys.readouterr().err
    assert main(["lab", "--lang", "en", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: lossopt lab")
    assert argparse._ is gettext.gettext  # only while the lab parses


def test_argparse_messages_keep_their_placeholders():
    for message in i18n.ARGPARSE:
        with i18n.language("ko"):
            assert placeholders(i18n._(message)) == placeholders(message)


def test_the_font_is_found_from_the_package_else_debian_else_a_clear_error(monkeypatch, tmp_path):
    debian = tmp_path / fonts.FILE
    debian.write_bytes(fonts.font_path().read_bytes())
    monkeypatch.setattr(fonts, "PACKAGE", "no_such_font_package")
    monkeypatch.setattr(fonts, "SYSTEM_FILES", (debian,))
    fonts.font_path.cache_clear()
    try:
        assert fonts.font_path() == debian
        fonts.font_path.cache_clear()
        monkeypatch.setattr(fonts, "SYSTEM_FILES", (tmp_path / "absent.ttf",))
        with pytest.raises(fonts.FontError, match="fonts-nanum"):
            fonts.font_path()
    finally:
        monkeypatch.undo()
        fonts.font_path.cache_clear()
    assert "koreanize_matplotlib" in fonts.font_path().parts


def test_the_catalogs_ship_with_the_package():
    """pyproject's package data names every catalog, so a wheel (not only a checkout) has them."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    with open(ROOT / "pyproject.toml", "rb") as file:
        patterns = tomllib.load(file)["tool"]["setuptools"]["package-data"]["lossopt"]
    package = ROOT / "src" / "lossopt"
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    catalogs = {i18n.catalog_path(lang) for lang in TRANSLATED}
    assert catalogs and catalogs <= shipped
    assert i18n.LOCALE_DIR / f"{i18n.DOMAIN}.pot" in shipped


def test_the_output_folder_refuses_in_the_language(tmp_path):
    from lossopt.lab import output

    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    for lang, expected in (("ko", "폴더가 아니라 파일입니다"), ("en", "is a file, not a folder")):
        with i18n.language(lang), pytest.raises(output.OutputError, match=expected):
            output.check(taken, "lab")
    assert taken.read_text() == "mine"


def test_an_unknown_optimizer_is_named_in_the_language():
    from lossopt.lab.optimizers import parse_optimizers

    with i18n.language("ko"), pytest.raises(ValueError, match="알 수 없는 최적화 알고리즘 'adamx'"):
        parse_optimizers("sgd,adamx")
    with i18n.language("en"), pytest.raises(ValueError, match="unknown optimizer 'adamx'"):
        parse_optimizers("sgd,adamx")


@pytest.mark.parametrize(
    "header, expected",
    [
        ("ko-KR,ko;q=0.9,en-US;q=0.8,en;q=0.7", "ko"),
        ("en-US,en;q=0.9,ko;q=0.8", "en"),
        ("fr-FR, ko;q=0.5, en;q=0.4", "ko"),
        ("en;q=0.2, ko;q=0.9", "ko"),  # by quality, not order
        ("ko;q=0, en;q=0.1", "en"),  # q=0: not acceptable
        ("ko;q=abc", None),
        ("fr, de", None),
        ("", None),
        (None, None),
    ],
)
def test_the_language_a_browser_asks_for(header, expected):
    assert i18n.negotiate(header) == expected


def test_the_live_page_gets_the_catalog_by_its_english():
    korean = i18n.messages("ko")
    assert korean["learning rate"] == "학습률(learning rate)"
    singular = [m for m in _messages(_catalog(i18n.catalog_path("ko"))) if isinstance(m.id, str)]
    assert len(korean) == len(singular)  # a count's forms are the server's (ngettext)
    assert i18n.messages("en") == {}
    with pytest.raises(ValueError, match="'xx'"):
        i18n.messages("xx")


def test_the_live_pages_script_is_extracted_too(tmp_path):
    """babel.cfg maps the live page's script, so a message it wraps must be in the catalog."""
    static = tmp_path / "lab" / "live" / "static"
    static.mkdir(parents=True)
    (static / "page.js").write_text('label.textContent = _("a message of the page");\n')
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = [message for _, _, message, *_ in extract_from_dir(tmp_path, method_map, options_map)]
    assert found == ["a message of the page"]


def _wrapped_calls(source):
    """(line, first argument) of each _() / ngettext() / N_() call in `source`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            if node.func.id in ("_", "ngettext", "N_"):
                yield node.lineno, node.args[0]


def _filled_before_translation(argument):
    return isinstance(argument, (ast.JoinedStr, ast.BinOp, ast.Call))


def test_numbers_are_filled_in_after_translation():
    """_(f"loss {loss}") or _("loss " + x) can never match the catalog: the message is
    looked up with its placeholders, then filled (`_("loss {loss:.3f}").format(loss=...)`)."""
    wrong = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / "src" / "lossopt").rglob("*.py"))
        for line, argument in _wrapped_calls(path.read_text(encoding="utf-8"))
        if _filled_before_translation(argument)
    ]
    assert not wrong
    found = list(_wrapped_calls('_(f"loss {x}")\n_("a" + b)\n_("ok {x}").format(x=1)\n'))
    assert [_filled_before_translation(argument) for _, argument in found] == [True, True, False]


def _families(css):
    return [name.strip().strip("'\"") for name in css.split(",")]


def test_the_reports_page_lists_the_korean_fonts():
    """The static report's stylesheet (page.py imports nothing of the lab) names the same
    Korean fonts as fonts.css_family, so its Korean text is Korean wherever one is present."""
    from lossopt.lab import page

    body = re.search(r"body\{font-family:([^;]*);", page.STYLE).group(1)
    listed = _families(body)
    assert set(_families(fonts.KOREAN_CSS)) <= set(listed)
    assert listed[-1] == "sans-serif"


def test_a_page_can_carry_the_korean_it_uses(tmp_path, caplog):
    text = "".join(i18n.messages("ko").values()) + "0123 abc −"
    rule = fonts.embed(tmp_path, text)
    written = tmp_path / fonts.SUBSET_FILE
    assert rule == fonts.font_face_css(fonts.SUBSET_FILE)
    carried = set(FT2Font(str(written)).get_charmap())
    hangul = {ord(c) for c in text if "가" <= c <= "힣"}
    assert hangul and hangul <= carried  # every syllable the page shows
    assert len(carried) <= len(set(text)) + 10  # and not the rest of the font
    assert written.stat().st_size < fonts.font_path().stat().st_size / 10
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
