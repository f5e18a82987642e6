"""The torch range that pyproject.toml promises is the one noxfile.py tests and
the README states, so that neither end can drift from what CI runs."""

import ast
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _tested_range() -> tuple[Version, Version]:
    """noxfile.py's TORCH_RANGE, read without importing nox."""
    for node in ast.parse((ROOT / "noxfile.py").read_text()).body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [
            "TORCH_RANGE"
        ]:
            low, high = ast.literal_eval(node.value)
            return Version(low), Version(high)
    raise AssertionError("noxfile.py assigns no TORCH_RANGE")


def _declared_torch() -> Requirement:
    """The torch requirement in pyproject.toml's [project] dependencies."""
    text = (ROOT / "pyproject.toml").read_text()
    line = re.search(r"^dependencies = (\[.*\])$", text, re.MULTILINE)
    assert line, "pyproject.toml has no one-line dependencies list"
    (torch,) = [r for r in map(Requirement, ast.literal_eval(line[1])) if r.name == "torch"]
    return torch


def test_the_declared_floor_is_the_lowest_torch_tested():
    low, high = _tested_range()
    (spec,) = _declared_torch().specifier
    assert spec.operator == ">=" and Version(spec.version) == low, (str(spec), str(low))
    assert low < high


def test_the_pinned_development_torch_lies_inside_the_tested_range():
    pin = re.search(r"^TORCH\s*:?=\s*torch==(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert pin, "the Makefile pins no TORCH"
    low, high = _tested_range()
    assert low <= Version(pin[1]) <= high, (pin[1], str(low), str(high))


def test_the_readme_states_the_tested_range_and_its_command():
    readme = (ROOT / "README.md").read_text()
    low, high = _tested_range()
    assert f"`{_declared_torch()}`" in readme
    assert f"torch {low} and {high}" in readme
    assert "make test-torch-range" in readme
