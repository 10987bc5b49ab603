"""One output policy for every command that writes a folder.

A run folder carries a manifest (`MANIFEST`): the command that wrote it and the files it wrote.

- `claim(out, command)` runs before any work and refuses (one line, `UnifiedVizError`):
  an `out` that is a file; a folder written by another command; a folder holding anything
  its manifest does not list; a non-empty folder with no manifest.
- `claim(...).writing()` yields a fresh hidden sibling folder; when the block succeeds the
  manifest is written into it and it is swapped in for `out` (rename), so readers see the old
  folder or the new one, never half of one. An exception leaves `out` as it was.
- Nothing outside the manifest is ever deleted: the replaced folder is checked again just
  before the swap, and only then removed.
- Commands that fill a folder step by step so a killed run can resume (superposition) use
  `claim(..., incremental=True)` and `begin()` / `finish()`: the manifest is marked
  incomplete while the run is going; a folder in that state is the command's own.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import UnifiedVizError
from .files import write_json

MANIFEST = ".unifiedviz-run.json"


@dataclass
class Claim:
    """Permission, checked before any work, to (re)write `out` as `command`'s run folder."""

    out: Path
    command: str
    previous: dict | None  # the manifest of the folder this run replaces, if any
    incremental: bool = False

    # ------------------------------------------------------------------ whole-folder writes
    @contextlib.contextmanager
    def writing(self) -> Iterator[Path]:
        """Build the outputs in a hidden sibling folder; swap it in for `out` on success."""
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.tmp-", dir=self.out.parent))
        try:
            yield tmp
            write_manifest(tmp, self.command, files=_files(tmp), complete=True)
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700; outputs are meant to be shared
            self._swap(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _swap(self, new: Path) -> None:
        out = self.out
        if not out.exists():
            os.replace(new, out)
            return
        # Check again: files may have appeared since the claim; never delete what we did not write.
        check(out, self.command, incremental=self.incremental)
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.replace(out, old / "previous")
        try:
            os.replace(new, out)
        except BaseException:
            os.replace(old / "previous", out)
            raise
        finally:
            shutil.rmtree(old, ignore_errors=True)

    # ------------------------------------------------------------------ step-by-step writes
    def begin(self, *, fresh: bool) -> None:
        """Start (or resume) an incremental run in `out`; `fresh` empties its own old folder first."""
        if fresh and self.out.exists():
            check(self.out, self.command, incremental=True)
            _remove_own(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        write_manifest(self.out, self.command, files=[], complete=False)

    def finish(self) -> None:
        """Mark an incremental run complete and list what it wrote."""
        write_manifest(self.out, self.command, files=_files(self.out), complete=True)


def claim(out: str | Path, command: str, *, incremental: bool = False, option: str = "--out") -> Claim:
    """Check that `command` may write `out`; raise a one-line error before any work if not."""
    out = Path(os.path.abspath(out))  # `--out .` has a parent and a name to build beside
    previous = check(out, command, incremental=incremental, option=option)
    return Claim(out, command, previous, incremental)


def check(out: Path, command: str, *, incremental: bool = False, option: str = "--out") -> dict | None:
    """The folder's manifest if `command` may replace it, None if it is new or empty; else raise."""
    where = f"{option} {str(out)!r}"
    if out.exists() and not out.is_dir():
        raise UnifiedVizError(f"{where} is a file: give a folder (new, or an earlier {command} run's)")
    if not out.is_dir() or not any(out.iterdir()):
        return None
    manifest = read_manifest(out)
    if manifest is None:
        raise UnifiedVizError(f"{where} holds files that unifiedviz did not write: give a new folder "
                              "(nothing there was changed)")
    if manifest.get("command") != command:
        raise UnifiedVizError(f"{where} holds a {manifest.get('command')!r} run: {command} replaces only its own "
                              "folders; give another folder (nothing there was changed)")
    if incremental and not manifest.get("complete", True):
        return manifest  # a run of this command that was stopped: all of it is its own
    listed = set(manifest.get("files", []))
    unlisted = sorted(f for f in _files(out) if f not in listed)
    if unlisted:
        shown = ", ".join(unlisted[:3]) + (f" and {len(unlisted) - 3} more" if len(unlisted) > 3 else "")
        raise UnifiedVizError(f"{where} holds files the earlier {command} run did not write ({shown}): move them "
                              "or give another folder (nothing there was changed)")
    return manifest


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(folder: Path, command: str, *, files: list[str], complete: bool) -> None:
    write_json(folder / MANIFEST, {
        "command": command,
        "argv": sys.argv[1:],
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "complete": complete,
        "files": sorted(files),
    })


def _files(folder: Path) -> list[str]:
    """Every file and link under `folder` (relative, '/'-separated), the manifest excluded."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            continue
        rel = path.relative_to(folder).as_posix()
        if rel != MANIFEST:
            found.append(rel)
    return found


def _remove_own(folder: Path) -> None:
    """Delete a folder this command wrote (checked by the caller), manifest last."""
    for child in folder.iterdir():
        if child.name == MANIFEST:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    (folder / MANIFEST).unlink(missing_ok=True)


__all__ = ["MANIFEST", "Claim", "claim", "check", "read_manifest", "write_manifest"]
