"""The live lab's JSON API with Starlette's test client: every explorable answers,
every bad value of every knob is a 400 naming it (and the server goes on), and
the numbers equal torch's, computed here independently in float64."""

import asyncio
import json
import math
import time

import httpx
import pytest
import torch
from starlette.testclient import TestClient

from lossopt.lab.live.catalog import EXPLORABLES
from lossopt.lab.live.server import create_app


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app()) as c:
        yield c


def _bad_values(knob) -> list:
    if knob.kind in ("float", "int"):
        span = knob.hi - knob.lo
        bad = ["nan", "inf", "-inf", "abc", "", str(knob.lo - span), str(knob.hi + span)]
        return bad + (["1.5"] if knob.kind == "int" else [])
    if knob.kind == "choice":
        return ["no-such-choice", ""]
    if knob.kind == "subset":
        return ["no-such-choice", ",", ""]
    return ["maybe", "2"]


CASES = [
    (name, knob.name, bad)
    for name, explorable in EXPLORABLES.items()
    for knob in explorable.knobs
    for bad in _bad_values(knob)
]


def test_the_catalogue_lists_every_explorable_with_its_knobs(client):
    body = client.get("/api").json()
    assert [e["name"] for e in body["explorables"]] == list(EXPLORABLES)
    for described in body["explorables"]:
        knobs = EXPLORABLES[described["name"]].knobs
        assert [k["name"] for k in described["knobs"]] == [k.name for k in knobs]


@pytest.mark.parametrize("name", list(EXPLORABLES))
def test_every_explorable_answers_its_defaults(client, name):
    response = client.get(f"/api/{name}")
    assert response.status_code == 200
    body = json.loads(response.text)  # strict JSON: no NaN or Infinity
    assert body["explorable"] == name and body["figures"] and body["notes"]
    for figure in body["figures"]:
        assert figure["series"], figure["title"]
    knobs = EXPLORABLES[name].knobs
    assert set(body["params"]) == {k.name for k in knobs}


@pytest.mark.parametrize("name, knob, bad", CASES)
def test_a_bad_value_is_a_400_naming_the_knob(client, name, knob, bad):
    response = client.get(f"/api/{name}", params={knob: bad})
    assert response.status_code == 400, (knob, bad)
    assert knob in response.json()["error"]


def test_unknown_names_and_repeats_are_refused_and_the_server_goes_on(client):
    response = client.get("/api/paths?momentum=0.5&momentum=0.6")
    assert response.status_code == 400 and "twice" in response.json()["error"]
    response = client.get("/api/paths?learning_rate=0.1")
    assert response.status_code == 400 and "learning_rate" in response.json()["error"]
    response = client.get("/api/no-such")
    assert response.status_code == 404 and "paths" in response.json()["error"]
    assert client.get("/api/paths?steps=3").status_code == 200


def test_a_request_overtaken_by_a_newer_one_from_its_tab_is_not_computed(client):
    headers = {"X-Lab-Tab": "t1", "X-Lab-Seq": "7"}
    assert client.get("/api/paths?steps=2", headers=headers).status_code == 200
    stale = client.get("/api/paths?steps=2", headers={"X-Lab-Tab": "t1", "X-Lab-Seq": "6"})
    assert stale.status_code == 409
    other = client.get("/api/paths?steps=2", headers={"X-Lab-Tab": "t2", "X-Lab-Seq": "1"})
    assert other.status_code == 200


def test_the_page_and_plotly_come_from_the_server(client):
    page = client.get("/")
    assert page.status_code == 200 and "/static/plotly.min.js" in page.text
    assert "http" not in page.text.split("<body>")[0].replace("http-equiv", "")  # no CDN
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert client.get("/static/lab.js").status_code == 200
    assert client.get("/static/../server.py").status_code == 404


# -- the numbers equal torch's, in float64 ------------------------------------------------
def _torch_path(build, f, start, steps):
    xy = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = build([xy])
    points = [list(start)]
    for _ in range(steps):
        opt.zero_grad()
        f(xy[0], xy[1]).backward()
        opt.step()
        points.append(xy.tolist())
    return points


@pytest.mark.parametrize("surface", ["bowl", "rosenbrock", "saddle"])
def test_paths_equal_torch_optimizers(client, surface):
    query = dict(surface=surface, condition=7, momentum=0.8, gamma=0.9, beta1=0.8, beta2=0.99,
                 eps=1e-6, x0=-4, y0=1.5, steps=25)  # fmt: skip
    query.update({"lr-sgd": 0.05, "lr-momentum": 0.02, "lr-adagrad": 0.5, "lr-rmsprop": 0.05,
                  "lr-adam": 0.1})  # fmt: skip
    body = client.get("/api/paths", params=query).json()
    formulas = {
        "bowl": lambda x, y: x**2 / 7 + y**2,
        "rosenbrock": lambda x, y: (1 - x / 5) ** 2 + 10 * (y / 2.5 - (x / 5) ** 2) ** 2,
        "saddle": lambda x, y: x**2 / 20 - y**2 / 20 + y**4 / 400,
    }
    builds = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.05),
        "momentum": lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.8),
        "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.5, eps=1e-6),
        "rmsprop": lambda p: torch.optim.RMSprop(p, lr=0.05, alpha=0.9, eps=1e-6),
        "adam": lambda p: torch.optim.Adam(p, lr=0.1, betas=(0.8, 0.99), eps=1e-6),
    }
    for name, build in builds.items():
        expected = _torch_path(build, formulas[surface], (-4.0, 1.5), 25)
        run = body["numbers"]["runs"][name]
        torch.testing.assert_close(
            torch.tensor(run["points"]), torch.tensor(expected), rtol=1e-12, atol=1e-12
        )
        drawn = next(s for s in body["figures"][0]["series"] if s["name"] == run_label(name))
        assert drawn["x"] == [p[0] for p in run["points"]]
    assert math.isclose(body["numbers"]["runs"]["momentum"]["effective_lr"], 0.02 / 0.2)


def run_label(name):
    return {"sgd": "SGD", "momentum": "Momentum", "adagrad": "AdaGrad", "rmsprop": "RMSProp",
            "adam": "Adam"}[name]  # fmt: skip


def test_learning_rate_threshold_is_two_over_the_largest_curvature(client):
    query = {"condition": 4, "steps": 40, "lr-small": 0.02, "lr-right": 0.9, "lr-large": 1.0}
    body = client.get("/api/learning-rate", params=query).json()
    # x²/4 + y²: curvatures 1/2 and 2, so SGD diverges above 2/2
    assert math.isclose(body["numbers"]["stability_limit"], 1.0, rel_tol=1e-12)
    expected = _torch_path(
        lambda p: torch.optim.SGD(p, lr=0.02), lambda x, y: x**2 / 4 + y**2, (-7.0, 2.0), 40
    )
    torch.testing.assert_close(
        torch.tensor(body["numbers"]["runs"][0]["points"]), torch.tensor(expected), rtol=1e-12,
        atol=1e-12,
    )  # fmt: skip
    stable = [run["stable"] for run in body["numbers"]["runs"]]
    assert stable == [True, True, False]  # 0.02, 0.9, 1.0 (= the limit)
    sweep = body["numbers"]["sweep"]
    below = [f for lr, f in zip(sweep["lrs"], sweep["final"], strict=True) if lr < 0.9]
    above = [f for lr, f in zip(sweep["lrs"], sweep["final"], strict=True) if lr > 1.1]
    assert max(below) < 1e3 < min(above)


@pytest.mark.parametrize("correction", ["true", "false"])
def test_adaptive_steps_equal_torch(client, correction):
    query = {"lr": 0.03, "gamma": 0.9, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6,
             "bias-correction": correction, "noise": 0.7, "steps": 50, "seed": 3}  # fmt: skip
    numbers = client.get("/api/adaptive", params=query).json()["numbers"]
    stream = numbers["stream"]
    g = torch.Generator().manual_seed(3)
    assert stream == (1 + 0.7 * torch.randn(50, generator=g, dtype=torch.float64)).tolist()

    def lengths(build):
        theta = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt, out = build([theta]), []
        for value in stream:
            before = theta.item()
            theta.grad = torch.tensor([value], dtype=torch.float64)
            opt.step()
            out.append(abs(theta.item() - before))
        return out

    adagrad = lengths(lambda p: torch.optim.Adagrad(p, lr=0.03, eps=1e-6))
    rmsprop = lengths(lambda p: torch.optim.RMSprop(p, lr=0.03, alpha=0.9, eps=1e-6))
    adam = lengths(lambda p: torch.optim.Adam(p, lr=0.03, betas=(0.8, 0.99), eps=1e-6))
    torch.testing.assert_close(torch.tensor(numbers["adagrad"]), torch.tensor(adagrad))
    torch.testing.assert_close(torch.tensor(numbers["rmsprop"]), torch.tensor(rmsprop))
    if correction == "true":
        torch.testing.assert_close(torch.tensor(numbers["adam"]), torch.tensor(adam))
    else:  # the uncorrected first step: η (1 - β₁) / √(1 - β₂)
        assert math.isclose(numbers["adam"][0], 0.03 * 0.2 / math.sqrt(0.01), rel_tol=1e-4)
    assert math.isclose(rmsprop[0], 0.03 / math.sqrt(0.1), rel_tol=1e-4)  # the spike


# -- ten clients at once ------------------------------------------------------------------
def test_ten_concurrent_clients_all_get_their_answer():
    app = create_app()

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://lab") as http:
            names = list(EXPLORABLES)
            requests = [
                http.get(f"/api/{names[i % len(names)]}", headers={"X-Lab-Tab": f"tab{i}"})
                for i in range(10)
            ]
            return await asyncio.gather(*requests)

    start = time.perf_counter()
    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * 10
    assert time.perf_counter() - start < 60
