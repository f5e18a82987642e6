"""One figure definition for every page that shows it.

A `Figure` is plain data: a title, the axes (labels, linear or log scale,
ranges) and its series (lines, scatter points, bars, a contour, reference
lines), each with the numbers lossopt computed. Python builds it; two small
renderers draw the same spec: `draw_matplotlib` for the static report, and the
live page's `lab.js` for the browser, which computes nothing but the drawing.

Nothing of the lab is imported here, and matplotlib only when drawing with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

SERIES_KINDS = ("line", "scatter", "bar", "contour", "vline", "hline")


@dataclass
class Series:
    """One thing drawn on the axes.

    line / scatter: x and y; bar: x (categories or numbers) and y; contour: x
    and y (the grid's axes) and z[row = y][column = x]; vline: x = [position];
    hline: y = [position]. text, when given, labels each point.
    """

    kind: str
    name: str
    x: list = field(default_factory=list)
    y: list = field(default_factory=list)
    z: list[list[float]] | None = None
    color: str | None = None
    dash: bool = False
    width: float = 2.0
    size: float = 6.0  # marker size of scatter points
    symbol: str = "circle"  # circle, ring (an open circle), x, star, square, diamond
    text: list[str] | None = None  # beside each scatter point, above each bar
    levels: list[float] | None = None  # contour levels
    error: list[float] | None = None  # a bar's error bar (± this), e.g. a spread over seeds
    legend: bool = True

    def __post_init__(self) -> None:
        if self.kind not in SERIES_KINDS:
            raise ValueError(f"series kind must be one of {SERIES_KINDS}, got {self.kind!r}")
        if self.kind in ("line", "scatter", "bar") and len(self.x) != len(self.y):
            raise ValueError(f"series {self.name!r}: {len(self.x)} x but {len(self.y)} y")
        if self.error is not None and len(self.error) != len(self.y):
            raise ValueError(f"series {self.name!r}: {len(self.error)} errors but {len(self.y)} y")
        if self.kind == "contour" and (
            self.z is None
            or len(self.z) != len(self.y)
            or any(len(r) != len(self.x) for r in self.z)
        ):
            raise ValueError(f"series {self.name!r}: z must be len(y) rows of len(x) values")


@dataclass
class Axis:
    label: str = ""
    scale: str = "linear"  # or 'log'
    range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.scale not in ("linear", "log"):
            raise ValueError(f"axis scale must be 'linear' or 'log', got {self.scale!r}")


@dataclass
class Figure:
    title: str
    x: Axis
    y: Axis
    series: list[Series]
    equal_aspect: bool = False  # one unit is as long on both axes (paths on a surface)
    name: str = ""  # a stable id for the page and the tests

    def to_json(self) -> dict[str, Any]:
        """The spec as JSON-ready data; non-finite numbers become None (JSON has none)."""
        # Field by field: dataclasses.asdict deep-copies every list first (a contour's
        # grid costs more to copy than the path it is drawn under costs to compute).
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["x"], out["y"] = vars(self.x), vars(self.y)
        out["series"] = [vars(s) for s in self.series]
        return finite(out)


def finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


_MARKERS = {"circle": "o", "ring": "o", "x": "x", "star": "*", "square": "s", "diamond": "D"}


def draw_matplotlib(figure: Figure, ax=None):
    """Draw the spec on a matplotlib Axes (a new figure when none is given); returns the Axes.
    Several bar series stand side by side at each category, as plotly's grouped bars."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    bars = [s for s in figure.series if s.kind == "bar"]
    # Numbered bars (rows of a batch) stand at their numbers; named ones at 0, 1, 2, ...
    numbered = all(isinstance(x, int) for s in bars for x in s.x)
    categories = list(dict.fromkeys(str(x) for s in bars for x in s.x))
    width = 0.8 / max(1, len(bars))
    for s in figure.series:
        style = {"color": s.color} if s.color else {}
        label = s.name if s.legend and s.name else None
        if s.kind == "line":
            ax.plot(s.x, s.y, linestyle="--" if s.dash else "-", lw=s.width, label=label, **style)
        elif s.kind == "scatter":
            marker = _MARKERS.get(s.symbol, "o")
            if s.symbol == "ring":  # open: what lies under it stays visible
                style = {"facecolors": "none", "edgecolors": s.color or "black", "linewidths": 1.8}
            ax.scatter(s.x, s.y, s=s.size**2, marker=marker, label=label, zorder=3, **style)
            for x, y, text in zip(s.x, s.y, s.text or [], strict=False):
                ax.annotate(text, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        elif s.kind == "bar":
            shift = (bars.index(s) - (len(bars) - 1) / 2) * width
            at = [(x if numbered else categories.index(str(x))) + shift for x in s.x]
            drawn = ax.bar(at, s.y, width, yerr=s.error, capsize=2 if s.error else 0, label=label,
                           **style)  # fmt: skip
            for bar, text in zip(drawn, s.text or [], strict=False):
                ax.annotate(
                    text,
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
        elif s.kind == "contour":
            ax.contour(s.x, s.y, s.z, levels=s.levels or 20, cmap="Greys", alpha=0.5)
        elif s.kind == "vline":
            ax.axvline(s.x[0], ls="--" if s.dash else "-", lw=1, label=label, **style)
        elif s.kind == "hline":
            ax.axhline(s.y[0], ls="--" if s.dash else "-", lw=1, label=label, **style)
    ax.set_title(figure.title)
    ax.set_xlabel(figure.x.label)
    ax.set_ylabel(figure.y.label)
    ax.set_xscale(figure.x.scale)
    ax.set_yscale(figure.y.scale)
    if bars and not numbered:  # after the scale, which resets the ticks
        ax.set_xticks(range(len(categories)), categories)
    if figure.x.range:
        ax.set_xlim(*figure.x.range)
    if figure.y.range:
        ax.set_ylim(*figure.y.range)
    if figure.equal_aspect:
        ax.set_aspect("equal")
    if any(s.legend and s.name for s in figure.series):
        ax.legend(fontsize=8)
    return ax
