"""One figure definition: the spec is plain data, and matplotlib draws exactly its numbers."""

import json
import math

import matplotlib
import pytest

from lossopt.lab.figures import Axis, Figure, Series, draw_matplotlib

matplotlib.use("Agg")


def _figure() -> Figure:
    return Figure(
        title="paths",
        x=Axis("x", range=(-10, 10)),
        y=Axis("loss", scale="log"),
        series=[
            Series("contour", "f", x=[0, 1, 2], y=[0, 1], z=[[0, 1, 4], [1, 2, 5]]),
            Series("line", "SGD", x=[0.0, 1.0, 2.0], y=[1.0, 0.5, math.nan], color="#444444"),
            Series("scatter", "start", x=[0.0], y=[1.0], text=["start"], symbol="star"),
            Series("vline", "limit", x=[1.5], dash=True),
            Series("hline", "H(P)", y=[0.7]),
        ],
    )


def test_the_spec_is_json_with_non_finite_numbers_as_null():
    spec = json.loads(json.dumps(_figure().to_json(), allow_nan=False))
    assert spec["series"][1]["y"] == [1.0, 0.5, None]
    assert spec["y"]["scale"] == "log" and spec["x"]["range"] == [-10, 10]


def test_matplotlib_draws_the_spec_numbers():
    ax = draw_matplotlib(_figure())
    (line,) = [line for line in ax.get_lines() if line.get_label() == "SGD"]
    assert list(line.get_xdata()) == [0.0, 1.0, 2.0]
    assert ax.get_yscale() == "log" and ax.get_xlim() == (-10, 10)
    assert ax.get_title() == "paths"
    assert [tuple(p) for p in ax.collections[-1].get_offsets()] == [(0.0, 1.0)]


def test_bad_series_are_refused_by_name():
    with pytest.raises(ValueError, match="'a': 2 x but 1 y"):
        Series("line", "a", x=[0, 1], y=[0])
    with pytest.raises(ValueError, match="kind"):
        Series("pie", "a")
    with pytest.raises(ValueError, match="z must be"):
        Series("contour", "f", x=[0, 1], y=[0], z=[[0]])
    with pytest.raises(ValueError, match="scale"):
        Axis(scale="symlog")


def test_knobs_and_figures_import_nothing_of_the_lab_nor_matplotlib():
    import subprocess
    import sys

    code = (
        "import sys, lossopt.lab.knobs, lossopt.lab.figures, lossopt.lab.live\n"
        "print(sorted(m for m in sys.modules if m.startswith(('lossopt.lab', 'matplotlib',"
        " 'starlette', 'uvicorn'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout.strip())
    # i18n, the language of a knob's help and errors, imports nothing of the lab either
    assert loaded == [
        "lossopt.lab",
        "lossopt.lab.figures",
        "lossopt.lab.i18n",
        "lossopt.lab.knobs",
        "lossopt.lab.live",
    ]


def test_matplotlib_draws_bars_grouped_with_their_errors_texts_and_open_rings():
    spec = Figure(
        title="bars",
        x=Axis("class"),
        y=Axis("p"),
        series=[
            Series("bar", "a", x=["c0", "c1"], y=[0.25, 0.5], error=[0.1, 0.2], text=["x", "y"]),
            Series("bar", "b", x=["c0", "c1"], y=[0.75, 1.0]),
            Series("scatter", "anchor", x=[0.0], y=[0.5], symbol="ring", size=10),
        ],
    )
    ax = draw_matplotlib(spec)
    heights = [round(p.get_height(), 6) for p in ax.patches]
    assert heights == [0.25, 0.5, 0.75, 1.0]
    centres = [p.get_x() + p.get_width() / 2 for p in ax.patches]
    assert centres[0] < 0 < centres[2] and centres[1] < 1 < centres[3]  # side by side
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c0", "c1"]
    assert {t.get_text() for t in ax.texts} == {"x", "y"}
    (ring,) = [c for c in ax.collections if c.get_label() == "anchor"]
    assert len(ring.get_facecolors()) == 0  # open: what lies under it shows
    with pytest.raises(ValueError, match="'e': 1 errors but 2 y"):
        Series("bar", "e", x=[0, 1], y=[0, 1], error=[0.1])


def test_the_static_report_draws_no_picture_by_hand():
    import inspect
    import re

    from lossopt.lab import plots

    source = inspect.getsource(plots)
    calls = r"\.(plot|scatter|bar|barh|contour|annotate|fill_between|loglog|axhline|axvline)\("
    assert re.findall(calls, source) == []  # every picture is a spec, drawn by draw_matplotlib


def test_a_live_explorable_and_the_static_report_build_the_same_picture():
    """The derivative's picture: the live lab at the report's settings, and the report's
    figure, hold the same curve and the same error curves, from one builder."""
    from lossopt.lab import plots
    from lossopt.lab.config import Config
    from lossopt.lab.experiments import EXPERIMENTS
    from lossopt.lab.live.catalog import EXPLORABLES

    r = EXPERIMENTS["derivative"](Config(quick=True))
    live = EXPLORABLES["derivative"].run({"w": r.tangents[0].w, "h": r.h, "seed": 0})
    slope = {s["name"]: s for s in live["figures"][0]["series"]}
    assert slope["L(w)"]["y"] == r.loss and slope["L(w)"]["x"] == r.ws
    [(_, fig)] = plots.derivative(r)
    curve = {line.get_label(): line for line in fig.axes[0].get_lines()}["L(w)"]
    assert list(curve.get_ydata()) == r.loss
    errors = {line.get_label(): line for line in fig.axes[1].get_lines()}
    names = {s["name"] for s in live["figures"][1]["series"] if s["kind"] == "line"}
    assert names <= set(errors)  # the same series, by the same names
    plots.plt.close(fig)


def test_the_pictures_import_only_the_spec_the_generic_page_and_the_language():
    import subprocess
    import sys

    code = (
        "import sys, lossopt.lab.pictures\n"
        "print(sorted(m for m in sys.modules if m.startswith(('lossopt.lab', 'matplotlib',"
        " 'starlette'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = eval(out.stdout.strip())
    lab = ["lossopt.lab", "lossopt.lab.figures", "lossopt.lab.i18n", "lossopt.lab.page"]
    # no experiment, no live module, no plotting stack: the words' language is all it adds
    assert loaded == [*lab, "lossopt.lab.pictures"]
