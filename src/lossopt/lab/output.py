"""Where the lab writes: never over a file it did not write.

The report is built in a hidden folder beside its destination and moved into
place only when complete. The destination may be a new folder, or one that
holds an earlier lossopt report and nothing else: the lab recognises its own
reports by a marker file listing what it wrote. Anything else (a file, a
folder with other content, the current directory or one above it) is refused
before any work starts.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from lossopt.lab.i18n import _

MARKER = ".lossopt-report"

T = TypeVar("T")


class OutputError(ValueError):
    """The output folder cannot be used without risking someone's files."""


def _marker(folder: Path) -> tuple[str, set[str]] | None:
    """(kind, names) from folder's marker, or None when it holds no valid one."""
    marker = folder / MARKER
    if not marker.is_file() or marker.is_symlink():
        return None
    try:
        content = json.loads(marker.read_text(encoding="utf-8"))
        kind, listed = content["kind"], content["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(listed, list) or not all(isinstance(n, str) for n in listed):
        return None
    if any(n in ("", ".", "..") or "/" in n or os.sep in n for n in listed):
        return None  # a marker naming anything outside its own folder is not ours
    return str(kind), set(listed)


def check(out: Path, kind: str) -> Path:
    """Raise OutputError unless a report of this kind ('lab', 'compare') may be
    written at out; return out as an absolute path."""
    try:
        cwd = Path.cwd().resolve()
    except FileNotFoundError:  # the current directory was removed: nothing of it to protect
        cwd = None
    absolute = Path(os.path.abspath(out))
    resolved = absolute.resolve()
    if cwd is not None and (resolved == cwd or resolved in cwd.parents):
        raise OutputError(
            _("--out {out} is the current directory or one above it; name a new folder").format(
                out=out
            )
        )
    if absolute.is_symlink():
        raise OutputError(_("--out {out} is a symbolic link; name a new folder").format(out=out))
    if absolute.exists() and not absolute.is_dir():
        raise OutputError(
            _("--out {out} is a file, not a folder; name a new folder").format(out=out)
        )
    for parent in absolute.parents:
        if parent.exists() and not parent.is_dir():
            raise OutputError(
                _("--out {out}: {parent} is a file, not a folder").format(out=out, parent=parent)
            )
    if absolute.is_dir():
        present = {p.name for p in absolute.iterdir()}
        found = _marker(absolute)
        if present and found is None:
            raise OutputError(
                _(
                    "--out {out} is a folder that lossopt did not write and is not empty; "
                    "name a new folder"
                ).format(out=out)
            )
        if found is not None:
            other, listed = found
            if other != kind:
                raise OutputError(
                    _(
                        "--out {out} holds a lossopt {other} report; {kind} will not replace it"
                    ).format(out=out, other=other, kind=kind)
                )
            extra = sorted(present - listed - {MARKER})
            if extra:
                files = ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else "")
                raise OutputError(
                    _(
                        "--out {out} holds files lossopt did not write ({files}); "
                        "move them or name a new folder"
                    ).format(out=out, files=files)
                )
            if any(
                (absolute / name).is_dir() and not (absolute / name).is_symlink()
                for name in present
            ):
                raise OutputError(
                    _("--out {out} holds a folder lossopt did not write").format(out=out)
                )
    return absolute


def _remove_report(folder: Path) -> None:
    """Delete an earlier report, file by listed file: never anything it did not write."""
    _, listed = _marker(folder) or ("", set())
    for path in folder.iterdir():
        if path.name in listed and (path.is_file() or path.is_symlink()):
            path.unlink()
    (folder / MARKER).unlink(missing_ok=True)
    folder.rmdir()  # fails, keeping everything, if something else appeared meanwhile


def write_report(out: Path, kind: str, build: Callable[[Path], T]) -> T:
    """Run build(folder) in a fresh folder beside out, then put it at out.

    out must pass `check`; it is checked again just before the swap, so a file
    that appeared meanwhile is kept and the new report is discarded.
    """
    out = check(out, kind)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(
            _("--out {out}: cannot create its parent folder ({error})").format(out=out, error=error)
        ) from None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    except OSError as error:
        raise OutputError(
            _("--out {out}: cannot write in {folder} ({error})").format(
                out=out, folder=out.parent, error=error.strerror
            )
        ) from None
    old = None
    try:
        result = build(staging)
        written = sorted(p.name for p in staging.iterdir())
        (staging / MARKER).write_text(
            json.dumps({"kind": kind, "files": written}), encoding="utf-8"
        )
        check(out, kind)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / out.name)
        os.rename(staging, out)
        if old is not None:
            try:
                _remove_report(old / out.name)
                old.rmdir()
            except OSError:
                pass  # something not ours appeared in the old report: keep it, hidden beside
        return result
    except BaseException:
        if old is not None and (old / out.name).exists() and not out.exists():
            os.rename(old / out.name, out)  # put the earlier report back
            old.rmdir()
        raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)  # only ever our own staging folder
