"""One declaration per knob: the command line's flag, the live lab's control and
its API's query parameter, and the static report's "try it" line are all made
from the same `Knob`.

A knob's ``name`` is the flag (``--name``), the query parameter (``name=...``)
and, with hyphens as underscores (``attr``), the Python keyword it is handed
on as. Nothing of the lab is imported here but its language (i18n, which imports
nothing of the lab): this module only parses and formats.

A knob's ``help``, ``label`` and ``labels`` are declared in English (marked with ``N_``
where they are declared) and shown in the language in use: in the live page's controls
(``as_json``), in the flags' help and in the messages of a value refused.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from lossopt.lab.i18n import _

KINDS = ("float", "int", "choice", "subset", "bool")
SCALES = ("linear", "log")
LIVE_HOST = "127.0.0.1"
LIVE_PORT = 8765  # `lossopt lab serve`'s default port
_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*\Z")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@dataclass(frozen=True)
class Knob:
    """One parameter of an explorable.

    kind: 'float' or 'int' (a number from lo to hi, drawn on a 'linear' or 'log'
    slider); 'choice' (one of choices); 'subset' (a comma-separated, non-empty
    subset of choices, e.g. the optimizers to overlay); 'bool'.
    """

    name: str
    help: str
    default: Any
    kind: str = "float"
    lo: float | None = None
    hi: float | None = None
    scale: str = "linear"
    choices: tuple[str, ...] = ()
    label: str = ""  # the control's short label, e.g. "β₁"; the name when empty
    step: float | None = None  # the slider's step on a linear scale; None: continuous
    labels: Mapping[str, str] = field(default_factory=dict)  # choice -> display name

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"knob name must be lowercase words joined by '-', got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"knob {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.scale not in SCALES:
            raise ValueError(f"knob {self.name}: scale must be one of {SCALES}, got {self.scale!r}")
        if self.kind in ("float", "int"):
            if self.lo is None or self.hi is None or not self.lo < self.hi:
                raise ValueError(f"knob {self.name}: needs lo < hi, got {self.lo}, {self.hi}")
            if self.scale == "log" and self.lo <= 0:
                raise ValueError(f"knob {self.name}: a log scale needs lo > 0, got {self.lo}")
        if self.kind in ("choice", "subset") and not self.choices:
            raise ValueError(f"knob {self.name}: a {self.kind} knob needs choices")
        self.parse(self.default)  # the default itself must be a valid value

    @property
    def attr(self) -> str:
        """The Python keyword (and argparse dest) of the knob."""
        return self.name.replace("-", "_")

    @property
    def flag(self) -> str:
        return f"--{self.name}"

    def parse(self, value: Any) -> Any:
        """The value as the knob's type, from text (a flag, a query) or a Python value;
        ValueError naming the knob and the value when it is not one of its values."""
        if self.kind == "bool":
            return self._bool(value)
        if self.kind == "choice":
            text = str(value).strip().lower()
            if text not in self.choices:
                raise ValueError(
                    _("{name} must be one of {choices}, got {value!r}").format(
                        name=self.name, choices=", ".join(self.choices), value=value
                    )
                )
            return text
        if self.kind == "subset":
            return self._subset(value)
        number = self._number(value)
        if not self.lo <= number <= self.hi:
            raise ValueError(
                _("{name} must be from {lo} to {hi}, got {value!r}").format(
                    name=self.name, lo=_fmt(self.lo), hi=_fmt(self.hi), value=value
                )
            )
        return number

    def _not_a_number(self, value: Any) -> ValueError:
        if self.kind == "int":
            wanted = _("{name} must be a whole number from {lo} to {hi}, got {value!r}")
        else:
            wanted = _("{name} must be a finite number from {lo} to {hi}, got {value!r}")
        return ValueError(
            wanted.format(name=self.name, lo=_fmt(self.lo), hi=_fmt(self.hi), value=value)
        )

    def _number(self, value: Any) -> float | int:
        if isinstance(value, bool):
            raise self._not_a_number(value)
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise self._not_a_number(value) from None
        if not math.isfinite(number):
            raise self._not_a_number(value)
        if self.kind == "int":
            if number != int(number):
                raise self._not_a_number(value)
            return int(number)
        return number

    def _bool(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(
            _("{name} must be true or false, got {value!r}").format(name=self.name, value=value)
        )

    def _subset(self, value: Any) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value)
        names = []
        for item in items:
            name = str(item).strip().lower()
            if not name:
                continue
            if name not in self.choices:
                raise ValueError(
                    _("{knob}: unknown {name!r}; choose from {choices}").format(
                        knob=self.name, name=name, choices=", ".join(self.choices)
                    )
                )
            if name not in names:
                names.append(name)
        if not names:
            raise ValueError(
                _("{name} must be a comma-separated list of {choices}, got {value!r}").format(
                    name=self.name, choices=", ".join(self.choices), value=value
                )
            )
        return tuple(names)

    def format(self, value: Any) -> str:
        """The value as text for a flag or a query: parse(format(v)) == parse(v)."""
        value = self.parse(value)
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "subset":
            return ",".join(value)
        return value if self.kind == "choice" else _fmt(value)

    def to_query(self, value: Any) -> str:
        """'name=value' for a URL's query (checked by parse)."""
        return f"{self.name}={quote(self.format(value), safe=',')}"

    def add_to_argparse(
        self, parser: argparse.ArgumentParser, *, default: Any = None, dest: str | None = None
    ) -> None:
        """Add ``--name`` to parser: the knob's default unless told another
        (argparse.SUPPRESS: absent unless given), stored as ``attr`` unless told another
        dest (where a parent parser has an option of the same name)."""
        default = self.default if default is None else default
        dest = dest or self.attr
        if self.kind == "bool":
            parser.add_argument(
                self.flag,
                dest=dest,
                action=argparse.BooleanOptionalAction,
                default=default,
                help=_("{help} (default: {default})").format(
                    help=_(self.help), default=self.format(self.default)
                ),
            )
            return

        def parse(text: str) -> Any:
            try:
                return self.parse(text)
            except ValueError as error:
                raise argparse.ArgumentTypeError(str(error)) from None

        parse.__name__ = self.name  # argparse names the type in its messages
        parser.add_argument(
            self.flag,
            dest=dest,
            type=parse,
            default=default,
            metavar=self._metavar(),
            help=_("{help} ({range}; default: {default})").format(
                help=_(self.help), range=self._range(), default=self.format(self.default)
            ),
        )

    def _metavar(self) -> str:
        if self.kind in ("choice", "subset"):
            return "{" + ",".join(self.choices) + "}" if self.kind == "choice" else "LIST"
        return "N" if self.kind == "int" else "X"

    def _range(self) -> str:
        if self.kind == "choice":
            return _("one of {choices}").format(choices=", ".join(self.choices))
        if self.kind == "subset":
            return _("any of {choices}").format(choices=",".join(self.choices))
        if self.scale == "log":
            return _("{lo} to {hi}, log scale").format(lo=_fmt(self.lo), hi=_fmt(self.hi))
        return _("{lo} to {hi}").format(lo=_fmt(self.lo), hi=_fmt(self.hi))

    def as_json(self) -> dict:
        """What the live page needs to draw the control, in the language in use."""
        return {
            "name": self.name,
            "label": _(self.label) if self.label else self.name,
            "help": _(self.help),
            "kind": self.kind,
            "default": self._json(self.parse(self.default)),
            "lo": self.lo,
            "hi": self.hi,
            "scale": self.scale,
            "step": self.step,
            "choices": list(self.choices),
            "labels": {c: _(text) for c, text in self._labels().items()},
        }

    def _labels(self) -> dict[str, str]:
        """Each choice's display name, in English: the choice itself unless labels says."""
        return {c: self.labels.get(c, c) for c in self.choices}

    @staticmethod
    def _json(value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value


def _fmt(number: float | int) -> str:
    """Shortest text that reads back as the same number: 0.1, 1e-08, 30."""
    if isinstance(number, int) or float(number).is_integer() and abs(number) < 1e15:
        return str(int(number))
    return repr(float(number))


def parse_all(knobs: Iterable[Knob], given: Mapping[str, Any], *, strict: bool = True) -> dict:
    """{attr: value} for every knob: the given value (by knob name) parsed, else the
    default. With strict, a name that is no knob's is a ValueError naming it."""
    knobs = list(knobs)
    known = {knob.name: knob for knob in knobs}
    if strict:
        for name in given:
            if name not in known and known:
                raise ValueError(
                    _("unknown parameter {name!r}; this one takes {names}").format(
                        name=name, names=", ".join(known)
                    )
                )
            if name not in known:
                raise ValueError(
                    _("unknown parameter {name!r}; this one takes none").format(name=name)
                )
    return {
        knob.attr: knob.parse(given[knob.name]) if knob.name in given else knob.parse(knob.default)
        for knob in knobs
    }


def from_namespace(knobs: Iterable[Knob], namespace: argparse.Namespace) -> dict:
    """{attr: value} from parsed flags; a knob the command line did not set gets its default."""
    values = {}
    for knob in knobs:
        value = getattr(namespace, knob.attr, None)
        values[knob.attr] = knob.parse(knob.default if value is None else value)
    return values


def to_query(knobs: Iterable[Knob], values: Mapping[str, Any]) -> str:
    """'lr=0.1&steps=30' for the knobs named in values (by name or attr), in the
    knobs' order; values are checked by parse."""
    parts = []
    for knob in knobs:
        for key in (knob.name, knob.attr):
            if key in values:
                parts.append(knob.to_query(values[key]))
                break
    return "&".join(parts)


def to_flags(knobs: Iterable[Knob], values: Mapping[str, Any]) -> list[str]:
    """['--lr', '0.1', '--no-bias-correction'] for the knobs named in values."""
    flags = []
    for knob in knobs:
        for key in (knob.name, knob.attr):
            if key in values:
                value = knob.parse(values[key])
                if knob.kind == "bool":
                    flags.append(knob.flag if value else f"--no-{knob.name}")
                else:
                    flags += [knob.flag, knob.format(value)]
                break
    return flags


def live_url(
    explorable: str,
    knobs: Iterable[Knob],
    values: Mapping[str, Any],
    *,
    host: str = LIVE_HOST,
    port: int = LIVE_PORT,
) -> str:
    """The live lab's address with these settings:
    http://127.0.0.1:8765/#paths?lr=0.1&steps=30 (the page reads the fragment)."""
    query = to_query(knobs, values)
    return f"http://{host}:{port}/#{explorable}" + (f"?{query}" if query else "")
