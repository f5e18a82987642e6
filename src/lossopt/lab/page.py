"""The HTML pieces every lab page is made of: paragraphs, tables, equation boxes,
sections with their anchors and numbers, and the colours of the optimizers.

This module imports nothing of the lab, so that every page (the lecture's
report, compare's) can import it without importing another page.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# One colour per optimizer, the same in every figure of every page.
COLORS = {
    "sgd": "#444444",
    "momentum": "#1f77b4",
    "adagrad": "#2ca02c",
    "rmsprop": "#ff7f0e",
    "adam": "#d62728",
}


@dataclass(frozen=True)
class Section:
    """One section of a page: its title (numbered by its place on the page), its
    equations (each a line of HTML, shown in a box of its own), the prose and
    tables made from a result, and the figures drawn from it as (file name, figure)."""

    title: str
    equation: str | tuple[str, ...]
    describe: Callable[[Any], str]  # result -> HTML paragraphs and tables
    draw: Callable[[Any], list]

    @property
    def equations(self) -> tuple[str, ...]:
        return (self.equation,) if isinstance(self.equation, str) else self.equation


def label(name: str, labels: Mapping[str, str]) -> str:
    """An optimizer's display name ('momentum' -> 'Momentum'), else the name itself."""
    return labels.get(name, name)


def p(text: str, style: str = "") -> str:
    """A paragraph of plain text (escaped)."""
    attribute = f" style='{html.escape(style, quote=True)}'" if style else ""
    return f"<p{attribute}>{html.escape(text)}</p>"


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A table of plain text cells (escaped)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def equations(lines: tuple[str, ...]) -> str:
    """Each equation in a box of its own: a separator inside one box reads as a product."""
    return "<div class='eqs'>" + "".join(f"<div class='eq'>{e}</div>" for e in lines) + "</div>"


def numbered(titles: list[str]) -> list[str]:
    """'1. First', '2. Second': the numbers come from the order, never typed."""
    return [f"{i}. {t}" for i, t in enumerate(titles, start=1)]


def contents(entries: list[tuple[str, str]], title: str = "Contents") -> str:
    """A table of contents under `title` (in the page's language): one link per
    (anchor, heading); the headings carry their own numbers, so the list adds none."""
    items = "".join(
        f"<li><a href='#{html.escape(anchor, quote=True)}'>{html.escape(heading)}</a></li>"
        for anchor, heading in entries
    )
    return f"<nav id='contents'><h2>{html.escape(title)}</h2><ul>{items}</ul></nav>"


# An equation's box: its symbols in a serif font, its Korean words (a caption, an index)
# from the Korean fonts after it, which the browser falls back to glyph by glyph.
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,'NanumGothic','Nanum Gothic',
'Noto Sans KR','Noto Sans CJK KR','Apple SD Gothic Neo','Malgun Gothic',sans-serif;max-width:1200px;
margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em}section{border-top:1px solid #ddd;padding:1em 0}
.eqs{display:flex;flex-wrap:wrap;gap:.5em}
.eq{font-family:Georgia,serif,'NanumGothic','Nanum Gothic','Noto Sans KR','Apple SD Gothic Neo',
'Malgun Gothic';font-size:1.1em;background:#f6f6f6;padding:.4em .8em;
display:inline-block;border-radius:4px}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}
.recommend{font-size:1.15em;font-weight:600;background:#eef6ee;padding:.5em .8em;border-radius:4px}
.meta{color:#666;font-size:.9em}
nav ul{columns:2;margin:.3em 0;padding-left:0;list-style:none}
nav h2{font-size:1.1em;margin:.5em 0 .2em}
.try{font-size:.9em;background:#f3f7fb;border-left:3px solid #1f77b4;padding:.3em .7em}
.try code{background:#e8eef5;padding:0 .25em;border-radius:3px}
"""
