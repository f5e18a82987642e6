"""One declaration per knob: parsing, argparse flags, query strings and the live URL."""

import argparse
import math

import pytest

from lossopt.lab.knobs import Knob, from_namespace, live_url, parse_all, to_flags, to_query

LR = Knob("lr", "learning rate", 0.1, lo=1e-4, hi=10.0, scale="log", label="η")
STEPS = Knob("steps", "steps", 30, kind="int", lo=1, hi=500)
SURFACE = Knob("surface", "surface", "bowl", kind="choice", choices=("bowl", "rosenbrock"))
OPTS = Knob(
    "optimizers", "to overlay", "sgd,adam", kind="subset", choices=("sgd", "adam", "adagrad")
)
BIAS = Knob("bias-correction", "Adam's bias correction", True, kind="bool")
KNOBS = [LR, STEPS, SURFACE, OPTS, BIAS]


def test_parse_reads_text_and_python_values():
    assert LR.parse("0.5") == 0.5 and LR.parse(2) == 2.0
    assert (
        STEPS.parse("40") == 40 and STEPS.parse(40.0) == 40 and isinstance(STEPS.parse("4e1"), int)
    )
    assert SURFACE.parse(" Rosenbrock ") == "rosenbrock"
    assert OPTS.parse("adam, sgd,adam") == ("adam", "sgd")
    assert OPTS.parse(["adagrad"]) == ("adagrad",)
    assert BIAS.parse("false") is False and BIAS.parse("on") is True and BIAS.parse(False) is False


@pytest.mark.parametrize(
    "knob, value",
    [
        (LR, "nan"),
        (LR, "inf"),
        (LR, "-0.1"),
        (LR, "11"),
        (LR, "fast"),
        (LR, ""),
        (LR, True),
        (LR, None),
        (STEPS, "2.5"),
        (STEPS, "0"),
        (STEPS, "501"),
        (SURFACE, "saddle"),
        (OPTS, "sgd,lbfgs"),
        (OPTS, ","),
        (BIAS, "maybe"),
    ],
)
def test_bad_values_name_the_knob_and_the_value(knob, value):
    with pytest.raises(ValueError) as error:
        knob.parse(value)
    message = str(error.value)
    assert knob.name in message
    assert (repr(value) in message) or ("lbfgs" in message)


def test_a_declaration_is_checked():
    with pytest.raises(ValueError, match="lo < hi"):
        Knob("x", "x", 1.0, lo=2.0, hi=1.0)
    with pytest.raises(ValueError, match="log scale"):
        Knob("x", "x", 1.0, lo=0.0, hi=2.0, scale="log")
    with pytest.raises(ValueError, match="x must be"):
        Knob("x", "x", 5.0, lo=0.0, hi=2.0)  # the default out of its own range
    with pytest.raises(ValueError, match="lowercase"):
        Knob("Bad_Name", "x", 1.0, lo=0.0, hi=2.0)


def test_format_reads_back_as_the_same_value():
    for knob, value in [
        (LR, 1e-3),
        (LR, 0.1),
        (LR, 3.0),
        (STEPS, 7),
        (OPTS, "adam,sgd"),
        (BIAS, 0),
    ]:
        assert knob.parse(knob.format(value)) == knob.parse(value)
    assert LR.format(0.1) == "0.1" and LR.format(3.0) == "3" and LR.format(1e-4) == "0.0001"


def test_argparse_flags_come_from_the_knobs():
    parser = argparse.ArgumentParser(exit_on_error=False)
    for knob in KNOBS:
        knob.add_to_argparse(parser)
    args = parser.parse_args(["--lr", "0.5", "--optimizers", "adagrad", "--no-bias-correction"])
    assert from_namespace(KNOBS, args) == {
        "lr": 0.5,
        "steps": 30,
        "surface": "bowl",
        "optimizers": ("adagrad",),
        "bias_correction": False,
    }
    help_text = parser.format_help()
    assert "--bias-correction" in help_text and "0.0001 to 10, log scale" in help_text
    with pytest.raises(argparse.ArgumentError, match="lr must be"):
        parser.parse_args(["--lr", "nan"])


def test_parse_all_fills_defaults_and_refuses_unknown_names():
    values = parse_all(KNOBS, {"lr": "0.2", "bias-correction": "false"})
    assert values["lr"] == 0.2 and values["steps"] == 30 and values["bias_correction"] is False
    assert values["optimizers"] == ("sgd", "adam")
    with pytest.raises(ValueError, match="unknown parameter 'momentum'"):
        parse_all(KNOBS, {"momentum": "0.9"})
    assert parse_all(KNOBS, {"momentum": "0.9"}, strict=False)["lr"] == 0.1


def test_query_flags_and_url_round_trip():
    values = {"lr": 0.05, "optimizers": ("sgd", "adam"), "bias_correction": False}
    query = to_query(KNOBS, values)
    assert query == "lr=0.05&optimizers=sgd,adam&bias-correction=false"
    pairs = dict(part.split("=") for part in query.split("&"))
    parsed = parse_all(KNOBS, pairs)
    assert all(parsed[k] == v for k, v in values.items())
    assert to_flags(KNOBS, values) == [
        "--lr", "0.05", "--optimizers", "sgd,adam", "--no-bias-correction",
    ]  # fmt: skip
    assert live_url("paths", KNOBS, values) == f"http://127.0.0.1:8765/#paths?{query}"
    assert LR.to_query(0.05) == "lr=0.05" and OPTS.to_query(["adam"]) == "optimizers=adam"
    with pytest.raises(ValueError, match="lr must be"):
        LR.to_query(-1)
    assert live_url("paths", KNOBS, {}, port=9000) == "http://127.0.0.1:9000/#paths"


def test_as_json_describes_the_control():
    control = LR.as_json()
    assert control["label"] == "η" and control["scale"] == "log" and math.isclose(control["hi"], 10)
    assert OPTS.as_json()["default"] == ["sgd", "adam"]
    assert BIAS.as_json()["default"] is True
