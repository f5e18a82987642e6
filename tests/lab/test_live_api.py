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


def test_regression_fits_minimise_their_losses(client):
    query = {"outliers": 6, "offset": -20, "noise": 0.8, "delta": 2.0, "seed": 4}
    numbers = client.get("/api/regression", params=query).json()["numbers"]
    x = torch.tensor(numbers["x"], dtype=torch.float64)
    y = torch.tensor(numbers["y"], dtype=torch.float64)
    design = torch.stack([x, torch.ones_like(x)], dim=1)
    slope, intercept = torch.linalg.lstsq(design, y[:, None]).solution.flatten().tolist()
    fits = numbers["fits"]
    assert math.isclose(fits["L2 (MSE)"]["slope"], slope, abs_tol=1e-4)
    assert math.isclose(fits["L2 (MSE)"]["intercept"], intercept, abs_tol=1e-4)
    F = torch.nn.functional
    for name, loss in (("L1", F.l1_loss), ("Huber", lambda p, t: F.huber_loss(p, t, delta=2.0))):
        s, b = fits[name]["slope"], fits[name]["intercept"]
        best = loss(s * x + b, y).item()
        assert math.isclose(fits[name]["l1" if name == "L1" else "huber"], best, rel_tol=1e-12)
        for ds in (-0.01, 0.0, 0.01):  # no nearby line does better, beyond rounding of the fit
            for db in (-0.01, 0.0, 0.01):
                assert best <= loss((s + ds) * x + b + db, y).item() + 1e-6


def test_regression_fits_the_learners_point_with_the_others(client):
    base = {"outliers": 0, "noise": 0.5, "seed": 1}
    far = client.get("/api/regression", params={**base, "point-x": 5, "point-y": 60}).json()
    near = client.get("/api/regression", params={**base, "point-x": 5, "point-y": 11}).json()
    assert (far["numbers"]["x"][-1], far["numbers"]["y"][-1]) == (5, 60)  # fitted, last
    drawn = {s["name"]: s for s in far["figures"][0]["series"]}
    assert (drawn["your point"]["x"], drawn["your point"]["y"]) == ([5], [60])
    assert len(drawn["points"]["x"]) == len(far["numbers"]["x"]) - 1  # drawn apart
    # One point far off the line pulls L2's slope; L1 hardly moves.
    shift = {n: abs(far["numbers"]["fits"][n]["slope"] - near["numbers"]["fits"][n]["slope"])
             for n in ("L1", "L2 (MSE)")}  # fmt: skip
    assert shift["L2 (MSE)"] > 0.1 and shift["L2 (MSE)"] > 20 * shift["L1"]


@pytest.mark.parametrize("ignore", ["none", "1"])
def test_softmax_rows_and_mean_equal_torch(client, ignore):
    query = {"z0": 0.5, "z1": -1.2, "z2": 3.0, "w0": 2.0, "w1": 0.5, "w2": 1.0,
             "ignore-index": ignore, "label-smoothing": 0.15}  # fmt: skip
    numbers = client.get("/api/softmax", params=query).json()["numbers"]
    logits = torch.tensor([[0.5, -1.2, 3.0]] * 3, dtype=torch.float64)
    target, weight = torch.arange(3), torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)
    index = -100 if ignore == "none" else 1
    kwargs = dict(weight=weight, ignore_index=index, label_smoothing=0.15)
    F = torch.nn.functional
    rows = F.cross_entropy(logits, target, reduction="none", **kwargs)
    torch.testing.assert_close(torch.tensor(numbers["rows"], dtype=torch.float64), rows)
    assert math.isclose(numbers["mean"], F.cross_entropy(logits, target, **kwargs).item())
    assert math.isclose(numbers["naive_mean"], rows.sum().item() / 3)
    torch.testing.assert_close(
        torch.tensor(numbers["softmax"], dtype=torch.float64), torch.softmax(logits[0], 0)
    )


def test_kl_values_equal_torch(client):
    query = {"q-mean": 1.3, "q-spread": 0.9, "q-mix": 0.3}
    numbers = client.get("/api/kl", params=query).json()["numbers"]
    p = torch.tensor(numbers["p"], dtype=torch.float64)
    q = torch.tensor(numbers["q"], dtype=torch.float64)
    F = torch.nn.functional
    forward = F.kl_div(q.log(), p, reduction="sum").item()
    reverse = F.kl_div(p.log(), q, reduction="sum").item()
    assert math.isclose(numbers["forward_kl"], forward, rel_tol=1e-9)
    assert math.isclose(numbers["reverse_kl"], reverse, rel_tol=1e-9)
    h_p = -(p * p.log()).sum().item()
    assert math.isclose(numbers["entropy"], h_p, rel_tol=1e-9)
    assert math.isclose(numbers["cross_entropy"], h_p + forward, rel_tol=1e-9)
    assert min(numbers["scan"]["cross_entropy"]) >= h_p  # H(P, Q) >= H(P)
    at_p = client.get("/api/kl", params={"q-mean": 2.5, "q-spread": 0.5, "q-mix": 0.5}).json()
    assert abs(at_p["numbers"]["forward_kl"]) < 1e-12  # equality at Q = P
    best = numbers["best"]
    assert abs(best["forward"][0]) < 0.05 and best["forward"][1] > 2  # covers both modes
    assert abs(abs(best["reverse"][0]) - 2.5) < 0.05  # sits on one


def test_triplet_losses_and_kinds_by_brute_force(client):
    query = {"ax": 0.2, "ay": -0.3, "px": 1.1, "py": 0.4, "nx": 0.5, "ny": -0.1, "margin": 0.7}
    numbers = client.get("/api/triplet", params=query).json()["numbers"]
    a, p = torch.tensor([[0.2, -0.3]]), torch.tensor([[1.1, 0.4]])
    F = torch.nn.functional
    d_ap = F.pairwise_distance(a, p).item()
    assert math.isclose(numbers["d_ap"], d_ap, rel_tol=1e-6)
    for neg in numbers["negatives"]:
        n = torch.tensor([[neg["x"], neg["y"]]])
        d_an = F.pairwise_distance(a, n).item()
        loss = F.triplet_margin_loss(a, p, n, margin=0.7).item()
        assert math.isclose(neg["loss"], loss, rel_tol=1e-5, abs_tol=1e-6)
        kind = "hard" if d_an < d_ap else "semi-hard" if d_an < d_ap + 0.7 else "easy"
        assert neg["kind"] == kind
        assert (neg["loss"] > 0) == (kind != "easy")
    assert numbers["kind"] == "hard"  # the chosen negative is nearer than the positive


def test_derivative_against_the_analytic_slope(client):
    numbers = client.get("/api/derivative", params={"h": 1e-4, "w": 2.0, "seed": 1}).json()
    numbers = numbers["numbers"]
    g = torch.Generator().manual_seed(1)
    x = torch.rand(50, generator=g, dtype=torch.float64) * 4 - 2
    y = 1.5 * x + 0.5 * torch.randn(50, generator=g, dtype=torch.float64)
    slope = (2 * x * (2.0 * x - y)).mean().item()  # d/dw mean (w x - y)^2
    assert math.isclose(numbers["autograd"], slope, rel_tol=1e-12)
    curvature = 2 * (x * x).mean().item()
    assert math.isclose(numbers["forward_error"], curvature * 1e-4 / 2, rel_tol=1e-3)
    assert numbers["central_error"] < 1e-8


def test_gd_curve_equals_torch_sgd(client):
    query = {"batch-size": 16, "lr": 0.2, "steps": 8, "seed": 2}
    numbers = client.get("/api/gd-vs-sgd", params=query).json()["numbers"]
    from lossopt.lab.data import digits

    data = digits(0)
    torch.manual_seed(2)
    model = torch.nn.Linear(64, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    F = torch.nn.functional
    curve = [F.cross_entropy(model(data.x_train), data.y_train).item()]
    for _ in range(8):
        opt.zero_grad()
        F.cross_entropy(model(data.x_train), data.y_train).backward()
        opt.step()
        curve.append(F.cross_entropy(model(data.x_train), data.y_train).item())
    torch.testing.assert_close(torch.tensor(numbers["gd"]), torch.tensor(curve))
    assert numbers["read_per_step"] == {"gd": len(data.y_train), "sgd": 16}
    assert len(numbers["noise"]) == 8 and all(v > 0 for v in numbers["noise"])


def _sample(knob, rng):
    if knob.kind in ("float", "int"):
        r = rng.random()
        if r < 0.25:
            value = knob.lo
        elif r < 0.5:
            value = knob.hi
        elif knob.scale == "log":
            value = 10 ** rng.uniform(math.log10(knob.lo), math.log10(knob.hi))
        else:
            value = rng.uniform(knob.lo, knob.hi)
        return round(value) if knob.kind == "int" else value
    if knob.kind == "choice":
        return rng.choice(knob.choices)
    if knob.kind == "subset":
        return ",".join(rng.sample(knob.choices, rng.randint(1, len(knob.choices))))
    return rng.choice(["true", "false"])


CAPS = {"training": {"epochs": 1}, "gd-vs-sgd": {"steps": 20}, "paths": {"steps": 60},
        "learning-rate": {"steps": 60}, "adaptive": {"steps": 300}}  # fmt: skip


@pytest.mark.parametrize("name", list(EXPLORABLES))
def test_any_setting_in_the_knobs_ranges_is_answered(client, name):
    """Edges and random values of every knob: always a 200 with strict JSON, never a
    refusal from lossopt for a value the knobs let through."""
    import random

    rng = random.Random(name)
    for _ in range(4):
        query = {k.name: _sample(k, rng) for k in EXPLORABLES[name].knobs}
        for knob, cap in CAPS.get(name, {}).items():
            query[knob] = min(query[knob], cap)
        response = client.get(f"/api/{name}", params=query)
        assert response.status_code == 200, (query, response.text)
        json.loads(response.text)


def test_a_failing_computation_is_answered_and_the_server_goes_on(monkeypatch):
    from lossopt.lab.knobs import Knob
    from lossopt.lab.live.explorable import Explorable

    def compute(*, x):
        if x > 1:
            raise ValueError(f"x refused by lossopt: {x}")
        raise RuntimeError("boom")

    broken = Explorable("broken", "t", "i", (Knob("x", "x", 0.0, lo=0.0, hi=2.0),), compute)
    monkeypatch.setitem(EXPLORABLES, "broken", broken)
    with TestClient(create_app()) as c:
        refused = c.get("/api/broken?x=1.5")
        assert refused.status_code == 400 and "x refused" in refused.json()["error"]
        failed = c.get("/api/broken?x=0.5")
        assert failed.status_code == 500 and "RuntimeError: boom" in failed.json()["error"]
        assert c.get("/api/triplet").status_code == 200
