"""What every explorable is: a name, a title, what to try, its knobs (declared
once) and a function from the knobs' values to the figures and the numbers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lossopt.lab.figures import Figure, finite
from lossopt.lab.i18n import _
from lossopt.lab.knobs import Knob, parse_all


@dataclass
class View:
    """What one explorable shows for one setting of its knobs."""

    figures: list[Figure]
    numbers: dict[str, Any]  # every number the figures draw, and the ones the text quotes
    notes: list[str] = field(default_factory=list)  # sentences made from the numbers


@dataclass(frozen=True)
class Explorable:
    name: str
    title: str
    intro: str  # the lecture's point and what to try
    knobs: tuple[Knob, ...]
    compute: Callable[..., View]  # keyword per knob (Knob.attr) -> View
    stream: bool = False  # the page follows /api/<name>/stream (Server-Sent Events) instead

    def parse(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """{attr: value} from a query or flags; ValueError naming a bad knob or an unknown name."""
        return parse_all(self.knobs, given)

    def answer(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Compute for parsed values: the JSON-ready answer of the API."""
        return self.show(values, self.compute(**values))

    def show(self, values: Mapping[str, Any], view: View) -> dict[str, Any]:
        """The JSON-ready answer for a view computed at these values."""
        return {
            "explorable": self.name,
            "params": {k.name: finite(_plain(values[k.attr])) for k in self.knobs},
            "figures": [figure.to_json() for figure in view.figures],
            "numbers": finite(view.numbers),
            "notes": view.notes,
        }

    def run(self, given: Mapping[str, Any]) -> dict[str, Any]:
        return self.answer(self.parse(given))

    def describe(self) -> dict[str, Any]:
        """What the page shows of it before any answer, in the language in use (the title
        and the intro are declared in English, marked for the catalog where declared)."""
        return {
            "name": self.name,
            "title": _(self.title),
            "intro": _(self.intro),
            "knobs": [knob.as_json() for knob in self.knobs],
            "stream": self.stream,
        }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
