"""`lossopt lab compare`: the pick is what was scored (the whole rule, nested in
every split), the tie rule is stated, the rate choice holds, the baselines are
said as the numbers say, and the exported script reproduces the score."""

import html
import json
import math
import statistics
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats

import lossopt.lab.compare as cmp
from lossopt.__main__ import main
from lossopt.lab.compare import Interval, Search, Settings, _interval, compare, count_units, rule
from lossopt.lab.compare_report import TIE_RULE, _verdict
from lossopt.lab.data import read_table
from lossopt.lab.training import evaluate, fit, fit_rates

# a small budget: these tests check the method, not the networks' best scores
FAST = ["--quick", "--quiet", "--steps", "40"]


def _run(tmp_path, csv, target, *extra, export=True):
    out = tmp_path / f"out-{csv.stem}"
    script = tmp_path / f"train-{csv.stem}.py"
    args = ["lab", "compare", "--data", str(csv), "--target", target, "--out", str(out)]
    if export:
        args += ["--export", str(script)]
    assert main([*args, *FAST, *extra]) == 0
    results = json.loads((out / "results.json").read_text())["results"]["compare"]
    return results, (out / "index.html").read_text(), script


def _sklearn_csv(folder, name):
    from sklearn import datasets

    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame  # ships with scikit-learn
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


def _korean_csv(folder):
    """A UTF-8 table with Korean column names, text values and class labels."""
    rng = np.random.default_rng(0)
    regions = ["서울", "부산", "대구"]
    lines = ["나이,소득,지역,구매"]
    for i in range(150):
        age, income = rng.normal(40, 10), rng.normal(300, 80)
        region = regions[i % 3]
        buys = (income - 300) / 80 + (region == "서울") + rng.normal(0, 0.7) > 0.3
        lines.append(f"{age:.1f},{income:.0f},{region},{'예' if buys else '아니오'}")
    path = folder / "구매.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TABLES = {
    "wine": (lambda d: _sklearn_csv(d, "wine"), "target", ["--optimizers", "sgd,adam"]),
    "breast_cancer": (
        lambda d: _sklearn_csv(d, "breast_cancer"),
        "target",
        ["--optimizers", "adam,adamw"],
    ),
    "diabetes": (lambda d: _sklearn_csv(d, "diabetes"), "target", ["--optimizers", "sgd,adam"]),
    "korean": (_korean_csv, "구매", ["--optimizers", "momentum,adam"]),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Each table compared once for the module's tests, with its exported script."""
    found = {}

    def get(name):
        if name not in found:
            folder = tmp_path_factory.mktemp(name)
            make, target, extra = TABLES[name]
            found[name] = _run(folder, make(folder), target, *extra)
        return found[name]

    return get


def _rule_again(r, split):
    """The tie rule, recomputed from the searches of one split as the page states it."""
    searches = [s for s in r["searches"] if s["split"] == split]
    sign = 1 if r["higher_is_better"] else -1
    best = max(searches, key=lambda s: sign * s["score"])
    tied = [s for s in searches if sign * s["score"] >= sign * best["score"] - best["error"]]
    return min(tied, key=lambda s: (s["sensitivity"], -sign * s["score"]))


@pytest.mark.parametrize("name", list(TABLES))
def test_the_score_on_the_page_is_that_of_the_setup_it_tells_you_to_use(runs, name):
    r, page, script = runs(name)
    assert r["beats_trivial"]
    # the rule was applied as a whole inside every split, and its picks were scored
    assert len(r["picks"]) == r["splits"]
    for pick in r["picks"]:
        again = _rule_again(r, pick["split"])
        assert (pick["optimizer"], pick["lr"]) == (again["optimizer"], again["lr"])
        assert pick["test"] == again["test"]  # small table: the search's own network
    assert r["rule"]["mean"] == pytest.approx(statistics.fmean(p["test"] for p in r["picks"]))
    # the setup to use is the same rule on all rows, and the page says so with its score
    final = _rule_again(r, r["splits"])
    assert (r["final"]["optimizer"], r["final"]["lr"]) == (final["optimizer"], final["lr"])
    rule = r["rule"]
    assert f"{rule['mean']:.3f} (95% interval {rule['low']:.3f} to {rule['high']:.3f})" in page
    assert f"with lr={r['final']['lr']:g}" in page
    assert TIE_RULE.split(":")[0] in page and "one standard error" in page
    # the exported script trains that setup and prints the score the page gives for it
    printed = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=600
    ).stdout
    value = float(printed.strip().splitlines()[-1].rsplit(":", 1)[1])
    assert f"it scores {r['final']['test']:.3f}" in page
    assert value == pytest.approx(r["final"]["test"], rel=0.02, abs=0.01)
    assert f"LR = {r['final']['lr']!r}" in script.read_text()


@pytest.mark.parametrize(
    ("name", "metric", "why"),
    [
        ("wine", "accuracy", "about balanced"),
        ("breast_cancer", "balanced_accuracy", "imbalanced"),
        ("diabetes", "rmse", "default for regression"),
    ],
)
def test_the_default_metric_comes_from_the_table_and_is_said(runs, name, metric, why):
    r, page, _ = runs(name)
    assert r["metric"] == metric and r["metric_by_default"]
    assert why in page
    if r["class_counts"]:
        ratio = max(r["class_counts"]) / min(r["class_counts"])
        assert f"{ratio:.2f} times the rows of the smallest" in page


def test_a_pick_below_the_best_is_explained(runs):
    for name in TABLES:
        r, page, _ = runs(name)
        if r["final"]["optimizer"] != r["final"]["best"]:
            said = ("is used though", "within one standard error", "scored as high on")
            assert said[0] in page and said[1] in page or said[2] in page
            assert "a grid step from its rate" in page
        else:
            assert "has the best validation score" in page


def test_korean_table_reads_and_reports_in_utf8(runs):
    r, page, script = runs("korean")
    assert r["classes"] == ["아니오", "예"] and r["text"] == ["지역"]
    assert "구매" in page and "지역" in script.read_text(encoding="utf-8")


def test_interval_uses_the_corrected_resampled_variance():
    values, ratio = [0.8, 0.85, 0.9, 0.82, 0.88], 1 / 3
    i = _interval(values, ratio)
    s = statistics.stdev(values)
    half = stats.t.ppf(0.975, 4) * s * math.sqrt(1 / 5 + ratio)
    assert i.mean == pytest.approx(0.85)
    assert (i.low, i.high) == pytest.approx((0.85 - half, 0.85 + half))
    clipped = _interval([1.0, 1.0, 0.9], ratio, bounds=(0.0, 1.0))
    assert clipped.high == 1.0 and clipped.low < clipped.mean


def _search(name, score, error, sensitivity):
    return Search(
        name, 0, [0.1], [score], [error], [0.1], [0], 0.1, score, error, sensitivity, False, 0, 1
    )


def test_rule_picks_the_least_sensitive_of_those_within_one_standard_error():
    searches = [
        _search("adam", 0.90, 0.02, 0.05),
        _search("sgd", 0.89, 0.01, 0.00),  # within 0.02 of the best, flat: picked
        _search("rmsprop", 0.87, 0.01, 0.00),  # flat too, but beyond one standard error
    ]
    pick, tied, best = rule(searches, higher=True)
    assert best.optimizer == "adam" and pick.optimizer == "sgd"
    assert [s.optimizer for s in tied] == ["adam", "sgd"]
    # lower is better (an RMSE): the same rule, the other way
    errors = [_search("adam", 1.0, 0.1, 0.2), _search("sgd", 1.05, 0.1, 0.1)]
    assert rule(errors, higher=False)[0].optimizer == "sgd"
    # equal falls: the higher score
    even = [_search("adam", 0.90, 0.02, 0.0), _search("sgd", 0.89, 0.01, 0.0)]
    assert rule(even, higher=True)[0].optimizer == "adam"


@pytest.mark.parametrize(
    ("difference", "said"),
    [
        (Interval(0.02, 0.01, 0.03), "better than the rule beyond the noise"),
        (Interval(0.01, -0.01, 0.03), "better on average than the rule, within the noise"),
        (Interval(-0.01, -0.03, 0.01), "as good as the rule within the noise, worse on average"),
        (Interval(-0.02, -0.03, -0.01), "worse than the rule beyond the noise"),
    ],
)
def test_baselines_are_said_as_the_numbers_say(difference, said):
    assert _verdict(difference, against_rule=True) == said


def _fake_search(monkeypatch, tmp_path, value_of_rate, widen=2, kfold=True):
    """_search with training replaced: each rate's validation score is value_of_rate(lr)."""
    table = read_table(_sklearn_csv(tmp_path, "wine"), "target")
    seen = []

    class Net:
        def __init__(self, lr):
            self.lr = lr

    def fake_fit_rates(data, spec, lrs, **_):
        seen.append(list(lrs))
        return [(Net(lr), cmp.Run(spec.name, lr, 0, [1.0], [1.0], [0.5], 0.0, 0)) for lr in lrs]

    monkeypatch.setattr(cmp, "fit_rates", fake_fit_rates)
    monkeypatch.setattr(cmp, "predict", lambda net, x, *_: np.full(len(x), net.lr))
    monkeypatch.setattr(cmp, "score", lambda metric, y, output, classes: value_of_rate(output[0]))
    plan = cmp.Plan(3, 3, kfold, 130, False, 64, 5, 2, widen, 1)
    job = cmp._Job("accuracy", 0, ("adam",), None, None, "cpu", 0.01, plan)
    rows = np.arange(table.rows)
    return cmp._search(table, job, "adam", 0, rows[:130], rows[130:]), seen


def test_the_grid_widens_while_the_pick_is_at_its_edge(monkeypatch, tmp_path):
    from lossopt.lab.optimizers import OPTIMIZERS

    sweep = sorted(OPTIMIZERS["adam"].sweep)
    found, seen = _fake_search(monkeypatch, tmp_path, lambda lr: lr)  # larger is better
    assert seen[0] == sweep and len(seen) == 2 * 3  # the sweep, then both steps, in 3 folds
    assert seen[3] == [pytest.approx(sweep[-1] * 3**i, rel=0.02) for i in (1, 2)]
    assert found.lr == max(found.rates) and found.at_edge
    # a peak inside the grid: no widening, the peak chosen
    middle = sweep[1]
    found, seen = _fake_search(monkeypatch, tmp_path, lambda lr: -abs(math.log(lr / middle)))
    assert found.lr == middle and not found.at_edge and len(seen) == 3


def test_a_plateau_of_perfect_scores_does_not_reward_the_largest_rate(monkeypatch, tmp_path):
    # a validation score that saturates (as a loss reaching 0 would) from the middle rate up
    found, _ = _fake_search(monkeypatch, tmp_path, lambda lr: min(1.0, lr / 0.003), widen=2)
    assert found.scores[-1] == found.scores[-2] == 1.0  # the plateau reaches the edge
    assert found.lr == 0.003  # its middle is chosen, not its largest rate


def test_of_two_middles_the_plateau_gives_the_higher_scoring_rate():
    rates = [0.001, 0.003, 0.01, 0.03]
    # the best and the rate below it tie within the error: the best, not the edge
    assert cmp._plateau_middle(rates[:3], [0.969, 0.972, 0.962], 0.008) == 0.003
    assert cmp._plateau_middle(rates[:3], [0.972, 0.969, 0.962], 0.008) == 0.001
    # equal scores: the lower rate; an odd plateau: its middle, whatever the scores
    assert cmp._plateau_middle(rates, [0.5, 0.9, 0.9, 0.5], 0.01) == 0.003
    assert cmp._plateau_middle(rates, [0.89, 0.9, 0.88, 0.5], 0.05) == 0.003
    assert cmp._plateau_middle(rates, [0.88, 0.89, 0.9, 0.5], 0.05) == 0.003
    # a plateau of four: the higher-scoring of its two middles
    assert cmp._plateau_middle(rates, [0.9, 0.89, 0.895, 0.9], 0.02) == 0.01


def test_early_stopping_keeps_the_best_weights(tmp_path):
    table = read_table(_sklearn_csv(tmp_path, "wine"), "target")
    data = table.split(np.arange(0, 178, 2), np.arange(1, 178, 2))
    model, run = fit(data, "adam", 0.05, epochs=200, seed=0, patience=3)
    assert run.best_epoch is not None
    assert len(run.val_loss) == run.best_epoch + 1 + 3 < 200  # stopped three epochs after
    assert min(run.val_loss) == run.val_loss[run.best_epoch]
    loss, _ = evaluate(model, data.x_val, data.y_val, "classification")
    assert loss == pytest.approx(run.val_loss[run.best_epoch], rel=1e-6)
    with pytest.raises(ValueError, match="patience must be None or at least 1, got 0"):
        fit(data, "adam", 0.05, epochs=2, seed=0, patience=0)


def _small_net(inputs, outputs):
    return torch.nn.Sequential(
        torch.nn.Linear(inputs, 8), torch.nn.Tanh(), torch.nn.Linear(8, outputs)
    )


@pytest.mark.parametrize("model", [None, _small_net])
def test_fit_rates_is_fit_at_each_rate(tmp_path, model):
    table = read_table(_sklearn_csv(tmp_path, "wine"), "target")
    rows = np.random.default_rng(0).permutation(table.rows)
    data = table.split(rows[:120], rows[120:])
    extra = {} if model is None else {"model": model}
    specs = cmp.choices(weight_decay=0.1)
    for name in ("sgd", "momentum", "adagrad", "rmsprop", "adam", "adamw"):
        lrs = [0.001, 0.01]
        together = fit_rates(data, specs[name], lrs, epochs=8, seed=3, patience=2, **extra)
        for lr, (net, run) in zip(lrs, together, strict=True):
            alone_net, alone = fit(data, specs[name], lr, epochs=8, seed=3, patience=2, **extra)
            assert run.lr == lr and run.best_epoch == alone.best_epoch
            assert run.val_loss == pytest.approx(alone.val_loss, rel=1e-4)
            assert run.train_loss == pytest.approx(alone.train_loss, rel=1e-4)
            for a, b in zip(net.parameters(), alone_net.parameters(), strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_adamw_decays_the_weights(tmp_path):
    table = read_table(_sklearn_csv(tmp_path, "wine"), "target")
    data = table.split(np.arange(0, 178, 2), np.arange(1, 178, 2))
    norms = []
    for decay in (0.0, 0.5):
        spec = cmp.choices(weight_decay=decay)["adamw"]
        net, _ = fit(data, spec, 0.01, epochs=10, seed=0)
        norms.append(sum(float(p.detach().norm()) for p in net.parameters()))
    assert norms[1] < norms[0]


def test_score_is_scikit_learns_metric():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    p = rng.dirichlet(np.ones(3), 60)
    predicted = p.argmax(axis=1)
    assert cmp.score("accuracy", y, p, 3) == pytest.approx(np.mean(predicted == y))
    recall = [np.mean(predicted[y == c] == c) for c in range(3)]
    assert cmp.score("balanced_accuracy", y, p, 3) == pytest.approx(np.mean(recall))
    picked = p[np.arange(60), y]
    assert cmp.score("log_loss", y, p, 3) == pytest.approx(-np.mean(np.log(picked)))
    values = rng.normal(size=40)
    guess = values + rng.normal(size=40)
    assert cmp.score("rmse", values, guess, 0) == pytest.approx(
        np.sqrt(np.mean((guess - values) ** 2))
    )
    assert cmp.score("mae", values, guess, 0) == pytest.approx(np.mean(np.abs(guess - values)))
    r2 = 1 - np.sum((guess - values) ** 2) / np.sum((values - values.mean()) ** 2)
    assert cmp.score("r2", values, guess, 0) == pytest.approx(r2)
    assert math.isnan(cmp.score("accuracy", y, np.full_like(p, np.nan), 3))  # diverged


def _noise_csv(folder, rows=80, columns=40):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, columns))
    y = rng.permutation(np.arange(rows) % 2)
    header = ",".join(f"x{i}" for i in range(columns)) + ",y"
    body = [",".join(f"{v:.3f}" for v in r) + f",{c}" for r, c in zip(x, y, strict=True)]
    path = folder / "noise.csv"
    path.write_text("\n".join([header, *body]) + "\n")
    return path


def test_chance_level_gets_a_warning_no_recommendation_and_no_script(tmp_path, capsys):
    path = _noise_csv(tmp_path)
    r, page, script = _run(tmp_path, path, "y", "--optimizers", "adam", "--lr", "0.01")
    assert not r["beats_trivial"]
    assert "No recommendation" in page and "The setup to paste" not in page
    assert "do not beat the class prior (majority class) baseline" in capsys.readouterr().err
    assert not script.exists()


def test_epoch_cap_hits_are_counted_and_warned(tmp_path, capsys):
    path = _sklearn_csv(tmp_path, "wine")
    r, page, _ = _run(
        tmp_path,
        path,
        "target",
        "--optimizers",
        "adam",
        "--lr",
        "0.001",
        "--steps",
        "3",
        export=False,
    )
    capped = sum(s["capped"] for s in r["scored"])
    assert capped > 0
    said = f"{capped} of {sum(s['runs'] for s in r['scored'])} runs at the chosen rates reached"
    assert said in page and said in capsys.readouterr().err


def test_a_given_rate_is_used_in_every_split(tmp_path):
    path = _sklearn_csv(tmp_path, "wine")
    r, _, _ = _run(tmp_path, path, "target", "--lr", "0.01", "--optimizers", "adam", export=False)
    assert {s["lr"] for s in r["searches"]} == {0.01}
    assert all(s["rates"] == [0.01] for s in r["searches"])


def test_large_tables_choose_the_rate_on_a_subsample_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(cmp, "SEARCH_ROWS", 120)  # as if the table were large
    monkeypatch.setattr(cmp, "KFOLD_ROWS", 50)
    table = read_table(_sklearn_csv(tmp_path, "breast_cancer"), "target")
    settings = Settings(quick=True, optimizers=("adam",), epochs=15, jobs=1)
    seen = []
    r = compare(table, settings, seen.append)
    assert len(seen) == count_units(settings, table.rows)
    assert r.subsampled and not r.kfold and r.search_rows == 60
    assert all(pick.epochs > 0 for pick in r.picks)  # each pick trained again on all the rows
    from lossopt.lab.compare_report import _describe

    assert "a random subsample of 60 of the" in _describe(r)


def test_parallel_processes_give_the_same_results(tmp_path):
    table = read_table(_sklearn_csv(tmp_path, "wine"), "target")
    runs = []
    for jobs in (1, 2):
        settings = Settings(quick=True, optimizers=("sgd",), epochs=4, jobs=jobs)
        r = compare(table, settings)
        runs.append(([(p.optimizer, p.lr, p.test) for p in r.picks], r.rule, r.final.test))
    assert runs[0] == runs[1]


def test_same_seed_same_results(tmp_path):
    path = _sklearn_csv(tmp_path, "wine")
    outputs = []
    for name in ("a", "b", "c"):
        out = tmp_path / name
        seed = "1" if name == "c" else "0"
        args = [*FAST, "--optimizers", "sgd", "--seed", seed, "--steps", "6"]
        argv = ["lab", "compare", "--data", str(path), "--target", "target", "--out", str(out)]
        assert main([*argv, *args]) == 0
        outputs.append((out / "results.json").read_text())
    assert outputs[0] == outputs[1]
    assert outputs[2] != outputs[0]
    assert "seconds" not in outputs[0]  # wall-clock times live in timings.json


MODEL = """
import torch


def small(inputs, outputs):
    layers = [torch.nn.Linear(inputs, 16), torch.nn.Tanh(), torch.nn.Linear(16, outputs)]
    return torch.nn.Sequential(*layers)


def wrong_shape(inputs, outputs):
    return torch.nn.Linear(inputs, outputs + 1)


def not_a_module(inputs, outputs):
    return 3


def refuses(inputs, outputs):
    raise RuntimeError("no such layer")


def fails_forward(inputs, outputs):
    return torch.nn.Linear(inputs + 1, outputs)
"""


def test_the_users_own_network(tmp_path):
    model = tmp_path / "net.py"
    model.write_text(MODEL)
    path = _sklearn_csv(tmp_path, "wine")
    r, page, script = _run(
        tmp_path,
        path,
        "target",
        "--optimizers",
        "adam",
        "--lr",
        "0.01",
        "--model",
        f"{model}:small",
    )
    assert r["model"] == f"{model}:small"
    assert r["parameters"] == 13 * 16 + 16 + 16 * 3 + 3
    assert f"the network of {model}:small" in page and "small(13, 3)" in page
    printed = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=600
    ).stdout
    value = float(printed.strip().splitlines()[-1].rsplit(":", 1)[1])
    assert value == pytest.approx(r["final"]["test"], rel=0.02, abs=0.01)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_device(tmp_path):
    path = _sklearn_csv(tmp_path, "wine")
    r, page, _ = _run(
        tmp_path,
        path,
        "target",
        "--optimizers",
        "adam",
        "--lr",
        "0.01",
        "--device",
        "cuda",
        export=False,
    )
    assert r["device"] == "cuda" and r["jobs"] == 1 and "Device: cuda" in page


def _bad(tmp_path, capsys, *extra, data=None, target="target"):
    data = data or _sklearn_csv(tmp_path, "wine")
    out, script = tmp_path / "out", tmp_path / "train.py"
    argv = ["lab", "compare", "--data", str(data), "--target", target, "--out", str(out)]
    code = main([*argv, "--quiet", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("lossopt: error: "), err
    assert not out.exists()
    assert not script.exists() or "--export" in extra and script.read_text() == "mine\n"
    return err[0]


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--metric", "precision"], "unknown metric 'precision'; choose from accuracy"),
        (["--metric", "rmse"], "--metric rmse is for regression; for classification choose"),
        (["--device", "tpu"], "--device must be auto, cpu or cuda, got 'tpu'"),
        (["--weight-decay", "-1"], "--weight-decay must be 0 or more and finite, got -1"),
        (["--weight-decay", "nan"], "--weight-decay must be 0 or more and finite, got nan"),
        (["--weight-decay", "x"], "--weight-decay must be a number, got 'x'"),
        (["--jobs", "0"], "--jobs must be a whole number from 1 to 256, got '0'"),
        (["--jobs", "257"], "--jobs must be a whole number from 1 to 256, got '257'"),
        (["--jobs", "two"], "--jobs must be a whole number from 1 to 256, got 'two'"),
        (["--weight-decay", "inf"], "--weight-decay must be 0 or more and finite, got inf"),
        (["--optimizers", "adamx"], "unknown optimizer 'adamx'; choose from sgd, momentum"),
        (["--export", "train.txt"], "--export must name a .py file, got 'train.txt'"),
        (["--export", "/no/such/folder/t.py"], "the folder /no/such/folder does not exist"),
        (["--model", "net.py"], "--model must be path.py:function, got 'net.py'"),
        (["--model", "missing.py:f"], "missing.py is not a Python file"),
    ],
)
def test_bad_values_are_refused_before_anything_is_written(tmp_path, capsys, extra, said):
    assert said in _bad(tmp_path, capsys, *extra)


def test_metric_for_regression_is_checked_against_the_task(tmp_path, capsys):
    data = _sklearn_csv(tmp_path, "diabetes")
    line = _bad(tmp_path, capsys, "--metric", "f1", data=data)
    assert "--metric f1 is for classification; for regression choose from rmse, mae, r2" in line


def test_an_export_naming_a_folder_is_refused(tmp_path, capsys):
    (tmp_path / "scripts.py").mkdir()
    line = _bad(tmp_path, capsys, "--export", str(tmp_path / "scripts.py"))
    assert f"--export {tmp_path / 'scripts.py'} is a folder; name a new .py file" in line
    assert not any((tmp_path / "scripts.py").iterdir())


def test_an_export_over_a_file_lossopt_did_not_write_is_refused(tmp_path, capsys):
    (tmp_path / "train.py").write_text("mine\n")
    line = _bad(tmp_path, capsys, "--export", str(tmp_path / "train.py"))
    assert "exists and lossopt did not write it" in line


@pytest.mark.parametrize(
    ("function", "said"),
    [
        ("nothing", "has no function 'nothing'"),
        ("wrong_shape", "gave shape (2, 4), expected (2, 3)"),
        ("not_a_module", "must return a torch.nn.Module, got int"),
        ("refuses", "calling it with (13, 3) failed: RuntimeError: no such layer"),
        ("fails_forward", "a batch of shape (2, 13) failed: RuntimeError"),
    ],
)
def test_bad_models_are_refused(tmp_path, capsys, function, said):
    model = tmp_path / "net.py"
    model.write_text(MODEL)
    assert said in _bad(tmp_path, capsys, "--model", f"{model}:{function}")


def test_a_model_file_that_fails_to_import_is_refused(tmp_path, capsys):
    model = tmp_path / "broken.py"
    model.write_text("import torch\nraise ImportError('needs a package you lack')\n")
    line = _bad(tmp_path, capsys, "--model", f"{model}:small")
    assert f"importing {model} failed: ImportError: needs a package you lack" in line


def test_metric_weight_decay_and_jobs_as_asked_reach_the_page_and_the_script(tmp_path):
    path = _sklearn_csv(tmp_path, "breast_cancer")
    asked = ["--optimizers", "adamw", "--lr", "0.003", "--weight-decay", "0.1"]
    r, page, script = _run(
        tmp_path, path, "target", *asked, "--metric", "f1", "--jobs", "1", "--device", "cpu"
    )
    assert (r["metric"], r["metric_by_default"], r["weight_decay"]) == ("f1", False, 0.1)
    assert (r["jobs"], r["device"]) == (1, "cpu")
    page = html.unescape(page)
    assert "Metric: F1 (scikit-learn's f1_score, of class '1'), as asked with --metric" in page
    assert "AdamW with lr=0.003 and weight decay 0.1" in page
    assert "weight_decay=0.1" in page and "Device: cpu; 1 process." in page
    text = script.read_text()
    assert "WEIGHT_DECAY = 0.1\n" in text and "METRIC = 'f1'\n" in text
    printed = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True, timeout=600
    ).stdout
    assert printed.strip().splitlines()[-1].startswith("f1 on the first split's test rows: ")
    value = float(printed.strip().splitlines()[-1].rsplit(":", 1)[1])
    assert value == pytest.approx(r["final"]["test"], rel=0.02, abs=0.01)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_cuda_without_a_gpu_is_refused(tmp_path, capsys):
    assert "no CUDA device is available" in _bad(tmp_path, capsys, "--device", "cuda")


def test_the_page_says_why_when_the_pick_is_not_the_best():
    from types import SimpleNamespace

    from lossopt.lab.compare_report import _why_pick

    def page(scores):
        searches = [
            _search("adam", scores[0], 0.02, 0.0),
            _search("sgd", scores[1], 0.02, 0.03),
            _search("rmsprop", scores[2], 0.02, 0.01),
        ]
        for s in searches:
            s.split = 1
        final = SimpleNamespace(optimizer="adam", best="sgd", tied=["adam", "sgd", "rmsprop"])
        r = SimpleNamespace(searches=searches, splits=1, final=final, higher_is_better=True)
        return _why_pick(r)

    lower = page([0.88, 0.90, 0.89])
    assert lower.startswith("Adam is used though SGD scored higher on validation (0.880 against")
    assert "the lowest of the 3 tied" in lower and "within one standard error (0.020)" in lower
    assert "falls by 0.000 a grid step from its rate, against 0.030 for SGD" in lower
    same = page([0.90, 0.90, 0.89])
    assert "SGD scored as high on validation (0.900)" in same and "lowest" not in same
