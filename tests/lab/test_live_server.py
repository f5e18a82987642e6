"""`lossopt lab serve`: its flags come from the knobs, it listens on 127.0.0.1,
writes no file, and Ctrl-C stops it cleanly; --help imports no server stack."""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from lossopt.lab.cli import parser
from lossopt.lab.live import command
from lossopt.lab.live.catalog import EXPLORABLES


def test_serve_defaults_to_loopback_and_its_flags_are_the_knobs():
    args = parser().parse_args(["lab", "serve"])
    assert (args.host, args.port, args.no_browser, args.explorable) == (
        "127.0.0.1", 8765, False, None,
    )  # fmt: skip
    assert command.path(args) == ""
    args = parser().parse_args(
        ["lab", "serve", "--no-browser", "paths", "--momentum", "0.5", "--optimizers", "sgd,adam"]
    )
    assert command.path(args) == "#paths?optimizers=sgd,adam&momentum=0.5"
    for name, explorable in EXPLORABLES.items():
        assert command.path(parser().parse_args(["lab", "serve", name])) == f"#{name}"
        for knob in explorable.knobs:  # every knob is a flag of its explorable
            flags = ["lab", "serve", name, knob.flag]
            if knob.kind != "bool":
                flags.append(knob.format(knob.default))
            assert command.path(parser().parse_args(flags)).startswith(f"#{name}?{knob.name}=")


def test_a_bad_knob_flag_is_a_usage_error(capsys):
    from lossopt.lab.cli import main

    assert main(["lab", "serve", "paths", "--momentum", "nan"]) == 2
    assert "momentum must be" in capsys.readouterr().err
    assert main(["lab", "serve", "--port", "70000"]) == 2


def _imports(*argv: str) -> set[str]:
    code = (
        "import sys, contextlib, io\n"
        "from lossopt.lab.cli import main\n"
        f"with contextlib.redirect_stdout(io.StringIO()): main({list(argv)!r})\n"
        "print(sorted(m.split('.')[0] for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(eval(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [("lab", "--help"), ("lab", "serve", "--help")])
def test_help_imports_no_plotting_or_server_stack(argv):
    loaded = _imports(*argv)
    assert not loaded & {"matplotlib", "starlette", "uvicorn", "plotly"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_writes_nothing_and_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "lossopt", "lab", "serve", "--no-browser", "--port", str(port)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], 90)
        line = process.stdout.readline() if ready else ""
        assert f"http://127.0.0.1:{port}/" in line, (line, process.poll())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/triplet?margin=0.5") as answer:
            assert json.load(answer)["params"]["margin"] == 0.5
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/triplet?margin=-1")
        assert error.value.code == 400
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/softmax") as answer:
            assert answer.status == 200  # still serving after the bad request
        # listening on loopback only: the machine's other addresses do not answer
        names = socket.gethostbyname_ex(socket.gethostname())[2]
        for address in (a for a in names if not a.startswith("127.")):
            with socket.socket() as s, pytest.raises(OSError):
                s.settimeout(2)
                s.connect((address, port))
        process.send_signal(signal.SIGINT)
        start = time.monotonic()
        code = process.wait(timeout=30)
        errors = process.stderr.read()
        assert time.monotonic() - start < 30
        assert code == 0, errors
        assert "Traceback" not in errors
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert list(tmp_path.iterdir()) == []  # no file written
