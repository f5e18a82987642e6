"""The compare report in a real browser: headless Chromium opens index.html, the
figures load, the page has its own title, the console stays clean, and a
screenshot is kept."""

import pytest

from lossopt.__main__ import main
from tests.lab.browser import open_report


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
    seen = open_report(
        report,
        "compare-report.png",
        recommendation="document.querySelector('.recommend').textContent",
        code="document.querySelector('pre code').textContent",
    )
    errors, images, requests = seen["errors"], seen["images"], seen["requests"]
    title, recommendation, code = seen["title"], seen["recommendation"], seen["code"]
    assert errors == []
    assert title == "lossopt lab compare: wine.csv"
    assert [src for src, _, _ in images] == ["compare.png"]
    for src, complete, width in images:
        assert complete and width > 0, src
    assert all(url.startswith("file://") for url in requests)  # offline: no external asset
    assert "95% interval" in recommendation
    assert "torch.optim." in code and "nn.Sequential" in code
