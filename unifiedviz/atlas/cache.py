"""The atlas's resumable cache: which units are finished, and the settings they were made with.

A unit is finished when its record `units/<slug>/unit.json` exists: it is written (atomically)
after every other file of the unit, so a run killed mid-unit redoes that unit. `settings.json`
holds the options that shape the files; `--resume` with other settings is refused (a mixed atlas
would look whole but not be), so a resumed atlas ends with the same files as an uninterrupted one.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import UnifiedVizError
from ..report.files import write_json

SETTINGS = "settings.json"
RECORD = "unit.json"


def slugs(addresses: list[str]) -> list[str]:
    """A file-name-safe, unique name per address (`conv2:channel=3` -> `conv2_channel-3`)."""
    out: list[str] = []
    seen: set[str] = set()
    for a in addresses:
        base = re.sub(r"[^A-Za-z0-9._-]", "_", a.replace(":", "_").replace("=", "-"))
        slug, n = base, 2
        while slug in seen:
            slug, n = f"{base}-{n}", n + 1
        seen.add(slug)
        out.append(slug)
    return out


class UnitCache:
    """Finished units' records under `root/units/`, valid for one set of `settings`."""

    def __init__(self, root: Path, settings: dict) -> None:
        self.root = Path(root)
        self.settings = json.loads(json.dumps(settings))  # as it reads back from the file

    def check(self, *, resume: bool) -> None:
        """Before any change: on `resume`, the cached units must come from the same settings."""
        path = self.root / SETTINGS
        if not resume or not path.is_file():
            return
        before = json.loads(path.read_text())
        changed = sorted(k for k in set(before) | set(self.settings) if before.get(k) != self.settings.get(k))
        if changed:
            shown = ", ".join(f"{k} {before.get(k)!r} -> {self.settings.get(k)!r}" for k in changed[:3])
            raise UnifiedVizError(f"--resume: the atlas in {str(self.root)!r} was made with other settings ({shown}): "
                                  "rerun with its options, or pass --force to start over")

    def open(self) -> None:
        write_json(self.root / SETTINGS, self.settings)

    def path(self, slug: str) -> Path:
        return self.root / "units" / slug / RECORD

    def done(self, slug: str) -> bool:
        return self.path(slug).is_file()

    def load(self, slug: str) -> dict:
        return json.loads(self.path(slug).read_text())

    def store(self, slug: str, record: dict) -> None:
        """Mark the unit finished (call after writing all its other files)."""
        write_json(self.path(slug), record)


__all__ = ["UnitCache", "slugs", "SETTINGS", "RECORD"]
