"""The live training run: streamed as Server-Sent Events by the lab's one training
loop, at least every 0.5 s; paused, resumed and stopped from the page; a new run
from the same tab stops the old one; the numbers are those of `training.fit`."""

import json
import threading
import time

import httpx
import pytest
import torch

from lossopt.lab.data import digits
from lossopt.lab.training import fit
from tests.lab.live import running_server


@pytest.fixture(scope="module")
def base():
    with running_server() as (url, _):
        yield url


def events(response):
    """(kind, answer) for each event of an SSE response, as they come."""
    kind = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            yield kind, json.loads(line[len("data: ") :])


def _fit(**kwargs):
    defaults = dict(optimizer="adam", lr=3e-3, epochs=3, seed=0, batch_size=64)
    defaults.update(kwargs)
    optimizer = defaults.pop("optimizer")
    lr = defaults.pop("lr")
    return fit(digits(0), optimizer, lr, **defaults)[1]


def test_the_stream_ends_with_fits_curves_and_reports_every_half_second(base):
    query = {"optimizer": "momentum", "lr": 0.02, "batch-size": 32, "epochs": 4, "seed": 1}
    seen = []
    url = f"{base}/api/training/stream"
    with httpx.stream("GET", url, params={**query, "tab": "a"}, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for kind, answer in events(r):
            seen.append((kind, answer))
            if kind == "done":
                break
    kinds = [k for k, _ in seen]
    assert kinds[-1] == "done" and set(kinds[:-1]) == {"progress"}
    sent = [answer["numbers"]["seconds"] for _, answer in seen]
    assert max(b - a for a, b in zip([0.0, *sent], sent, strict=False)) <= 0.5
    final = seen[-1][1]["numbers"]
    run = _fit(optimizer="momentum", lr=0.02, batch_size=32, epochs=4, seed=1)
    torch.testing.assert_close(torch.tensor(final["val_loss"]), torch.tensor(run.val_loss))
    torch.testing.assert_close(torch.tensor(final["val_accuracy"]), torch.tensor(run.val_metric))
    torch.testing.assert_close(torch.tensor(final["train_loss"]), torch.tensor(run.train_loss))
    drawn = seen[-1][1]["figures"][0]["series"][1]
    assert drawn["name"] == "validation" and drawn["y"] == final["val_loss"]
    # the plain endpoint gives the same run in one answer
    whole = httpx.get(f"{base}/api/training", params=query, timeout=120).json()["numbers"]
    assert whole["val_loss"] == final["val_loss"]


def test_pause_resume_and_stop(base):
    query = {"epochs": 200, "tab": "b"}
    with httpx.stream("GET", f"{base}/api/training/stream", params=query, timeout=60) as r:
        stream = events(r)
        for _, answer in stream:
            if answer["numbers"]["epochs_done"] >= 1:
                break
        control = f"{base}/api/training/control"
        assert httpx.post(control, params={"tab": "b", "action": "pause"}).status_code == 200
        for _, answer in stream:  # what was in flight, then the paused heartbeat
            if answer["numbers"]["state"] == "paused":
                break
        paused_at, start = answer["numbers"]["epochs_done"], time.monotonic()
        beats = []
        for _, answer in stream:
            beats.append(answer["numbers"]["seconds"])
            assert answer["numbers"]["state"] == "paused"
            assert answer["numbers"]["epochs_done"] == paused_at
            if time.monotonic() - start > 1.2:
                break
        assert len(beats) >= 2 and max(b - a for a, b in zip(beats, beats[1:], strict=False)) <= 0.5
        assert httpx.post(control, params={"tab": "b", "action": "resume"}).status_code == 200
        for _, answer in stream:
            if answer["numbers"]["epochs_done"] > paused_at:
                break
        assert answer["numbers"]["state"] == "training"
        assert httpx.post(control, params={"tab": "b", "action": "stop"}).status_code == 200
        kind, answer = next((k, a) for k, a in stream if k == "done")
        assert answer["numbers"]["state"] == "stopped"
        assert answer["numbers"]["epochs_done"] < 200


def test_a_new_run_from_the_same_tab_stops_the_old_one(base):
    first_events, ended = [], threading.Event()

    def first():
        params = {"epochs": 200, "tab": "c"}
        with httpx.stream("GET", f"{base}/api/training/stream", params=params, timeout=60) as r:
            for kind, answer in events(r):
                first_events.append((kind, answer["numbers"]["state"]))
                if kind == "done":
                    break
        ended.set()

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + 60
    while not first_events:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    params = {"epochs": 1, "tab": "c", "optimizer": "sgd", "lr": 0.1}
    with httpx.stream("GET", f"{base}/api/training/stream", params=params, timeout=60) as r:
        kinds = [kind for kind, _ in events(r)]
    assert kinds[-1] == "done"
    assert ended.wait(10), "the superseded run went on"
    thread.join()
    assert first_events[-1] == ("done", "stopped")


def test_bad_controls_and_parameters(base):
    control = f"{base}/api/training/control"
    assert httpx.post(control, params={"tab": "nobody", "action": "pause"}).status_code == 404
    response = httpx.post(control, params={"tab": "x", "action": "explode"})
    assert response.status_code == 400 and "explode" in response.json()["error"]
    response = httpx.get(f"{base}/api/training/stream", params={"lr": "nan", "tab": "d"})
    assert response.status_code == 400 and "lr" in response.json()["error"]
    response = httpx.get(f"{base}/api/training/check", params={"optimizer": "lbfgs"})
    assert response.status_code == 400 and "lbfgs" in response.json()["error"]
    assert httpx.get(f"{base}/api/training/check", params={"epochs": 3}).status_code == 200
