"""The library tests on both ends of the torch range that pyproject.toml states.

``make test-torch-range`` runs them (CI does, after ``make test``). Every torch
but the pinned CPU build comes from the registry as a CUDA build of several GB
with its NVIDIA libraries, so each version's environment lives outside the clone
(``$LOSSOPT_TORCH_ENVS``, by default ``~/.cache/lossopt/torch-envs``) and is
reused: a second run, from any clone, installs nothing. lossopt itself is never
installed there (an editable install would point at whichever clone made the
environment); the tests import this clone's ``src/``.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

# The lowest torch the library tests pass on, and the newest the registry has.
# pyproject.toml's floor must equal TORCH_RANGE[0] (tests/test_torch_range.py).
TORCH_RANGE = ("2.6.0", "2.14.1")
TEST_DEPENDENCIES = ("pytest>=8", "hypothesis>=6.100", "pytest-xdist>=3.5")
LIBRARY_TESTS = (
    "tests/losses",
    "tests/optim",
    "tests/test_fuzz.py",
    "tests/test_half_precision.py",
)

ROOT = Path(__file__).resolve().parent
nox.options.envdir = os.environ.get("LOSSOPT_TORCH_ENVS") or os.path.expanduser(
    "~/.cache/lossopt/torch-envs"
)


@nox.session(reuse_venv=True)
@nox.parametrize("torch", TORCH_RANGE)
def tests(session: nox.Session, torch: str) -> None:
    """The losses, optimizers, fuzz and half-precision tests on one torch."""
    wanted = "\n".join((f"torch=={torch}", *TEST_DEPENDENCIES)) + "\n"
    stamp = Path(session.virtualenv.location) / ".lossopt-installed"
    if not stamp.is_file() or stamp.read_text() != wanted:
        session.install(*wanted.split())
        stamp.write_text(wanted)
    else:
        session.log(f"reusing {session.virtualenv.location} as it is")
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-n",
        "2",  # one worker per core of the CI machine: the range runs within CI's budget
        *LIBRARY_TESTS,
        *session.posargs,
        env={"PYTHONPATH": str(ROOT / "src")},
    )
