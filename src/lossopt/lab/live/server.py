"""The live lab's local server: the page, its assets, and a JSON API with one
endpoint per explorable.

    GET /                      the page
    GET /api                   every explorable: title, what to try, its knobs
    GET /api/<explorable>?k=v  the figure specs and the numbers for those knob values
                               (400 with {"error": ...} for a bad or unknown parameter)

Computations run in worker threads, two at a time (one per core, each on one
torch thread). A tab names itself in the X-Lab-Tab header and numbers its
requests in X-Lab-Seq: a request that a newer one from the same tab has
overtaken while it waited is answered 409 without being computed, so a
dragged slider never leaves a queue of stale work. Nothing is written to disk.
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import anyio
import torch
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from lossopt.lab.live.catalog import EXPLORABLES

STATIC = Path(str(files("lossopt.lab.live") / "static"))
ASSETS = {
    "lab.js": "text/javascript",
    "lab.css": "text/css",
}
WORKERS = 2


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


def _error(status: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _query(request: Request) -> dict[str, str]:
    given: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name in given:
            raise ValueError(f"parameter {name!r} given twice")
        given[name] = value
    return given


def create_app() -> Starlette:
    limiter = anyio.CapacityLimiter(WORKERS)
    latest = Latest()

    async def index(request: Request) -> Response:
        return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return FileResponse(plotly_js(), media_type="text/javascript")
        if name not in ASSETS:
            return _error(404, f"no asset {name!r}")
        return FileResponse(STATIC / name, media_type=ASSETS[name])

    async def catalogue(request: Request) -> Response:
        return JSONResponse({"explorables": [e.describe() for e in EXPLORABLES.values()]})

    async def explore(request: Request) -> Response:
        name = request.path_params["name"]
        explorable = EXPLORABLES.get(name)
        if explorable is None:
            return _error(404, f"no explorable {name!r}; there are {', '.join(EXPLORABLES)}")
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
                return _error(409, "superseded by a newer request from the same tab")
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
    return Starlette(routes=routes)


def _answer(explorable, values) -> dict:
    # The explorables' tensors are tiny: one intra-op thread per computation (set in
    # the worker thread itself: the setting is per thread), WORKERS at once.
    torch.set_num_threads(1)
    return explorable.answer(values)


def make_server(host: str, port: int):
    """A uvicorn server for the app (port 0: any free port), not yet started."""
    import uvicorn

    config = uvicorn.Config(create_app(), host=host, port=port, log_level="warning")
    return uvicorn.Server(config)


def serve(host: str, port: int, open_browser: bool, path: str = "") -> None:
    """Serve until Ctrl-C; open the page in the browser once the server listens."""
    import threading
    import webbrowser

    url = f"http://{host}:{port}/{path}"
    server = make_server(host, port)

    def announce() -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.05)
        if server.started:
            print(f"lossopt lab: serving {url} (Ctrl-C stops)", flush=True)
            if open_browser:
                webbrowser.open(url)

    threading.Thread(target=announce, daemon=True).start()
    try:
        server.run()  # uvicorn shuts down on Ctrl-C, then raises it again
    except KeyboardInterrupt:
        pass
    print("lossopt lab: stopped", flush=True)
