"""Each experiment in quick mode: the data it returns shows what the lecture says."""

import math

import pytest

from lossopt.lab.config import Config
from lossopt.lab.experiments import EXPERIMENTS

QUICK = Config(quick=True)


def _run(name):
    return EXPERIMENTS[name](QUICK)


def test_l1_vs_l2():
    r = _run("l1-vs-l2")
    assert r.lecture == {"|3-1|": 2.0, "|11-1|": 10.0, "(3-1)^2": 4.0, "(11-1)^2": 100.0}
    fits = {f.loss: f for f in r.fits}
    assert fits["L1"].error < 0.5 and fits["Huber"].error < 0.5
    assert fits["L2 (MSE)"].error > 3 * max(fits["L1"].error, fits["Huber"].error)
    assert max(r.l2) == pytest.approx(9.0) and max(r.l1) == pytest.approx(3.0)


def test_entropy():
    r = _run("entropy")
    peak = r.coin_p[r.coin_entropy.index(max(r.coin_entropy))]
    assert peak == pytest.approx(0.5) and max(r.coin_entropy) == pytest.approx(math.log(2))
    assert r.coin_entropy[0] == 0.0 and r.coin_entropy[-1] == 0.0
    assert r.fair_die == pytest.approx(math.log(6)) and r.loaded_die < r.fair_die / 3
    assert r.cross_entropy[0] == pytest.approx(-math.log(r.softmax[0]))
    for eps, p in r.best_p_true.items():
        assert p == pytest.approx(1 - float(eps) + float(eps) / 10, abs=0.01)


def test_kl_asymmetry():
    r = _run("kl")
    forward, reverse = r.fits
    assert abs(forward.mean) < 0.2 and forward.std > 2.0  # covers both peaks
    assert abs(abs(reverse.mean) - 2.5) < 0.2 and reverse.std < 0.8  # locks onto one
    assert forward.forward_kl < reverse.forward_kl and reverse.reverse_kl < forward.reverse_kl
    assert reverse.reverse_kl == pytest.approx(math.log(2), abs=0.02)


def test_triplet():
    r = _run("triplet")
    assert r.knn_after > r.knn_before + 0.3
    assert r.loss[-1] < r.loss[0]
    assert len(r.before) == len(r.after) == len(r.labels) and len(r.after[0]) == 2


def test_optimizer_paths():
    results = _run("paths")
    assert [s.surface for s in results] == ["lecture", "rosenbrock", "saddle"]
    lecture = {p.optimizer: p for p in results[0].paths}
    assert set(lecture) == {"sgd", "momentum", "adagrad", "rmsprop", "adam"}
    assert all(p.steps_to_minimum is not None for p in lecture.values())
    saddle = {p.optimizer: p for p in results[2].paths}
    assert all(abs(abs(p.points[-1][1]) - 1) < 0.1 for p in saddle.values() if p.steps_to_minimum)


def test_learning_rate():
    r = _run("learning-rate")
    small, right, large = r.paths
    assert large.steps_to_minimum is None and large.values[-1] > 1e3 * large.values[0]
    assert small.values[-1] > 0.1 * small.values[0]  # crawled
    assert right.values[-1] < 1e-2 * right.values[0]
    assert r.range_test.lrs[0] < r.range_test.suggested_lr < r.range_test.lrs[-1]


def test_adaptive_steps():
    r = _run("adaptive")
    assert r.adagrad[-1] < r.adagrad[len(r.adagrad) // 4] < r.adagrad[0]
    assert r.rmsprop[-1] > 5 * r.adagrad[-1]
    assert r.adam_actual == pytest.approx(r.adam_corrected, rel=1e-9)
    assert r.adam_uncorrected[0] == pytest.approx(
        r.adam_corrected[0] * math.sqrt(1000) / 10, rel=1e-3
    )


def test_training():
    r = _run("training")
    assert {x.optimizer for x in r.ranking} == set(QUICK.optimizers)
    means = [x.metric_mean for x in r.ranking]
    assert means == sorted(means, reverse=True)
    assert r.ranking[0].metric_mean > 0.8
    assert len(r.runs) == 2 * len(QUICK.optimizers)


def test_config_narrows_runs():
    config = Config(quick=True, optimizers=("sgd", "adam"), lr=0.05, steps=7)
    results = EXPERIMENTS["paths"](config)
    for surface in results:
        assert [p.optimizer for p in surface.paths] == ["sgd", "adam"]
        assert all(p.lr == 0.05 and len(p.values) <= 7 for p in surface.paths)
