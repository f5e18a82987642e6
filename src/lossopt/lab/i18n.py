"""The lab's language: every message from a gettext catalog, the language from --lang or the locale.

Messages are written in English in the code and wrapped in `_()` (`ngettext` for a count,
`N_` to mark a constant that is translated where it is shown). Numbers are filled in by the
code, after translation, through named placeholders::

    _("loss {loss:.3f} after {steps} steps").format(loss=loss, steps=steps)

so a translation is a catalog and never a second copy of any logic. English is the source
language and needs no catalog; every other language is
``locale/<lang>/LC_MESSAGES/lossopt.po``, managed with Babel (``make catalogs`` extracts
the wrapped strings into ``locale/lossopt.pot`` and merges them into each ``.po``). The
``.po`` is compiled with Babel in memory the first time its language is used, so there is
no ``.mo`` to build, ship or let go stale.

The language is, in order: the innermost ``with language(...)`` (a context variable, so
that a server can answer each request in its own language), the last ``set_language``
(``--lang``), and the environment as gettext reads it (the first non-empty of LANGUAGE,
LC_ALL, LC_MESSAGES and LANG; LANGUAGE may list several, ``ko:en``); English otherwise.
"""

from __future__ import annotations

import functools
import gettext
import io
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

DOMAIN = "lossopt"
DEFAULT = "en"
LOCALE_DIR = Path(__file__).with_name("locale")
ENVIRONMENT = ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")  # gettext's order

_chosen: str | None = None  # set_language's; None: the environment's, read at each use
_scoped: ContextVar[str | None] = ContextVar("lossopt_language", default=None)


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def languages() -> tuple[str, ...]:
    """The languages the lab speaks: English and every language with a catalog."""
    found = {p.parent.parent.name for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    return (DEFAULT, *sorted(found - {DEFAULT}))


def normalize(name: str) -> str:
    """The language part of a locale name: 'ko_KR.UTF-8' -> 'ko', 'en-GB' -> 'en', 'C' -> ''."""
    base = name.split(".")[0].split("@")[0].replace("-", "_").split("_")[0].strip().lower()
    return "" if base in ("c", "posix") else base


def check_language(lang: object) -> str:
    """The supported language `lang` names, or a ValueError / TypeError naming it."""
    if not isinstance(lang, str):
        raise TypeError(f"lang must be a string, got {type(lang).__name__}")
    code = normalize(lang)
    if code not in languages():
        raise ValueError(f"lang must be one of {', '.join(languages())}, got {lang!r}")
    return code


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language the environment asks for, as gettext reads it; English if none is known.

    As in Python's gettext, only the first non-empty variable counts, and LANGUAGE's
    colon-separated list is tried in order.
    """
    environ = os.environ if environ is None else environ
    for variable in ENVIRONMENT:
        value = environ.get(variable)
        if value:
            for name in value.split(":"):
                if normalize(name) in languages():
                    return normalize(name)
            break
    return DEFAULT


def set_language(lang: str | None) -> str:
    """Use `lang` from now on (None: the environment's again); returns the language in use."""
    global _chosen
    _chosen = None if lang is None else check_language(lang)
    return get_language()


def requested(argv: list[str]) -> str | None:
    """The language a command line's --lang asks for, read before it is parsed, so that its
    help and its errors are in that language too; None if absent or unknown (the parser then
    says what is wrong)."""
    asked = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == "--lang" and i + 1 < len(argv):
            asked = argv[i + 1]
        elif arg.startswith("--lang="):
            asked = arg.partition("=")[2]
    # the last one counts, as for the parser
    return normalize(asked) if asked is not None and normalize(asked) in languages() else None


def get_language() -> str:
    return _scoped.get() or _chosen or from_environment()


@contextmanager
def language(lang: str) -> Iterator[str]:
    """Speak `lang` inside the block only (this thread or task; the rest keeps its own)."""
    token = _scoped.set(check_language(lang))
    try:
        yield _scoped.get()
    finally:
        _scoped.reset(token)


def negotiate(accept_language: str | None) -> str | None:
    """The language a browser prefers among the lab's, from its Accept-Language header
    ('ko-KR,ko;q=0.9,en;q=0.8' -> 'ko'); None when it names none of them."""
    ranked = []
    for position, part in enumerate((accept_language or "").split(",")):
        name, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            key, _eq, value = param.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and normalize(name) in languages():
            ranked.append((-quality, position, normalize(name)))
    return min(ranked)[2] if ranked else None


def messages(lang: str) -> dict[str, str]:
    """Every translated message of `lang`, English -> translation (for the live page's script,
    which looks its messages up by their English); {} for English."""
    lang = check_language(lang)
    if lang == DEFAULT:
        return {}
    from babel.messages.pofile import read_po

    with catalog_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    return {
        m.id: m.string
        for m in catalog
        if m.id and isinstance(m.id, str) and m.string and not m.fuzzy
    }


@functools.cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalog of `lang`; English, the source language, translates to itself."""
    lang = check_language(lang)
    if lang == DEFAULT:
        return gettext.NullTranslations()
    # Babel only where a catalog is read: an English run never imports it
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with catalog_path(lang).open("rb") as po:
        catalog = read_po(po, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out: they stay English until reviewed
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _(message: str) -> str:
    """`message` in the current language."""
    return translations(get_language()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form of `singular` / `plural` for the count `n`, in the current language."""
    return translations(get_language()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark `message` for the catalog without translating it (translate it where it is shown)."""
    return message


# argparse's own words (the usage line, the headings of the option list, its errors), as
# Python's argparse writes them, so that they are in the catalog beside the lab's own; a
# version of Python that words one differently gets it in English, never an error.
ARGPARSE = (
    N_("usage: "),
    N_("options"),
    N_("positional arguments"),
    N_("show this help message and exit"),
    N_("argument %(argument_name)s: %(message)s"),
    N_("invalid choice: %(value)r (choose from %(choices)s)"),
    N_("unknown parser %(parser_name)r (choices: %(choices)s)"),
    N_("invalid %(type)s value: %(value)r"),
    N_("the following arguments are required: %s"),
    N_("unrecognized arguments: %s"),
    N_("expected one argument"),
    N_("ambiguous option: %(option)s could match %(matches)s"),
)


@contextmanager
def argparse_speaking() -> Iterator[None]:
    """argparse's own messages in the current language, inside the block only.

    argparse looks its messages up through the name `_` in its module (Python's gettext, with
    no catalog of ours), so for the block that name is this module's `_`.
    """
    import argparse

    original = argparse._
    argparse._ = _
    try:
        yield
    finally:
        argparse._ = original


# The lecture's own words for its ideas: the Korean catalog gives each as the lecture does,
# with the English name beside it where the lecture puts it there. Figures and prose take a
# term from here (`term("learning_rate")`), so that one idea has one name on every page.
TERMS = {
    "loss": N_("loss"),
    "entropy": N_("entropy"),
    "cross_entropy": N_("cross-entropy"),
    "kl_divergence": N_("KL divergence"),
    "triplet_margin_loss": N_("triplet margin loss"),
    "derivative": N_("derivative"),
    "rate_of_change": N_("instantaneous rate of change"),
    "gradient": N_("gradient"),
    "learning_rate": N_("learning rate"),
    "gradient_descent": N_("gradient descent"),
    "momentum": N_("momentum"),
    "moving_average": N_("exponential moving average"),
    "optimizer": N_("optimizer"),
    "minimum": N_("minimum"),
    "diverge": N_("diverges"),
    "parameter": N_("parameter"),
    "distribution": N_("distribution"),
    "uncertainty": N_("uncertainty"),
    "step": N_("step"),
    "epoch": N_("epoch"),
    "error": N_("error"),
    "weight": N_("weight"),
    "probability": N_("probability"),
    "true_distribution": N_("true distribution"),
    "predicted_distribution": N_("predicted distribution"),
    "embedding": N_("embedding"),
    "margin": N_("margin"),
    "bias_correction": N_("bias correction"),
    "accuracy": N_("accuracy"),
    "validation_loss": N_("validation loss"),
    "test_rows": N_("test rows"),
    "seed": N_("seed"),
}


def term(key: str) -> str:
    """The lecture's name for the idea `key` (a key of TERMS), in the current language."""
    if key not in TERMS:
        raise ValueError(f"term must be one of {', '.join(TERMS)}, got {key!r}")
    return _(TERMS[key])
