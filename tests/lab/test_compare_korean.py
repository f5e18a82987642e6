"""`lossopt lab compare --lang ko`: the whole report in Korean from the catalogs (prose,
headings, tables, warnings, figures, messages and errors), with every Korean glyph drawn."""

import io
import re
import warnings
from pathlib import Path

import matplotlib
import pytest

from lossopt.__main__ import main
from lossopt.lab import compare_plots, compare_report, i18n
from lossopt.lab.compare import Settings, compare
from lossopt.lab.data import read_table
from tests.lab.test_compare import FAST, _korean_csv, _noise_csv
from tests.lab.test_i18n import _MATH_MISSING, _MISSING, english_sentences

HANGUL = re.compile("[가-힣]")
HANGUL_WORD = re.compile("[가-힣]+")
# What a Korean page keeps as written: names of optimizers, models and libraries
NAMES = ["SGD", "Momentum", "AdaGrad", "RMSProp", "Adam", "AdamW", "LogisticRegression", "Ridge"]


@pytest.fixture
def no_locale(monkeypatch):
    for variable in i18n.ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    i18n.set_language(None)
    yield
    i18n.set_language(None)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    """The Korean table compared once, at the quickest settings, for the rendering tests."""
    folder = tmp_path_factory.mktemp("korean")
    table = read_table(_korean_csv(folder), "구매")
    settings = Settings(quick=True, optimizers=("momentum", "adam"), epochs=40, jobs=1)
    return compare(table, settings)


def _text(page):
    return re.sub(r"\s+", " ", page)


def test_the_korean_report_has_no_english_sentence(tmp_path, no_locale, capsys):
    csv = _korean_csv(tmp_path)
    out = tmp_path / "ko"
    args = ["lab", "compare", "--data", str(csv), "--target", "구매", "--out", str(out)]
    assert main([*args, "--lang", "ko", "--optimizers", "momentum,adam", *FAST]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    with i18n.language("ko"):
        for heading in (
            "Which optimizer for this data?",
            "The rule and the baselines, on the test rows",
            "Each optimizer inside the splits",
            "Data and method",
        ):
            assert i18n._(heading) in page and HANGUL.search(i18n._(heading))
    assert "학습률" in page and "검증" in page and "테스트 행" in page
    assert english_sentences(page, NAMES) == []


def test_the_same_page_in_english_is_found_english(comparison):
    """The check above can fail: the same result described in English has its sentences."""
    with i18n.language("en"):
        english = compare_report._describe(comparison)
    with i18n.language("ko"):
        korean = compare_report._describe(comparison)
    assert len(english_sentences(english, NAMES)) > 5
    assert english_sentences(korean, NAMES) == []
    assert len(HANGUL.findall(korean)) > 300
    # the numbers are the same, filled in after translation
    numbers = re.compile(r"\d+\.\d{3}")
    assert sorted(numbers.findall(_text(english))) == sorted(numbers.findall(_text(korean)))


def test_warnings_and_no_recommendation_in_korean(tmp_path, no_locale, capsys):
    path = _noise_csv(tmp_path)
    out = tmp_path / "noise"
    args = ["lab", "compare", "--data", str(path), "--target", "y", "--out", str(out)]
    assert main([*args, "--lang", "ko", "--optimizers", "adam", "--lr", "0.01", *FAST]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    error = capsys.readouterr().err
    assert "추천 없음" in page and "붙여 넣을 설정" not in page
    assert "경고: 규칙의 신경망이 잡음을 넘어 클래스 사전 분포 (다수 클래스) 기준 모델을" in error
    assert english_sentences(page, NAMES) == []


def _labels(figure):
    """Every text a figure shows: titles, axis labels, tick labels, legends, annotations."""
    found = []
    for axes in figure.axes:
        found += [axes.get_title(), axes.get_xlabel(), axes.get_ylabel()]
        found += [t.get_text() for t in axes.get_yticklabels()]
        found += [t.get_text() for t in axes.texts]
        legend = axes.get_legend()
        if legend is not None:
            found += [t.get_text() for t in legend.get_texts()]
    return [text for text in found if text]


def test_the_korean_figures_draw_every_glyph(comparison, caplog):
    with i18n.language("ko"):
        [(name, figure)] = compare_plots.comparison(comparison)
    labels = _labels(figure)
    assert name == "compare.png"
    assert sum(bool(HANGUL.search(text)) for text in labels) >= 15
    assert not [t for t in labels if english_sentences(t, NAMES, min_words=3)]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=_MISSING)
        figure.savefig(io.BytesIO(), format="png")
    assert not [r for r in caplog.records if _MATH_MISSING in r.getMessage()]
    matplotlib.pyplot.close(figure)
    with i18n.language("en"):
        [(_name, english)] = compare_plots.comparison(comparison)
    assert not any(HANGUL.search(text) for text in _labels(english) if "구매" not in text)
    matplotlib.pyplot.close(english)


def test_the_exported_script_stays_code_in_english(comparison):
    with i18n.language("ko"):
        script = compare_report.script(comparison)
        snippet = compare_report.code(comparison)
    table = Path(comparison.data).read_text(encoding="utf-8")
    for name in sorted(set(HANGUL_WORD.findall(table)), key=len, reverse=True):  # the data's
        script = script.replace(name, "")
    assert not HANGUL.search(script)
    assert not HANGUL.search(snippet)


@pytest.mark.parametrize(
    "extra, said",
    [
        (["--data", "없는.csv", "--target", "y"], "데이터 파일이 없습니다: 없는.csv"),
        (["--target", "구매", "--metric", "rmse"], "--metric rmse은(는) 회귀(regression)용입니다"),
        (["--target", "구매", "--jobs", "0"], "--jobs는 1부터 256까지의 정수여야 합니다"),
        (["--target", "구매", "--export", "x.txt"], "--export에는 .py 파일을 지정해야 합니다"),
        (["--target", "없음"], "목표 열 '없음'이(가)"),
        (["--target", "구매", "--device", "tpu"], "--device는 auto, cpu, cuda 중 하나여야"),
    ],
)
def test_compare_errors_in_korean(tmp_path, no_locale, capsys, extra, said):
    csv = _korean_csv(tmp_path)
    out = tmp_path / "out"
    data = [] if "--data" in extra else ["--data", str(csv)]
    assert main(["lab", "compare", *data, *extra, "--out", str(out), "--lang", "ko"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("lossopt: 오류: ") and said in error, error
    assert not out.exists()


def test_compare_help_in_korean(no_locale, capsys):
    assert main(["lab", "compare", "--lang", "ko", "--help"]) == 0
    text = capsys.readouterr().out
    assert "점수 지표: accuracy" in text and "(분류); rmse, mae, r2 (회귀)" in text
    assert "동시에 학습시키는 프로세스 수" in text
    assert "AdamW의 분리된 가중치 감쇠(weight decay)" in text
