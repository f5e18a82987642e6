"""The command line: reports, comparisons on the user's CSV, and bad input."""

import html
import json
import re
import subprocess
import sys
from urllib.parse import parse_qsl

import numpy as np
import pytest

import lossopt
from lossopt.__main__ import main
from lossopt.lab.config import Config
from lossopt.lab.experiments import EXPERIMENTS


def _lossopt(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "lossopt", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def _write_csv(path, rows):
    path.write_text("\n".join(",".join(map(str, row)) for row in rows) + "\n")
    return path


@pytest.fixture
def classification_csv(tmp_path):
    rng = np.random.default_rng(0)
    rows = [["width", "height", "colour", "kind"]]
    for _ in range(120):
        w, h = rng.normal(size=2)
        colour = rng.choice(["red", "green", "blue"])
        kind = "big" if w + h + (colour == "red") > 0.3 else "small"
        rows.append([f"{w:.3f}", f"{h:.3f}", colour, kind])
    return _write_csv(tmp_path / "shapes.csv", rows)


def test_one_experiment_writes_a_complete_report(tmp_path):
    out = tmp_path / "report"
    done = _lossopt("lab", "entropy", "--quick", "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out / "index.html")
    assert done.stderr == ""
    names = {p.name for p in out.iterdir()}
    figures = {n for n in names if n.endswith(".png")}
    assert figures and names - figures == {
        "index.html",
        "results.json",
        "timings.json",
        ".lossopt-report",
    }
    marker = json.loads((out / ".lossopt-report").read_text())
    assert marker == {"kind": "lab", "files": sorted(names - {".lossopt-report"})}
    results = json.loads((out / "results.json").read_text())["results"]
    assert list(results) == ["entropy"]
    page = (out / "index.html").read_text()
    assert f"{results['entropy']['loaded_die']:.3f}" in page


def test_progress_lines_when_not_a_terminal(tmp_path):
    done = _lossopt("lab", "adaptive", "--quick", "--out", str(tmp_path / "r"))
    assert done.returncode == 0
    assert "[1/2] adaptive" in done.stderr and "[2/2] report" in done.stderr
    assert re.search(r"\[1/2\] adaptive \(\d+:\d\d so far, about \d+:\d\d left\)", done.stderr)


def test_progress_estimates_the_time_left_from_the_steps_after_the_first(capsys):
    from lossopt.lab.cli import Progress

    # the start, then after each step: the first took 40 s (start-up included), the rest 10 s
    times = iter([0.0, 40.0, 50.0, 60.0])
    progress = Progress(4, quiet=False, clock=lambda: next(times))
    for what in ("a", "b", "c"):
        progress(what)
    lines = capsys.readouterr().err.splitlines()
    # 40 s for the first: 2:00 for the 3 left; then 10 s a step since the first: 0:20, 0:10
    assert lines == [
        "[1/4] a (0:40 so far, about 2:00 left)",
        "[2/4] b (0:50 so far, about 0:20 left)",
        "[3/4] c (1:00 so far, about 0:10 left)",
    ]


def test_same_seed_same_results(tmp_path):
    outputs = []
    for name in ("a", "b"):
        assert (
            main(
                [
                    "lab",
                    "training",
                    "--quick",
                    "--quiet",
                    "--seed",
                    "3",
                    "--out",
                    str(tmp_path / name),
                ]
            )
            == 0
        )
        outputs.append((tmp_path / name / "results.json").read_text())
    assert outputs[0] == outputs[1]
    assert (
        main(["lab", "training", "--quick", "--quiet", "--seed", "4", "--out", str(tmp_path / "c")])
        == 0
    )
    assert (tmp_path / "c" / "results.json").read_text() != outputs[0]
    timings = json.loads((tmp_path / "a" / "timings.json").read_text())
    assert any(key.endswith("seconds_mean") for key in timings)


def test_compare_on_user_csv(tmp_path, classification_csv):
    out = tmp_path / "cmp"
    code = main(
        [
            "lab",
            "compare",
            "--data",
            str(classification_csv),
            "--target",
            "kind",
            "--quick",
            "--quiet",
            "--optimizers",
            "sgd,adam",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    r = json.loads((out / "results.json").read_text())["results"]["compare"]
    assert r["task"] == "classification" and r["classes"] == ["big", "small"]
    assert r["features"] == ["width", "height", "colour=blue", "colour=green", "colour=red"]
    assert sorted(x["name"] for x in r["scored"]) == ["adam", "sgd"]
    rule = r["rule"]
    assert rule["mean"] > 0.7 and rule["low"] <= rule["mean"] and len(r["picks"]) == r["splits"]
    assert [b["name"] for b in r["baselines"]] == ["prior", "logistic"]
    page = (out / "index.html").read_text()
    assert "<title>lossopt lab compare: shapes.csv</title>" in page
    assert html.escape(f"with lr={r['final']['lr']:g}") in page and "torch.optim." in page


def test_compare_infers_regression(tmp_path):
    rng = np.random.default_rng(1)
    rows = [["a", "b", "price"]] + [
        [f"{a:.3f}", f"{b:.3f}", f"{3 * a - b + 0.1 * rng.normal():.4f}"]
        for a, b in rng.normal(size=(80, 2))
    ]
    path = _write_csv(tmp_path / "prices.csv", rows)
    out = tmp_path / "reg"
    args = ["--quick", "--quiet", "--optimizers", "adam", "--out", str(out)]
    assert main(["lab", "compare", "--data", str(path), "--target", "price", *args]) == 0
    r = json.loads((out / "results.json").read_text())["results"]["compare"]
    assert r["task"] == "regression" and r["metric_label"] == "RMSE"
    mean = next(b for b in r["baselines"] if b["name"] == "mean")
    assert r["rule"]["mean"] < 0.5 * mean["score"]["mean"]  # a linear target is easy
    assert [b["name"] for b in r["baselines"]] == ["mean", "ridge"]


def _bad(tmp_path, *args):
    out = tmp_path / "report"
    done = _lossopt("lab", *args, "--out", str(out), "--quick")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lossopt: error: "), done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() and not any(p.name.startswith(".") for p in tmp_path.iterdir())
    return lines[0]


def test_unknown_optimizer(tmp_path):
    assert "unknown optimizer 'lbfgs'" in _bad(tmp_path, "--optimizers", "adam,lbfgs")


def test_unknown_experiment(tmp_path):
    line = _bad(tmp_path, "dropout")
    assert "invalid choice: 'dropout'" in line and "compare" in line


def test_bad_numbers(tmp_path):
    assert "--lr must be positive" in _bad(tmp_path, "--lr", "-1")
    assert "--lr must be positive and finite, got inf" in _bad(tmp_path, "--lr", "inf")
    assert "--steps must be a whole number from 1" in _bad(tmp_path, "--steps", "0")
    assert "--seed must be a whole number from 0" in _bad(tmp_path, "--seed", "-1")
    assert "--seed must be a whole number from 0" in _bad(tmp_path, "entropy", "--seed", "-1")


def test_missing_file(tmp_path):
    assert "data file not found" in _bad(
        tmp_path, "compare", "--data", str(tmp_path / "no.csv"), "--target", "y"
    )


def test_compare_needs_its_options(tmp_path):
    assert "the following arguments are required: --data, --target" in _bad(tmp_path, "compare")
    assert "unrecognized arguments: --target y" in _bad(tmp_path, "entropy", "--target", "y")


def test_options_before_or_after_the_experiment(tmp_path):
    for i, args in enumerate(
        (["--seed", "2", "entropy", "--quick"], ["entropy", "--quick", "--seed", "2"])
    ):
        assert main(["lab", *args, "--quiet", "--out", str(tmp_path / str(i))]) == 0
    results = [json.loads((tmp_path / str(i) / "results.json").read_text()) for i in (0, 1)]
    assert results[0] == results[1] and results[0]["meta"]["seed"] == 2


def test_help_of_each_command(capsys):
    assert main(["lab", "--help"]) == 0
    text = capsys.readouterr().out
    assert "usage: lossopt lab" in text and "examples:" in text
    for name in EXPERIMENTS:
        assert name in text
    assert main(["lab", "compare", "--help"]) == 0
    text = capsys.readouterr().out
    assert "usage: lossopt lab compare" in text and "--data FILE" in text
    assert "--target COLUMN" in text and "method:" in text and "compare-report" in text


def test_version_and_bare_command(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"lossopt {lossopt.__version__}"
    assert main([]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("usage: lossopt") and "lossopt lab" in err[1]
    done = _lossopt()
    assert done.returncode == 2 and done.stderr.startswith("usage: lossopt")


def test_unreadable_file(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"\xff\xfe\x00\x81" * 10)
    assert "cannot read" in _bad(tmp_path, "compare", "--data", str(path), "--target", "y")


def test_missing_target_column(tmp_path, classification_csv):
    line = _bad(tmp_path, "compare", "--data", str(classification_csv), "--target", "price")
    assert "target column 'price' not in" in line and "width, height, colour, kind" in line


def test_column_neither_numeric_nor_categorical(tmp_path):
    rows = [["note", "x", "y"]] + [[f"free text {i}", i, i % 2] for i in range(60)]
    path = _write_csv(tmp_path / "notes.csv", rows)
    line = _bad(tmp_path, "compare", "--data", str(path), "--target", "y")
    assert "column 'note' is neither numeric nor categorical" in line


def test_empty_table(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    assert "is empty" in _bad(tmp_path, "compare", "--data", str(path), "--target", "y")
    path.write_text("a,y\n")
    assert "header but no rows" in _bad(tmp_path, "compare", "--data", str(path), "--target", "y")


def test_failed_run_keeps_the_previous_report(tmp_path):
    out = tmp_path / "report"
    assert main(["lab", "adaptive", "--quick", "--quiet", "--out", str(out)]) == 0
    before = (out / "results.json").read_text()
    assert (
        main(
            [
                "lab",
                "compare",
                "--data",
                str(tmp_path / "none.csv"),
                "--target",
                "y",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    assert (out / "results.json").read_text() == before


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running code."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


def test_help_does_not_import_the_plotting_stack():
    loaded = _modules_after(
        "from lossopt.__main__ import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['lab', '--help']) == 0"
    )
    assert "lossopt.lab.cli" in loaded  # the help was built by the lab's parser...
    assert not any(m == "matplotlib" or m.startswith("matplotlib.") for m in loaded)
    assert "lossopt.lab.plots" not in loaded  # ...without the figures


def test_imports_run_one_way():
    lab = "lossopt.lab."
    page = _modules_after("import lossopt.lab.page")
    assert not any(m.startswith(lab) and m != "lossopt.lab.page" for m in page)
    report = _modules_after("import lossopt.lab.report")
    assert "lossopt.lab.compare_report" not in report  # the pages do not import each other
    assert not any(m.startswith(lab + "experiments") for m in report)  # display only
    assert "matplotlib" not in report
    plots = _modules_after("import lossopt.lab.plots")
    assert not any(m.startswith(lab + "experiments") for m in plots)
    compare = _modules_after("import lossopt.lab.compare_report")
    assert "lossopt.lab.report" not in compare


def test_try_it_line_carries_the_runs_settings(tmp_path):
    from lossopt.lab import report
    from lossopt.lab.live.catalog import EXPLORABLES

    out = tmp_path / "r"
    flags = ["--optimizers", "sgd,adam", "--lr", "0.05", "--steps", "7", "--seed", "3"]
    assert main(["lab", "paths", "--quick", "--quiet", "--out", str(out), *flags]) == 0
    page = html.unescape((out / "index.html").read_text())
    command = "lossopt lab paths --seed 3 --optimizers sgd,adam --lr 0.05 --steps 7 --quick"
    assert f"<code class='cli'>{command}</code>" in page
    url = re.search(r"<a class='live' href='([^']+)'", page).group(1)
    assert url.startswith("http://127.0.0.1:8765/#paths?")
    values = EXPLORABLES["paths"].parse(dict(parse_qsl(url.partition("?")[2])))
    assert values["optimizers"] == ("sgd", "adam") and values["steps"] == 7
    assert values["lr_sgd"] == values["lr_adam"] == 0.05
    # A setting outside a live knob's range is left to the live lab's default.
    r = EXPERIMENTS["paths"](Config(quick=True, optimizers=("sgd",), lr=100.0, steps=3))
    knobs = {name: e.knobs for name, e in EXPLORABLES.items()}
    line = html.unescape(report.try_it("paths", r, {"seed": 0, "lr": 100.0}, knobs))
    assert "lr-sgd" not in line and "optimizers=sgd" in line and "--lr 100.0" in line
    # No live explorable for a section (a live lab without it): the command alone.
    line = report.try_it("training", None, {"seed": 0}, {})
    assert "href" not in line and "lossopt lab training --seed 0" in line
