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
    assert loaded == ["lossopt.lab", "lossopt.lab.figures", "lossopt.lab.knobs", "lossopt.lab.live"]
