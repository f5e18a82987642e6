"""The live lab's local server: the page, its assets, and a JSON API with one
endpoint per explorable.

    GET /                      the page
    GET /api                   every explorable: title, what to try, its knobs
    GET /api/<explorable>?k=v  the figure specs and the numbers for those knob values
                               (400 with {"error": ...} for a bad or unknown parameter)

Every answer is in one language: ?lang=en|ko on any address (taken out of the query
before it is read, so it is no knob), else the one `lossopt lab serve --lang` names,
else the browser's Accept-Language, else the locale's. The page has a language control
that reloads it with ?lang=, and its script asks the API in the page's language.

Computations run in worker threads, two at a time (one per core, each on one
torch thread). A tab names itself in the X-Lab-Tab header and numbers its
requests in X-Lab-Seq: a request that a newer one from the same tab has
overtaken while it waited is answered 409 without being computed, so a
dragged slider never leaves a queue of stale work. Nothing is written to disk.
"""

from __future__ import annotations

import functools
import html
import json
from importlib.resources import files
from pathlib import Path
from string import Template
from urllib.parse import unquote_plus

import anyio
import torch
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from lossopt.lab import fonts, i18n
from lossopt.lab.i18n import N_, _
from lossopt.lab.live.catalog import EXPLORABLES

STATIC = Path(str(files("lossopt.lab.live") / "static"))
ASSETS = {
    "lab.js": "text/javascript",
    "lab.css": "text/css",
}
WORKERS = 2
# The page's own words, filled into index.html's $names; the script's are wrapped in lab.js
PAGE = {
    "title": N_("lossopt live lab"),
    "about": N_(
        "Every number is computed by lossopt in Python on each change; the page only draws."
    ),
    "same_numbers": N_("The same numbers:"),
    "language": N_("Language"),
    "start": N_("start"),
    "pause": N_("pause"),
    "reset": N_("reset"),
    "play": N_("play"),
    "step": N_("step"),
}


def plotly_js() -> Path:
    """plotly.js as the plotly package ships it: the page needs no network."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


class Latest:
    """The newest request number seen per (tab, explorable)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], int] = {}

    def mark(self, key: tuple[str, str], seq: int) -> None:
        self.seen[key] = max(seq, self.seen.get(key, seq))
        if len(self.seen) > 10_000:  # tabs come and go; forget the oldest
            self.seen.pop(next(iter(self.seen)))

    def overtaken(self, key: tuple[str, str], seq: int) -> bool:
        return self.seen.get(key, seq) > seq


@functools.cache
def language_name(lang: str) -> str:
    """A language's name as its speakers write it ('한국어'), from Babel's locale data."""
    from babel import Locale

    return Locale.parse(lang).get_display_name(lang)


@functools.cache
def _messages(lang: str) -> str:
    """The catalog of `lang` as JSON for the page's script ('</' escaped for a script tag)."""
    return json.dumps(i18n.messages(lang), ensure_ascii=False).replace("</", "<\\/")


def page(lang: str) -> str:
    """index.html in `lang`: its words, the language control, the script's messages, and
    the fonts of the language (Nanum Gothic served by the lab, for a machine without one)."""
    with i18n.language(lang):
        words = {key: html.escape(_(text)) for key, text in PAGE.items()}
    options = "".join(
        f"<option value='{code}'{' selected' if code == lang else ''}>"
        f"{html.escape(language_name(code))}</option>"
        for code in i18n.languages()
    )
    template = Template((STATIC / "index.html").read_text(encoding="utf-8"))
    return template.substitute(
        words,
        lang=lang,
        languages=options,
        messages=_messages(lang),
        font_face=fonts.font_face_css(f"/static/{fonts.FILE}"),
        fonts=fonts.css_family(lang),
    )


class Language:
    """ASGI middleware: each request answered in its language (see the module's docstring).
    The language is a context variable, so the worker threads computing an answer, and a
    stream's events, speak it too."""

    def __init__(self, app, lang: str | None = None) -> None:
        self.app = app
        self.lang = None if lang is None else i18n.check_language(lang)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        kept, asked = [], None
        for part in scope["query_string"].split(b"&"):
            key, _sep, value = part.partition(b"=")
            if unquote_plus(key.decode("latin-1")) == "lang":
                asked = unquote_plus(value.decode("latin-1"))
            elif part:
                kept.append(part)
        if asked is not None:
            try:
                lang = i18n.check_language(asked)
            except ValueError as error:
                return await _error(400, str(error))(scope, receive, send)
            scope = {**scope, "query_string": b"&".join(kept)}
        else:
            header = dict(scope["headers"]).get(b"accept-language", b"").decode("latin-1")
            lang = self.lang or i18n.negotiate(header) or i18n.get_language()
        with i18n.language(lang):
            await self.app(scope, receive, send)


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _query(request: Request) -> dict[str, str]:
    given: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in given:
            raise ValueError(_("parameter {name!r} given twice").format(name=name))
        given[name] = value
    return given


def create_app(lang: str | None = None) -> Language:
    """The app; `lang`: the language of every answer not asked in one with ?lang= (None: the
    browser's, else the locale's)."""
    limiter = anyio.CapacityLimiter(WORKERS)
    latest = Latest()

    async def index(request: Request) -> Response:
        lang = i18n.get_language()
        headers = {"Content-Language": lang, "Vary": "Accept-Language"}
        return HTMLResponse(page(lang), headers=headers)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(plotly_js(), media_type="text/javascript")
        if name == fonts.FILE:
            try:
                font = await anyio.to_thread.run_sync(fonts.web_font)  # made once, 1 s
            except fonts.FontError as error:  # the page falls back to the system's fonts
                return _error(404, str(error))
            headers = {"Cache-Control": "max-age=86400"}
            return Response(font, media_type="font/ttf", headers=headers)
        if name not in ASSETS:
            return _error(404, _("no asset {name!r}").format(name=name))
        return FileResponse(STATIC / name, media_type=ASSETS[name])

    async def catalogue(request: Request) -> Response:
        return JSONResponse({"explorables": [e.describe() for e in EXPLORABLES.values()]})

    async def explore(request: Request) -> Response:
        name = request.path_params["name"]
        explorable = EXPLORABLES.get(name)
        if explorable is None:
            return _error(
                404,
                _("no explorable {name!r}; there are {names}").format(
                    name=name, names=", ".join(EXPLORABLES)
                ),
            )
        try:
            values = explorable.parse(_query(request))
        except ValueError as error:
            return _error(400, str(error), explorable=name)
        tab, seq = request.headers.get("x-lab-tab"), request.headers.get("x-lab-seq", "")
        key = (tab or "", name)
        number = int(seq) if seq.isdigit() else 0
        if tab:
            latest.mark(key, number)
        async with limiter:
            if tab and latest.overtaken(key, number):
                return _error(409, _("superseded by a newer request from the same tab"))
            if await request.is_disconnected():
                return Response(status_code=499)
            try:
                answer = await anyio.to_thread.run_sync(_answer, explorable, values)
            except ValueError as error:  # lossopt refused a value the knobs let through
                return _error(400, str(error), explorable=name)
            except Exception as error:  # reported; the server goes on serving
                return _error(500, f"{type(error).__name__}: {error}", explorable=name)
        return Response(
            json.dumps(answer, allow_nan=False, ensure_ascii=False),
            media_type="application/json",
        )

    from lossopt.lab.live import trainer

    routes = trainer.routes() + [
        Route("/", index),
        Route("/static/{name}", asset),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api", catalogue),
        Route("/api/{name}", explore),
    ]
    return Language(Starlette(routes=routes), lang)


def _answer(explorable, values) -> dict:
    # The explorables' tensors are tiny: one intra-op thread per computation (set in
    # the worker thread itself: the setting is per thread), WORKERS at once.
    torch.set_num_threads(1)
    return explorable.answer(values)


def make_server(host: str, port: int, lang: str | None = None):
    """A uvicorn server for the app (port 0: any free port), not yet started."""
    import uvicorn

    config = uvicorn.Config(create_app(lang), host=host, port=port, log_level="warning")
    return uvicorn.Server(config)


def serve(
    host: str, port: int, open_browser: bool, path: str = "", lang: str | None = None
) -> None:
    """Serve until Ctrl-C; open the page in the browser once the server listens."""
    import threading
    import webbrowser

    url = f"http://{host}:{port}/{path}"
    server = make_server(host, port, lang)

    def announce() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            print(_("lossopt lab: serving {url} (Ctrl-C stops)").format(url=url), flush=True)
            if open_browser:
                webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()  # uvicorn shuts down on Ctrl-C, then raises it again
    except KeyboardInterrupt:
        pass
    print(_("lossopt lab: stopped"), flush=True)
