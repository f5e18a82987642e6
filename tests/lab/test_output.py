"""The lab never loses a user's file: it writes a new folder or replaces its own
earlier report, and refuses everything else, changing nothing."""

import hashlib
import json
import os

import pytest

from lossopt.__main__ import main
from lossopt.lab import output
from lossopt.lab.experiments import EXPERIMENTS

# The cheapest experiment keeps these tests fast; any name of the registry works.
CHEAP = "entropy" if "entropy" in EXPERIMENTS else next(iter(EXPERIMENTS))


def _snapshot(root, skip=None):
    """Every file and folder under root (but skip): path -> content hash (None for folders)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        if skip is not None:
            dirs[:] = [d for d in dirs if os.path.join(folder, d) != os.path.abspath(skip)]
        for name in dirs:
            found[os.path.relpath(os.path.join(folder, name), root)] = None
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def _refused(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("lossopt: error: --out"), err
    return err[0]


@pytest.fixture
def user_files(tmp_path, monkeypatch):
    """A working directory with a user's files in it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("my notes")
    (tmp_path / "mydir").mkdir()
    (tmp_path / "mydir" / "thesis.tex").write_text("\\section{}")
    return tmp_path


def test_refuses_a_folder_holding_a_users_file(user_files, capsys):
    before = _snapshot(user_files)
    line = _refused(capsys, "lab", CHEAP, "--quick", "--quiet", "--out", "mydir")
    assert "not empty" in line
    assert _snapshot(user_files) == before


def test_refuses_a_file(user_files, capsys):
    before = _snapshot(user_files)
    assert "is a file" in _refused(capsys, "lab", CHEAP, "--quiet", "--out", "notes.txt")
    assert "is a file" in _refused(capsys, "lab", CHEAP, "--quiet", "--out", "notes.txt/report")
    assert _snapshot(user_files) == before


@pytest.mark.parametrize("out", [".", "./", "..", "mydir/..", "/"])
def test_refuses_the_current_directory_and_its_parents(user_files, capsys, out):
    before = _snapshot(user_files)
    assert "current directory or one above" in _refused(capsys, "lab", "--quiet", "--out", out)
    assert _snapshot(user_files) == before


def test_refuses_a_symbolic_link(user_files, capsys):
    os.symlink(user_files / "mydir", user_files / "link")
    before = _snapshot(user_files)
    assert "symbolic link" in _refused(capsys, "lab", CHEAP, "--quiet", "--out", "link")
    assert _snapshot(user_files) == before


def test_writes_a_new_folder_and_replaces_only_its_own_report(user_files, capsys):
    before = _snapshot(user_files)
    assert main(["lab", CHEAP, "--quick", "--quiet", "--out", "deep/report"]) == 0
    report = user_files / "deep" / "report"
    marker = json.loads((report / output.MARKER).read_text())
    assert marker["kind"] == "lab" and "index.html" in marker["files"]
    after = _snapshot(user_files, skip=user_files / "deep")
    assert after == before  # nothing outside the new folders
    first = (report / "results.json").read_text()
    # run again, another seed: the earlier report is replaced, no staging folder remains
    assert main(["lab", CHEAP, "--quick", "--quiet", "--seed", "1", "--out", "deep/report"]) == 0
    assert sorted(p.name for p in (user_files / "deep").iterdir()) == ["report"]
    assert (report / "results.json").read_text() != first
    capsys.readouterr()
    # a user's file put into the report folder makes it the user's: refused, kept
    (report / "mine.csv").write_text("a,b\n")
    before = _snapshot(user_files)
    assert "mine.csv" in _refused(capsys, "lab", CHEAP, "--quiet", "--out", "deep/report")
    assert _snapshot(user_files) == before


def test_an_empty_folder_is_used(user_files):
    (user_files / "empty").mkdir()
    assert main(["lab", CHEAP, "--quick", "--quiet", "--out", "empty"]) == 0
    assert (user_files / "empty" / "index.html").is_file()


def test_compare_has_its_own_folder_and_never_replaces_the_labs(user_files, capsys):
    assert main(["lab", CHEAP, "--quick", "--quiet"]) == 0  # the default, lab-report/
    # A readable table, so that the folder is what compare refuses, whichever it checks first.
    rows = "\n".join(f"{i},{i % 2}" for i in range(40))
    (user_files / "t.csv").write_text("x,y\n" + rows + "\n")
    before = _snapshot(user_files)
    line = _refused(
        capsys, "lab", "compare", "--data", "t.csv", "--target", "y", "--out", "lab-report"
    )
    assert "holds a lossopt lab report; compare will not replace it" in line
    assert _snapshot(user_files) == before
    from lossopt.lab.cli import COMPARE_OUT, LAB_OUT

    assert COMPARE_OUT != LAB_OUT


def test_write_report_builds_beside_then_swaps(tmp_path):
    out = tmp_path / "r"
    seen = []

    def build(folder):
        seen.append(folder)
        assert folder.parent == tmp_path and folder != out
        (folder / "index.html").write_text("one")
        return "done"

    assert output.write_report(out, "lab", build) == "done"
    assert (out / "index.html").read_text() == "one"
    assert not seen[0].exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_failed_build_leaves_the_earlier_report_and_no_trace(tmp_path):
    out = tmp_path / "r"
    output.write_report(out, "lab", lambda folder: (folder / "index.html").write_text("old"))
    before = _snapshot(tmp_path)

    def broken(folder):
        (folder / "index.html").write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        output.write_report(out, "lab", broken)
    assert _snapshot(tmp_path) == before


def test_a_file_that_appears_during_the_run_is_kept(tmp_path):
    out = tmp_path / "r"
    output.write_report(out, "lab", lambda folder: (folder / "index.html").write_text("old"))

    def meanwhile(folder):
        (out / "user.txt").write_text("written while the lab ran")
        (folder / "index.html").write_text("new")

    with pytest.raises(output.OutputError, match="user.txt"):
        output.write_report(out, "lab", meanwhile)
    assert (out / "user.txt").read_text() == "written while the lab ran"
    assert (out / "index.html").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_a_forged_or_broken_marker_is_not_trusted(tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "data.csv").write_text("1,2\n")
    (out / output.MARKER).write_text("not json")
    with pytest.raises(output.OutputError, match="did not write"):
        output.check(out, "lab")
    (out / output.MARKER).write_text(json.dumps({"kind": "lab", "files": ["index.html"]}))
    with pytest.raises(output.OutputError, match="data.csv"):
        output.check(out, "lab")
    assert (out / "data.csv").read_text() == "1,2\n"


def test_compare_default_folder_whatever_the_option_order(user_files, monkeypatch):
    import lossopt.lab.compare as compare_module

    seen = []

    def stop(table, config, progress=None):  # the folder is chosen before any training
        seen.append(config)
        raise KeyboardInterrupt

    monkeypatch.setattr(compare_module, "compare", stop)
    rows = "\n".join(f"{i},{i % 2}" for i in range(40))
    (user_files / "t.csv").write_text("x,y\n" + rows + "\n")
    before = _snapshot(user_files)
    for argv in (
        ["lab", "--quick", "compare", "--data", "t.csv", "--target", "y"],
        ["lab", "compare", "--quick", "--data", "t.csv", "--target", "y"],
    ):
        assert main(argv) == 130
    assert len(seen) == 2 and all(c.quick for c in seen)
    assert _snapshot(user_files) == before  # interrupted: nothing written anywhere
    from lossopt.lab import cli

    for argv in (["--quick", "compare"], ["compare", "--quick"]):
        parsed = cli.parser().parse_args(["lab", *argv, "--data", "a", "--target", "y"])
        assert cli.output_folder(parsed) == "compare-report" and parsed.quick
    assert cli.output_folder(cli.parser().parse_args(["lab", "--quick"])) == "lab-report"
    parsed = cli.parser().parse_args(
        ["lab", "--out", "x", "compare", "--data", "a", "--target", "y"]
    )
    assert cli.output_folder(parsed) == "x"


def test_a_marker_naming_files_elsewhere_is_not_trusted(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    out = tmp_path / "r"
    out.mkdir()
    (out / "index.html").write_text("x")
    for name in ("../precious.txt", "..", "/etc/passwd"):
        listed = {"kind": "lab", "files": ["index.html", name]}
        (out / output.MARKER).write_text(json.dumps(listed))
        with pytest.raises(output.OutputError, match="did not write"):
            output.write_report(out, "lab", lambda folder: None)
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert (out / "index.html").read_text() == "x"
