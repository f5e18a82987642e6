"""The live lab in a real browser (Debian's Chromium driven by Playwright): for
every explorable, move its controls and check that what plotly drew is, number
for number, what lossopt computes in Python for the same settings; bad values
show the server's message and the page recovers; ten tabs at once all draw."""

import math
import time

import pytest
from playwright.sync_api import sync_playwright

from lossopt.lab.live.catalog import EXPLORABLES
from lossopt.lab.training import one_thread
from tests.lab.browser import ARTIFACTS, CHROMIUM
from tests.lab.live import running_server

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TRACES = """id => document.getElementById(id).data.map(t => ({name: t.name, type: t.type,
  x: Array.from(t.x || []), y: Array.from(t.y || []), z: t.z ? t.z.length : 0}))"""
SHAPES = "id => (document.getElementById(id).layout.shapes || []).map(s => [s.name, s.x0, s.y0])"


@pytest.fixture(scope="module")
def lab():
    assert CHROMIUM and __import__("os").path.exists(CHROMIUM), "Debian's chromium is missing"
    with running_server() as (url, address), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield url, address, browser
        browser.close()


@pytest.fixture
def page(lab):
    url, _, browser = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.errors, page.requests = [], []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("request", lambda request: page.requests.append(request.url))
    page.base = url
    yield page
    page.close()


def drawn_count(page) -> int:
    return page.evaluate("Number(document.body.dataset.drawn || 0)")


def open_explorable(page, name: str, query: str = "") -> None:
    page.goto(f"{page.base}/#{name}" + (f"?{query}" if query else ""))
    page.wait_for_function("Number(document.body.dataset.drawn || 0) >= 1", timeout=60_000)


def settle(page, before: int) -> None:
    page.wait_for_function(f"Number(document.body.dataset.drawn || 0) > {before}", timeout=60_000)
    page.wait_for_timeout(50)


def move(page, knob: str, value) -> None:
    """Change one control as a user would, and wait for the new drawing."""
    before = drawn_count(page)
    box = f"#knob-{knob}"
    if page.locator(f"{box} select").count():
        page.select_option(f"{box} select", str(value))
    elif page.locator(f"{box} input[type=number]").count():
        page.fill(f"{box} input[type=number]", str(value))
        page.dispatch_event(f"{box} input[type=number]", "change")
    elif isinstance(value, bool):
        page.set_checked(f"{box} input", value)
    else:  # a subset: exactly these boxes checked
        for check in page.locator(f"{box} input").all():
            want = check.get_attribute("value") in value
            if check.is_checked() != want:
                check.set_checked(want)
                if want or len(page.locator(f"{box} input:checked").all()) > 0:
                    settle(page, before)
                    before = drawn_count(page)
        return
    settle(page, before)


def close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def assert_drawn_is_computed(page, name: str, params: dict) -> dict:
    """Every figure's traces on the page against the explorable computed here in Python."""
    with one_thread():  # as the server computes: float32 sums depend on the thread count
        answer = EXPLORABLES[name].run(params)
    assert answer["params"] == page.evaluate("lab.answer.params")
    for spec in answer["figures"]:
        traces = page.evaluate(TRACES, f"fig-{spec['name']}")
        drawn = {t["name"]: t for t in traces}
        for series in spec["series"]:
            if series["kind"] in ("vline", "hline"):
                continue
            trace = drawn[series["name"]]
            if series["kind"] == "contour":
                assert trace["z"] == len(series["z"])
                continue
            assert len(trace["x"]) == len(series["x"]), (spec["name"], series["name"])
            assert all(close(a, b) for a, b in zip(trace["x"], series["x"], strict=True))
            assert all(close(a, b) for a, b in zip(trace["y"], series["y"], strict=True))
        lines = page.evaluate(SHAPES, f"fig-{spec['name']}")
        expected = [s for s in spec["series"] if s["kind"] in ("vline", "hline")]
        assert len(lines) == len(expected)
        for (label, x0, y0), series in zip(lines, expected, strict=True):
            assert label == series["name"]
            assert close(x0 if series["kind"] == "vline" else y0, (series["x"] or series["y"])[0])
    notes = page.evaluate(
        "Array.from(document.querySelectorAll('#notes li'), li => li.textContent)"
    )
    assert notes == answer["notes"]
    for key, value in answer["numbers"].items():  # what the notes and traces were made from
        if key != "seconds":  # a streamed answer's time on the server
            assert page.evaluate(f"lab.answer.numbers[{key!r}]") == value, key
    return answer


def current_params(page) -> dict:
    return page.evaluate(
        "Object.fromEntries(new URLSearchParams(location.hash.split('?')[1]).entries())"
    )


# (explorable, query to open with, controls to move)
MOVES = [
    ("regression", "", [("outliers", 3), ("delta", 0.5), ("offset", -12)]),
    ("softmax", "", [("z1", 2.5), ("ignore-index", "2"), ("label-smoothing", 0.1), ("w0", 3)]),
    ("kl", "", [("q-mean", 2.5), ("q-spread", 0.5), ("q-mix", 0.5)]),
    ("triplet", "", [("margin", 2), ("nx", -1), ("ay", 0.5)]),
    ("derivative", "", [("h", 1e-6), ("w", 2)]),
    ("gd-vs-sgd", "steps=10", [("batch-size", 8), ("lr", 0.1)]),
    ("learning-rate", "steps=30", [("lr-large", 0.9), ("condition", 5)]),
    (
        "paths",
        "",
        [
            ("optimizers", ("sgd", "momentum")),
            ("surface", "rosenbrock"),
            ("lr-sgd", 0.01),
            ("momentum", 0.5),
        ],
    ),  # fmt: skip
    ("adaptive", "steps=100", [("bias-correction", False), ("beta2", 0.99), ("gamma", 0.9)]),
]


def test_every_explorable_has_a_browser_case():
    assert sorted([*(name for name, _, _ in MOVES), "training"]) == sorted(EXPLORABLES)


@pytest.mark.parametrize("name, query, moves", MOVES, ids=[m[0] for m in MOVES])
def test_moving_controls_redraws_lossopts_numbers(page, name, query, moves):
    open_explorable(page, name, query)
    assert_drawn_is_computed(page, name, current_params(page))
    for knob, value in moves:
        move(page, knob, value)
        params = current_params(page)
        shown = EXPLORABLES[name].parse(params)
        attr = knob.replace("-", "_")
        expected = value if not isinstance(value, tuple) else value
        assert shown[attr] == EXPLORABLES[name].parse({knob: expected})[attr]
    answer = assert_drawn_is_computed(page, name, current_params(page))
    assert page.errors == []
    assert all(url.startswith(page.base) for url in page.requests)  # nothing from elsewhere
    if name == "paths":
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "live-lab-paths.png"))
        assert set(answer["numbers"]["runs"]) == {"sgd", "momentum"}


def test_play_draws_the_path_step_by_step_and_a_click_moves_the_start(page):
    open_explorable(page, "paths", "optimizers=sgd&steps=20")
    page.fill("#play-step", "5")
    page.dispatch_event("#play-step", "input")
    (sgd,) = [t for t in page.evaluate(TRACES, "fig-paths") if t["name"] == "SGD"]
    full = EXPLORABLES["paths"].run({"optimizers": "sgd", "steps": 20})["numbers"]["runs"]["sgd"]
    assert sgd["x"] == [p[0] for p in full["points"][:6]]
    before = drawn_count(page)
    box = page.locator("#fig-paths .nsewdrag").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.25)
    settle(page, before)
    params = current_params(page)
    assert (float(params["x0"]), float(params["y0"])) != (-7.0, 2.0)
    assert float(params["x0"]) > 0 and float(params["y0"]) > 0  # upper right quadrant
    assert_drawn_is_computed(page, "paths", params)


def test_a_bad_value_shows_the_servers_message_and_the_page_recovers(page):
    open_explorable(page, "paths")
    page.fill("#knob-lr-sgd input[type=number]", "-1")
    page.dispatch_event("#knob-lr-sgd input[type=number]", "change")
    page.wait_for_function("Number(document.body.dataset.errors || 0) >= 1")
    message = page.text_content("#error")
    assert "lr-sgd" in message and "-1" in message and page.is_visible("#error")
    move(page, "lr-sgd", 0.5)
    assert not page.is_visible("#error")
    page.goto("about:blank")
    page.goto(f"{page.base}/#triplet?margin=nan")
    page.wait_for_function("Number(document.body.dataset.errors || 0) >= 1")
    assert "margin" in page.text_content("#error")


def test_ten_tabs_at_once_all_draw(lab):
    url, _, browser = lab
    context = browser.new_context()
    names = [name for name, e in EXPLORABLES.items() if not e.stream][:9]
    pages = [context.new_page() for _ in range(10)]
    start = time.perf_counter()
    pages[-1].goto(f"{url}/#training?epochs=2")  # the tenth trains the network meanwhile
    pages[-1].click("#train-start")
    for name, tab in zip(names, pages, strict=False):
        tab.goto(f"{url}/#{name}" + ("?steps=10" if name == "gd-vs-sgd" else ""))
    for tab in pages[:-1]:
        tab.wait_for_function("Number(document.body.dataset.drawn || 0) >= 1", timeout=240_000)
    pages[-1].wait_for_function("document.body.dataset.training === 'done'", timeout=240_000)
    assert time.perf_counter() - start < 240  # on 2 busy cores
    for name, tab in zip(names, pages, strict=False):
        assert tab.evaluate("lab.answer.explorable") == name
    context.close()


def test_the_server_listens_on_loopback_only(lab):
    _, (host, _), _ = lab
    assert host == "127.0.0.1"


def _set(page, knob: str, value) -> None:
    """Change a control of the training explorable (a change draws nothing until start)."""
    box = f"#knob-{knob}"
    if page.locator(f"{box} select").count():
        page.select_option(f"{box} select", str(value))
    else:
        page.fill(f"{box} input[type=number]", str(value))
        page.dispatch_event(f"{box} input[type=number]", "change")


def _epochs(page) -> int:
    return page.evaluate("lab.answer ? lab.answer.numbers.epochs_done : -1")


# Each drawing's time (performance.now()), noted by the page itself as it happens
DRAWS = """() => { window.drawnAt = [];
  new MutationObserver(() => drawnAt.push(performance.now()))
    .observe(document.body, {attributes: true, attributeFilter: ["data-drawn"]}); }"""


def test_training_streams_the_loops_curves_pauses_resumes_and_resets(page):
    page.goto(f"{page.base}/#training?epochs=3")
    page.wait_for_selector("#train-start", state="visible")
    for knob, value in (("optimizer", "momentum"), ("lr", 0.02), ("batch-size", 32)):
        _set(page, knob, value)
    page.click("#train-start")
    page.wait_for_function("document.body.dataset.training === 'done'", timeout=120_000)
    params = current_params(page)
    assert (params["optimizer"], params["lr"], params["batch-size"]) == ("momentum", "0.02", "32")
    assert_drawn_is_computed(page, "training", params)  # the loop's run, in Python, here

    # A long run, so that every step below happens while it trains: 200 epochs of 8
    # examples a step are some 30,000 steps, half a minute on one idle core; the steps
    # below each wait on the page's state, not on a time
    _set(page, "batch-size", 8)
    _set(page, "epochs", 200)
    assert page.evaluate("lab.answer") is None  # the change reset the finished run
    page.evaluate(DRAWS)
    page.click("#train-start")
    running = "document.body.dataset.training === 'training' && lab.answer"
    try:
        page.wait_for_function(f"{running} && lab.answer.numbers.epochs_done >= 2", timeout=60_000)
    except Exception:
        state = "[document.body.dataset.training, lab.answer && lab.answer.notes, lab.errors]"
        raise AssertionError(page.evaluate(state)) from None
    streamed = page.evaluate("lab.answer.numbers.epochs_done")
    (validation,) = [t for t in page.evaluate(TRACES, "fig-loss") if t["name"] == "validation"]
    assert len(validation["y"]) == streamed  # the curve drawn so far, epoch by epoch
    page.click("#train-pause", timeout=10_000)
    # the page shows the pause at once, though answers sent before it keep coming
    assert page.evaluate("document.body.dataset.training") == "paused"
    page.wait_for_function("lab.answer.numbers.state === 'paused'", timeout=60_000)
    held, since = page.evaluate("[lab.answer.numbers.epochs_done, lab.answer.numbers.seconds]")
    # a second of the server's clock while paused (its answers say when it sent them)
    page.wait_for_function(f"lab.answer.numbers.seconds > {since + 1}", timeout=60_000)
    assert _epochs(page) == held and page.evaluate("lab.answer.numbers.state") == "paused"
    assert page.evaluate("document.body.dataset.training") == "paused"
    page.click("#train-pause", timeout=10_000)  # resume
    page.wait_for_function(f"lab.answer.numbers.epochs_done > {held}", timeout=60_000)
    assert page.evaluate("document.body.dataset.training") == "training"
    # never two drawings closer than the page's least gap: the answers that came between
    # were replaced by newer ones, not queued
    drawn_at = page.evaluate("drawnAt")
    assert len(drawn_at) >= 3
    assert min(b - a for a, b in zip(drawn_at, drawn_at[1:], strict=False)) >= 90
    _set(page, "lr", 0.05)  # a change while it runs: a new run replaces it
    page.wait_for_function("lab.answer && lab.answer.params.lr === 0.05", timeout=60_000)
    assert page.evaluate("document.body.dataset.training") == "training"
    page.click("#train-reset", timeout=10_000)
    assert page.evaluate("document.body.dataset.training") == "idle"
    assert page.evaluate("document.getElementById('figures').children.length") == 0
    # no drawing of the stopped run was still due: after the longest gap, still nothing
    page.wait_for_timeout(1000)
    assert page.evaluate("[lab.answer, document.getElementById('figures').children.length]") == [
        None,
        0,
    ]
    assert page.errors == []


def test_training_answers_are_drawn_newest_only(page):
    """Fifty answers at once: one drawing, of the last; a reset drops one still due."""
    page.goto(f"{page.base}/#training")
    page.wait_for_selector("#train-start", state="visible")
    drawn = page.evaluate(
        """() => new Promise((done) => {
             const drawn = [];
             for (let i = 0; i < 50; i++) latest.later(() => drawn.push(i));
             setTimeout(() => done(drawn), 1500);
           })"""
    )
    assert drawn == [49]
    dropped = page.evaluate(
        """() => new Promise((done) => {
             const drawn = [];
             latest.later(() => drawn.push("first"));
             setTimeout(() => {
               latest.later(() => drawn.push("stale"));
               liveTraining.reset();
               setTimeout(() => done(drawn), 1500);
             }, 700);
           })"""
    )
    assert dropped == ["first"]


def test_rapid_changes_draw_only_the_last(page):
    open_explorable(page, "paths")
    before = drawn_count(page)
    page.evaluate(
        """() => { for (const v of [0.1, 0.2, 0.3, 0.4, 0.55]) {
             lab.values['lr-sgd'] = v; update(); } }"""
    )
    settle(page, before)
    page.wait_for_timeout(1500)  # anything still in flight would land by now
    assert drawn_count(page) == before + 1  # the four older requests were aborted, never drawn
    assert page.evaluate("lab.answer.params['lr-sgd']") == 0.55
    assert_drawn_is_computed(page, "paths", current_params(page))


def _click_board(page, x, y):
    """A click on the triplet board at data coordinates (x, y), by plotly's own axes."""
    before = drawn_count(page)
    box = page.locator("#fig-embedding .nsewdrag").bounding_box()
    at = page.evaluate(
        """([x, y]) => { const l = document.getElementById('fig-embedding')._fullLayout;
                         return [l.xaxis.d2p(x), l.yaxis.d2p(y)]; }""",
        [x, y],
    )
    page.mouse.click(box["x"] + at[0], box["y"] + at[1])
    settle(page, before)
    return current_params(page)


@pytest.mark.parametrize(
    ("near", "moved", "kept"),
    [((1.3, -1.4), "n", ("a", "p")), ((-0.3, 0.2), "a", ("p", "n")), ((1.2, 0.9), "p", ("a", "n"))],
)
def test_a_click_on_the_triplet_board_moves_the_nearest_point(page, near, moved, kept):
    """Anchor (0, 0), positive (1, 0.5) and negative (1.5, -1) by default: a click
    moves the one nearest to it there, and only that one."""
    open_explorable(page, "triplet")
    start = page.evaluate("({...lab.values})")
    params = _click_board(page, *near)
    now = page.evaluate("({...lab.values})")
    assert abs(now[moved + "x"] - near[0]) < 0.15 and abs(now[moved + "y"] - near[1]) < 0.15
    for knob in (point + axis for point in kept for axis in "xy"):
        assert now[knob] == start[knob], knob
    assert_drawn_is_computed(page, "triplet", params)


def test_a_click_on_the_regression_board_places_the_learners_point(page):
    open_explorable(page, "regression")
    before = drawn_count(page)
    box = page.locator("#fig-fits .nsewdrag").bounding_box()
    # x spans about -5..5 and y about -10..35 (the outliers): the upper right is far above
    page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] * 0.1)
    settle(page, before)
    params = current_params(page)
    px, py = float(params["point-x"]), float(params["point-y"])
    assert px > 1.0 and py > 2 * px + 1 + 5, (px, py)  # right of centre, well above the line
    answer = assert_drawn_is_computed(page, "regression", params)
    assert answer["numbers"]["point"] == [px, py]
