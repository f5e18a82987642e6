"""Korean text in every figure and page, on a fresh machine: Nanum Gothic, registered by the code.

A fresh machine has no Korean font and matplotlib finds none, so every Hangul label would be
an empty box. The font comes from a package the lab installs: koreanize-matplotlib ships
NanumGothic.ttf (SIL Open Font License). Only its file is used, found without importing the
package, whose import would change matplotlib's settings as a side effect. Debian's
fonts-nanum is the fallback where that package is absent.

Matplotlib (3.6 and later) falls back glyph by glyph along the family list, so Nanum Gothic
is appended after the families already set: English text keeps its font (DejaVu Sans, with
its true minus sign) and only the glyphs it lacks come from Nanum Gothic.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

FAMILY = "NanumGothic"
FILE = "NanumGothic.ttf"
PACKAGE = "koreanize_matplotlib"  # ships fonts/NanumGothic.ttf
SYSTEM_FILES = (Path("/usr/share/fonts/truetype/nanum") / FILE,)  # Debian's fonts-nanum

# The page's font list: the packaged font where the page serves it (see font_face_css), else
# a Korean font the reader's system has, else the browser's own sans-serif
CSS_FAMILY = (
    f"'{FAMILY}', 'Nanum Gothic', 'Noto Sans KR', 'Noto Sans CJK KR', 'Apple SD Gothic Neo', "
    "'Malgun Gothic', system-ui, sans-serif"
)


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

    Safe to call again (after a style or rcParams reset, say); returns the family name.
    """
    import matplotlib

    _added()
    matplotlib.rcParams["font.family"] = families(matplotlib.rcParams["font.family"])
    return FAMILY


def rc() -> dict[str, list[str]]:
    """The setting register() makes, for `matplotlib.rc_context(fonts.rc())` around a figure."""
    import matplotlib

    _added()
    return {"font.family": families(matplotlib.rcParams["font.family"])}


def font_face_css(url: str) -> str:
    """An @font-face rule for a page that serves the font file at `url` (the live lab)."""
    if not isinstance(url, str) or not url or any(c in url for c in "'\"\\()\n"):
        raise ValueError(f"url must be a plain, non-empty URL, got {url!r}")
    return (
        f"@font-face {{ font-family: '{FAMILY}'; src: url('{url}') format('truetype'); "
        "font-display: swap; }"
    )
