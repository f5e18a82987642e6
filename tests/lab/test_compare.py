"""`lossopt lab compare`: rates chosen inside each split, scores on unseen rows,
intervals, ties, baselines, and a warning at chance level."""

import json
import math
import statistics

import numpy as np
import pytest
import torch
from scipy import stats

from lossopt.__main__ import main
from lossopt.lab.compare import _interval, compare, count_units, plan
from lossopt.lab.config import Config
from lossopt.lab.data import read_table
from lossopt.lab.training import evaluate, fit


def _run_compare(tmp_path, csv, target, *extra):
    out = tmp_path / f"out-{csv.stem}"
    args = ["lab", "compare", "--data", str(csv), "--target", target, "--out", str(out)]
    assert main([*args, "--quick", "--quiet", *extra]) == 0
    return json.loads((out / "results.json").read_text())["results"]["compare"], out


def test_interval_uses_the_corrected_resampled_variance():
    values, ratio = [0.8, 0.85, 0.9, 0.82, 0.88], 1 / 3
    i = _interval(values, ratio)
    s = statistics.stdev(values)
    half = stats.t.ppf(0.975, 4) * s * math.sqrt(1 / 5 + ratio)
    assert i.mean == pytest.approx(0.85)
    assert (i.low, i.high) == pytest.approx((0.85 - half, 0.85 + half))
    clipped = _interval([1.0, 1.0, 0.9], ratio, bounds=(0.0, 1.0))
    assert clipped.high == 1.0 and clipped.low < clipped.mean


def test_early_stopping_keeps_the_best_weights(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    y = (x[:, 0] + 0.5 * rng.normal(size=120) > 0).astype(int)
    path = tmp_path / "t.csv"
    lines = ["a,b,c,d,e,y"] + [
        ",".join(f"{v:.4f}" for v in r) + f",{c}" for r, c in zip(x, y, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    table = read_table(path, "y")
    data = table.split(np.arange(80), np.arange(80, 120))
    model, run = fit(data, "adam", 0.05, epochs=200, seed=0, patience=3)
    assert run.best_epoch is not None
    assert len(run.val_loss) == run.best_epoch + 1 + 3 < 200  # stopped three epochs after
    assert min(run.val_loss) == run.val_loss[run.best_epoch]
    loss, _ = evaluate(model, data.x_val, data.y_val, "classification")
    assert loss == pytest.approx(run.val_loss[run.best_epoch], rel=1e-6)
    with pytest.raises(ValueError, match="patience must be None or at least 1, got 0"):
        fit(data, "adam", 0.05, epochs=2, seed=0, patience=0)


def test_chance_level_gets_a_warning_and_no_recommendation(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows, columns = 100, 500
    x = rng.normal(size=(rows, columns))
    y = rng.permutation(np.arange(rows) % 2)
    path = tmp_path / "noise.csv"
    header = ",".join(f"x{i}" for i in range(columns)) + ",y"
    body = [",".join(f"{v:.3f}" for v in r) + f",{c}" for r, c in zip(x, y, strict=True)]
    path.write_text("\n".join([header, *body]) + "\n")
    r, out = _run_compare(tmp_path, path, "y", "--optimizers", "sgd,adam")
    assert r["recommendation"].startswith("No recommendation")
    assert any("no optimizer beats the majority class baseline" in w for w in r["warnings"])
    assert "warning: no optimizer beats the majority class" in capsys.readouterr().err
    page = (out / "index.html").read_text()
    assert "Warning: no optimizer beats" in page
    assert r["code"] == "" and "The setup to paste" not in page  # nothing to recommend


def _sklearn_csv(tmp_path, name):
    from sklearn import datasets

    frame = getattr(datasets, f"load_{name}")(as_frame=True).frame  # ships with scikit-learn
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("name", ["wine", "breast_cancer", "diabetes"])
def test_recommendation_with_intervals_on_scikit_learn_tables(tmp_path, name):
    r, out = _run_compare(tmp_path, _sklearn_csv(tmp_path, name), "target")
    assert r["task"] == ("regression" if name == "diabetes" else "classification")
    assert not r["recommendation"].startswith("No recommendation")
    assert "95% interval" in r["recommendation"]
    for s in r["optimizers"]:
        assert s["score"]["low"] <= s["score"]["mean"] <= s["score"]["high"]
        assert len(s["test"]) == len(s["chosen_lr"]) == plan(Config(quick=True)).splits
    best = r["optimizers"][0]
    # the network beats the trivial baseline beyond the noise
    assert r["baselines"][0]["versus_best"]["low"] > 0
    if len(r["tied"]) > 1:
        assert r["recommendation"].startswith("No meaningful difference between")
    else:
        assert "beyond the noise" in r["recommendation"]
    assert best["name"] in r["tied"]
    if name == "wine":  # nearly separable: every optimizer reaches about the same accuracy
        assert len(r["tied"]) > 1 and "is fine" in r["recommendation"]
    # the code to paste runs and builds the recommended setup
    scope = {}
    exec(r["code"], scope)
    inputs = len(r["features"])
    outputs = len(r["classes"]) or 1
    assert scope["model"](torch.zeros(2, inputs)).shape == (2, outputs)
    assert isinstance(scope["optimizer"], torch.optim.Optimizer)
    assert sorted(p.name for p in out.glob("*.png")) == ["compare.png"]


def test_a_given_rate_is_used_in_every_split(tmp_path):
    path = _sklearn_csv(tmp_path, "wine")
    r, _ = _run_compare(tmp_path, path, "target", "--lr", "0.01", "--optimizers", "adam")
    (adam,) = r["optimizers"]
    assert adam["chosen_lr"] == [0.01] * len(adam["test"])
    assert {t["lr"] for t in r["trials"]} == {0.01}


def test_progress_counts_every_step(tmp_path):
    path = _sklearn_csv(tmp_path, "wine")
    table = read_table(path, "target")
    config = Config(quick=True, optimizers=("adam",), steps=2)
    seen = []
    compare(table, config, seen.append)
    assert len(seen) == count_units(config)


def test_fit_rates_is_fit_at_each_rate(tmp_path):
    from lossopt.lab.training import fit_rates

    table = read_table(_sklearn_csv(tmp_path, "wine"), "target")
    rows = np.random.default_rng(0).permutation(table.rows)
    data = table.split(rows[:120], rows[120:])
    for name in ("sgd", "momentum", "adagrad", "rmsprop", "adam"):
        lrs = [0.001, 0.01]
        together = fit_rates(data, name, lrs, epochs=8, seed=3, patience=2)
        for lr, (model, run) in zip(lrs, together, strict=True):
            alone_model, alone = fit(data, name, lr, epochs=8, seed=3, patience=2)
            assert run.lr == lr and run.best_epoch == alone.best_epoch
            assert run.val_loss == pytest.approx(alone.val_loss, rel=1e-4)
            assert run.train_loss == pytest.approx(alone.train_loss, rel=1e-4)
            for a, b in zip(model.parameters(), alone_model.parameters(), strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


class _FakeRun:
    def __init__(self, lr, loss):
        self.lr, self.val_loss, self.val_metric, self.best_epoch = lr, [loss], [0.5], 0


def _search_with(monkeypatch, tmp_path, loss_of_rate, widen):
    import lossopt.lab.compare as cmp

    table = read_table(_sklearn_csv(tmp_path, "wine"), "target")
    seen = []

    def fake_fit_rates(data, name, lrs, **_):
        seen.append((data.x_train.shape[0], data.x_val.shape[0], list(lrs)))
        model = torch.nn.Sequential(torch.nn.Linear(13, 3))
        return [(model, _FakeRun(lr, loss_of_rate(lr))) for lr in lrs]

    monkeypatch.setattr(cmp, "fit_rates", fake_fit_rates)
    rows = np.arange(table.rows)
    inner, test = (rows[:100], rows[100:130]), rows[130:]
    settings = cmp.Plan(splits=1, max_epochs=5, patience=2, span=0, widen=widen)
    found = cmp._search(table, "adam", inner, test, Config(), settings, 0, 0)
    return found, seen


def test_the_grid_widens_while_the_best_rate_is_at_its_edge(monkeypatch, tmp_path):
    from lossopt.lab.optimizers import OPTIMIZERS

    sweep = sorted(OPTIMIZERS["adam"].sweep)
    (trials, _, _, lr, at_edge), seen = _search_with(
        monkeypatch, tmp_path, lambda lr: 1 / lr, widen=2
    )
    assert seen[0][2] == sweep and len(seen) == 2  # one run for the sweep, one for both steps
    assert seen[1][2] == [pytest.approx(sweep[-1] * 3**i, rel=0.02) for i in (1, 2)]
    assert lr == max(t.lr for t in trials) and at_edge
    # trained on the inner part, validated on the other: never the 48 test rows
    assert all(train == 100 and val == 30 for train, val, _ in seen)
    middle = sweep[1]
    (_, _, _, lr, at_edge), seen = _search_with(
        monkeypatch, tmp_path, lambda lr: abs(math.log(lr / middle)), widen=2
    )
    assert lr == middle and not at_edge and len(seen) == 1


def test_same_seed_same_results(tmp_path):
    path = _sklearn_csv(tmp_path, "wine")
    outputs = []
    for name in ("a", "b", "c"):
        out = tmp_path / name
        seed = "1" if name == "c" else "0"
        args = ["--quick", "--quiet", "--optimizers", "sgd,adam", "--seed", seed, "--steps", "6"]
        argv = ["lab", "compare", "--data", str(path), "--target", "target", "--out", str(out)]
        assert main([*argv, *args]) == 0
        outputs.append((out / "results.json").read_text())
    assert outputs[0] == outputs[1]
    assert outputs[2] != outputs[0]
    assert "seconds" not in outputs[0]  # wall-clock times live in timings.json
