"""Korean text in every figure and page, on a fresh machine: Nanum Gothic, registered by the code.

A fresh machine has no Korean font and matplotlib finds none, so every Hangul label would be
an empty box. The font comes from a package the lab installs: koreanize-matplotlib ships
NanumGothic.ttf (SIL Open Font License). Only its file is used, found without importing the
package, whose import would change matplotlib's settings as a side effect. Debian's
fonts-nanum is the fallback where that package is absent.

Matplotlib (3.6 and later) falls back glyph by glyph along the family list, so Nanum Gothic
comes last: Latin letters, digits and symbols keep their font (DejaVu Sans: its −, ² and
Greek are the ones the English figures show) and only Hangul comes from Nanum Gothic. One
limit: a label with an equation in it (``$...$``) is set by mathtext, which uses the first
family alone, with no fallback; the Korean catalog therefore has no message with ``$`` in
it (tests/lab/test_i18n.py), and an equation in a figure is a label of its own.
"""

from __future__ import annotations

import functools
import importlib.util
import io
from pathlib import Path

FAMILY = "NanumGothic"
FIRST_IN = ("ko",)  # pages in these languages list Korean fonts first
FILE = "NanumGothic.ttf"
SUBSET_FILE = "NanumGothic-subset.ttf"  # what embed() writes beside a page
PACKAGE = "koreanize_matplotlib"  # ships fonts/NanumGothic.ttf
SYSTEM_FILES = (Path("/usr/share/fonts/truetype/nanum") / FILE,)  # Debian's fonts-nanum
# Hinting sources (VTT's) that the file carries, some empty: Chromium's font sanitizer
# refuses a font with an empty one, so a font sent to a browser goes without them
HINTING_SOURCES = ("TSI0", "TSI1", "TSI2", "TSI3", "TSI5")

# The page's Korean fonts: the packaged file where the page serves it (see font_face_css),
# else one the reader's system has
KOREAN_CSS = (
    f"'{FAMILY}', 'Nanum Gothic', 'Noto Sans KR', 'Noto Sans CJK KR', 'Apple SD Gothic Neo', "
    "'Malgun Gothic'"
)
ENGLISH_CSS = "system-ui, -apple-system, 'Segoe UI', Roboto"


def css_family(lang: str | None = None) -> str:
    """A CSS font-family list for a page in `lang` (the current language when None): the
    language's own fonts first, the other's next (browsers fall back glyph by glyph), then
    the browser's sans-serif."""
    from lossopt.lab import i18n

    lang = i18n.get_language() if lang is None else i18n.check_language(lang)
    first, second = (KOREAN_CSS, ENGLISH_CSS) if lang in FIRST_IN else (ENGLISH_CSS, KOREAN_CSS)
    return f"{first}, {second}, sans-serif"


class FontError(RuntimeError):
    """No Korean font could be found."""


@functools.cache
def font_path() -> Path:
    """The Nanum Gothic file: the one the lab's package ships, else Debian's."""
    spec = importlib.util.find_spec(PACKAGE)  # finds the package without running it
    folders = spec.submodule_search_locations if spec is not None else None
    candidates = [Path(folder) / "fonts" / FILE for folder in folders or ()]
    for path in (*candidates, *SYSTEM_FILES):
        if path.is_file():
            return path
    raise FontError(
        f"no Korean font found: install the lab's extras (pip install 'lossopt[lab]', which "
        f"brings koreanize-matplotlib and its {FILE}) or Debian's fonts-nanum"
    )


@functools.cache
def _added() -> str:
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(font_path()))
    return FAMILY


def families(current: list[str] | str) -> list[str]:
    """`current` (rcParams' font.family) with Nanum Gothic last, as the glyph fallback."""
    listed = [current] if isinstance(current, str) else list(current)
    return [*(f for f in listed if f != FAMILY), FAMILY]


def register() -> str:
    """Make matplotlib draw Korean: add the font once, put it last in the family list.

    Call it before a figure's text is made (a text keeps the families of its making). Safe
    to call again, after a style or rcParams reset; returns the family name.
    """
    import matplotlib

    _added()
    matplotlib.rcParams["font.family"] = families(matplotlib.rcParams["font.family"])
    return FAMILY


def rc() -> dict[str, list[str]]:
    """The setting register() makes, for `with matplotlib.rc_context(fonts.rc()):`."""
    import matplotlib

    _added()
    return {"font.family": families(matplotlib.rcParams["font.family"])}


def embed(folder: Path, text: str) -> str:
    """Write Nanum Gothic, cut down to the characters of `text`, into `folder` and return the
    @font-face rule that loads it from there: a page that travels (the static report) shows
    its Korean on a machine with no Korean font, for tens of kilobytes, not the font's 4 MB.

    Returns the rule for a page in `folder`; the file is SUBSET_FILE.
    """
    from fontTools import subset  # a dependency of matplotlib's

    options = subset.Options()
    options.drop_tables += list(HINTING_SOURCES)
    font = subset.load_font(str(font_path()), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    subset.save_font(font, str(Path(folder) / SUBSET_FILE), options)
    return font_face_css(SUBSET_FILE)


@functools.cache
def web_font() -> bytes:
    """Nanum Gothic whole, as a browser takes it: without its hinting sources, for a page
    that serves the font (the live lab), whatever Korean its answers hold."""
    from fontTools.ttLib import TTFont  # a dependency of matplotlib's

    font = TTFont(str(font_path()))
    for tag in HINTING_SOURCES:
        if tag in font:
            del font[tag]
    written = io.BytesIO()
    font.save(written)
    return written.getvalue()


def font_face_css(url: str) -> str:
    """An @font-face rule for a page that serves the font file at `url` (the live lab)."""
    if not isinstance(url, str) or not url or any(c in url for c in "'\"\\()\n"):
        raise ValueError(f"url must be a plain, non-empty URL, got {url!r}")
    return (
        f"@font-face {{ font-family: '{FAMILY}'; src: url('{url}') format('truetype'); "
        "font-display: swap; }"
    )
