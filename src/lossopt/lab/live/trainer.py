"""A real model trained live: the lab's digits network, trained by the lab's one
training loop (lossopt.lab.training.fit), its curves streamed to the page.

    GET  /api/training?<knobs>                 the whole run, as one answer (like every explorable)
    GET  /api/training/stream?tab=T&<knobs>    the same run as Server-Sent Events: a `progress`
                                               event at least every 0.5 s, then `done`
    POST /api/training/control?tab=T&action=pause|resume|stop
    GET  /api/training/check?<knobs>           400 with the message for a bad knob, before a start

One run per tab: a new stream from a tab stops that tab's running one, and so
does closing the stream (a changed knob, a reset, a closed tab).
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import threading
import time

from lossopt.lab import pictures
from lossopt.lab.i18n import N_, _
from lossopt.lab.knobs import Knob
from lossopt.lab.live.explorable import Explorable, View

NAMES = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
LABELS = {"sgd": "SGD", "momentum": "Momentum (α = 0.9)", "adagrad": "AdaGrad"}
LABELS.update(rmsprop="RMSProp", adam="Adam")
KNOBS = (
    Knob("optimizer", N_("the optimizer"), "adam", kind="choice", choices=NAMES, labels=LABELS),
    Knob("lr", N_("learning rate η"), 3e-3, lo=1e-4, hi=3.0, scale="log", label="η"),
    Knob("batch-size", N_("examples per step"), 64, kind="int", lo=8, hi=512, scale="log"),
    Knob("epochs", N_("passes over the training digits"), 20, kind="int", lo=1, hi=200),
    Knob("seed", N_("seed of the weights and the batches"), 0, kind="int", lo=0, hi=10_000),
)
# Seconds between progress events (the page wants <= 0.5). Epoch ends wait for it too: a
# fast run ends dozens of epochs a second, and an answer for each would cost the server a
# millisecond apiece and the page a drawing it has no time for.
EVERY = 0.25


@functools.lru_cache(maxsize=1)
def _digits():
    from lossopt.lab.data import digits

    return digits(0)


@functools.lru_cache(maxsize=1)
def warm() -> None:
    """Load the digits and pay the training loop's first-call costs (imports, a few
    seconds) once, stopping after one step, before a streamed run's clock starts."""
    from lossopt.lab.training import fit

    fit(_digits(), "sgd", 0.1, epochs=1, seed=0, progress=lambda *_: False)


# A run's state, as the page's script knows it (numbers["state"]) and as its note says it
STATES = {
    "training": N_("training"),
    "paused": N_("paused"),
    "done": N_("done"),
    "stopped": N_("stopped"),
}


def progress_note(state: str, done: int, epochs: int, epoch: int = 0, fraction: float = 1.0):
    """'training: epoch 3 of 20, 40% of epoch 4.' in the language in use."""
    if state == "training" and fraction < 1:
        said = _("{state}: epoch {done} of {epochs}, {share} of epoch {epoch}.")
    else:
        said = _("{state}: epoch {done} of {epochs}.")
    return said.format(
        state=_(STATES[state]), done=done, epochs=epochs, share=f"{fraction:.0%}", epoch=epoch + 1
    )


def view(curves: tuple[list, list, list], *, epochs: int, epoch: int = 0, fraction: float = 1.0,
         state: str = "done") -> View:  # fmt: skip
    """The figures and numbers for a run's curves so far."""
    train, val, accuracy = (list(c) for c in curves)
    done = len(val)
    loss = pictures.epoch_curves(
        _("loss per epoch"),
        _("cross-entropy"),
        [(_("training"), train[:done], "#1f77b4"), (_("validation"), val, "#d62728")],
        epochs=epochs,
        y_scale="log",
        name="loss",
    )
    acc = pictures.epoch_curves(
        _("validation accuracy per epoch"),
        _("accuracy"),
        [(_("validation accuracy"), accuracy, "#2ca02c")],
        epochs=epochs,
        y_range=(0, 1),
        name="accuracy",
    )
    diverged = bool(val) and not math.isfinite(val[-1])
    notes = [progress_note(state, done, epochs, epoch, fraction)]
    if done and not diverged:
        notes.append(
            _("validation loss {loss}, accuracy {accuracy}.").format(
                loss=f"{val[-1]:.4f}", accuracy=f"{accuracy[-1]:.1%}"
            )
        )
    if diverged:
        notes.append(_("The loss stopped being finite: the run diverged (try a smaller η)."))
    numbers = {
        "train_loss": train[:done],
        "val_loss": val,
        "val_accuracy": accuracy,
        "epochs_done": done,
        "epoch": epoch,
        "fraction": fraction,
        "state": state,
    }
    return View([loss, acc], numbers, notes)


def train_whole(*, optimizer, lr, batch_size, epochs, seed, progress=None) -> View:
    from lossopt.lab.training import fit

    _, run = fit(_digits(), optimizer, lr, epochs=epochs, seed=seed, batch_size=batch_size,
                 progress=progress)  # fmt: skip
    return view((run.train_loss, run.val_loss, run.val_metric), epochs=epochs)


EXPLORABLE = Explorable(
    "training",
    N_("A real model, trained live"),
    N_(
        "The lab's 64-64-10 network on the handwritten digits, trained by lossopt's optimizers: "
        "pick one, its rate and the batch size, press start, and watch the loss and the accuracy; "
        "pause, resume, reset."
    ),
    KNOBS,
    train_whole,
    stream=True,
)


class Run:
    """One streamed training run: its thread, and the switches the page sends."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.running = threading.Event()
        self.running.set()


def routes():
    """The streaming and control endpoints (the plain one is the explorables' route)."""
    import anyio
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    runs: dict[str, Run] = {}
    # Runs take seconds to minutes: their own two slots, not the explorables' workers.
    limiter = anyio.CapacityLimiter(2)

    def _error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message, "explorable": "training"}, status_code=status)

    async def stream(request: Request):
        given = dict(request.query_params)
        tab = given.pop("tab", "")
        try:
            values = EXPLORABLE.parse(given)
        except ValueError as error:
            return _error(400, str(error))
        if tab in runs:  # a new run from this tab supersedes its old one
            runs[tab].stop.set()
        run = runs[tab] = Run()
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()
        epochs = values["epochs"]
        last = [0.0]
        clock = [time.monotonic()]

        def send(kind: str, shown: View) -> None:
            shown.numbers["seconds"] = time.monotonic() - clock[0]  # when the server sent it
            payload = EXPLORABLE.show(values, shown)
            text = json.dumps(payload, allow_nan=False, ensure_ascii=False)
            loop.call_soon_threadsafe(events.put_nowait, (kind, text))

        def progress(epoch: int, fraction: float, curves: list) -> bool:
            now = time.monotonic()
            if now - last[0] >= EVERY:
                last[0] = now
                send("progress", view(curves[0], epochs=epochs, epoch=epoch, fraction=fraction,
                                      state="training"))  # fmt: skip
            while not run.running.is_set() and not run.stop.is_set():
                send("progress", view(curves[0], epochs=epochs, epoch=epoch, fraction=fraction,
                                      state="paused"))  # fmt: skip
                run.running.wait(EVERY)
            return not run.stop.is_set()

        def work() -> None:
            try:
                warm()
                clock[0] = last[0] = time.monotonic()
                send("progress", view(([], [], []), epochs=epochs, state="training"))
                final = train_whole(**values, progress=progress)
                state = "stopped" if run.stop.is_set() else "done"
                final.numbers["state"] = state
                final.notes[0] = progress_note(state, final.numbers["epochs_done"], epochs)
                send("done", final)
            except Exception as error:  # reported to the page, the server goes on
                loop.call_soon_threadsafe(events.put_nowait, ("error", json.dumps(str(error))))

        async def body():
            async with limiter:
                if run.stop.is_set():
                    return
                worker = asyncio.ensure_future(asyncio.to_thread(work))
                try:
                    while True:
                        kind, text = await events.get()
                        yield f"event: {kind}\ndata: {text}\n\n"
                        if kind in ("done", "error"):
                            break
                finally:  # the page closed the stream: stop the run
                    run.stop.set()
                    run.running.set()
                    await asyncio.shield(worker)
                    if runs.get(tab) is run:
                        del runs[tab]

        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        return StreamingResponse(body(), media_type="text/event-stream", headers=headers)

    async def check(request: Request):
        try:
            EXPLORABLE.parse(dict(request.query_params))
        except ValueError as error:
            return _error(400, str(error))
        return JSONResponse({"ok": True})

    async def control(request: Request):
        tab = request.query_params.get("tab", "")
        action = request.query_params.get("action", "")
        if action not in ("pause", "resume", "stop"):
            return _error(
                400, _("action must be pause, resume or stop, got {action!r}").format(action=action)
            )
        run = runs.get(tab)
        if run is None:
            return _error(404, _("no run for tab {tab!r}").format(tab=tab))
        if action == "pause":
            run.running.clear()
        elif action == "resume":
            run.running.set()
        else:
            run.stop.set()
            run.running.set()
        return JSONResponse({"tab": tab, "action": action})

    return [
        Route("/api/training/stream", stream),
        Route("/api/training/check", check),
        Route("/api/training/control", control, methods=["POST"]),
    ]
