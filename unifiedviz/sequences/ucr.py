"""UCR / UEA time-series classification data: `.ts` and `.tsv` files from a folder, as `[N, C, L]`.

    data = load_ucr("GunPoint", "train")                 # aeon's bundled copy, offline
    data = load_ucr("FordA", "test", root="~/ucr")       # ~/ucr/FordA/FordA_TEST.ts (or .tsv)
    data = load_ucr("FordA", "test", root="~/ucr", download=True)   # fetch the zip once if absent

Where a set is looked for, in order: `root/NAME/NAME_SPLIT.{ts,tsv}`, `root/NAME_SPLIT.{ts,tsv}`,
then the copies aeon ships as package data (GunPoint, ItalyPowerDemand, ArrowHead, BasicMotions,
...), found without importing aeon. `download=True` fetches
`https://www.timeseriesclassification.com/aeon-toolkit/NAME.zip` into `root`; with no network it
fails with one line. Formats:

- `.ts` (sktime/aeon): `#` comments, `@` header lines (`@classLabel true 1 2` gives the class
  order), then `@data`; one case per line, channels separated by `:`, values by `,`, the label last.
- `.tsv` (UCR 2018 archive): one case per line, the label first, then the values (tab-separated);
  univariate only. Classes are the sorted labels (numerically when they all are numbers).
"""
from __future__ import annotations

import importlib.util
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import UnifiedVizError

DOWNLOAD_URL = "https://www.timeseriesclassification.com/aeon-toolkit/{name}.zip"
#: Sets this module knows by name (shape facts from the archive's descriptions); any other name works too.
KNOWN = {
    "GunPoint": "2 classes, 50 train / 150 test, length 150 (bundled with aeon)",
    "ItalyPowerDemand": "2 classes, 67 train / 1029 test, length 24 (bundled with aeon)",
    "ArrowHead": "3 classes, 36 train / 175 test, length 251 (bundled with aeon)",
    "FordA": "2 classes (engine fault or not), 3601 train / 1320 test, length 500 (download)",
    "FordB": "2 classes, 3636 train / 810 test, length 500 (download)",
}
SPLITS = ("train", "test")


@dataclass
class SequenceData:
    """Sequences `x` float32 `[N, C, L]` (the file's values, not rescaled), labels `y` int64 `[N]`
    indexing `classes` (the file's label strings), and where they came from."""

    x: torch.Tensor
    y: torch.Tensor
    classes: list[str]
    name: str
    source: str

    def __len__(self) -> int:
        return len(self.y)


def load_ucr(name: str, split: str = "train", *, root: str | Path | None = None,
             download: bool = False) -> SequenceData:
    """Load split `train` or `test` of the UCR/UEA set `name` (see the module doc for where it looks)."""
    if split not in SPLITS:
        raise UnifiedVizError(f"unknown split {split!r} for {name}; use 'train' or 'test'")
    path = find_ucr(name, split, root=root)
    if path is None and download:
        if root is None:
            raise UnifiedVizError(f"download of {name} needs a folder: pass root=DIR")
        download_ucr(name, root)
        path = find_ucr(name, split, root=root)
    if path is None:
        where = f"in {root}" if root is not None else "in aeon's bundled data (no root given)"
        raise UnifiedVizError(
            f"UCR set {name!r} ({split}) not found {where}: put {name}/{name}_{split.upper()}.ts or .tsv "
            "under root, or pass download=True when online"
        )
    return read_ucr_file(path, name=name)


def find_ucr(name: str, split: str, *, root: str | Path | None = None) -> Path | None:
    """The `.ts` or `.tsv` file of `name`'s `split`, or None."""
    stem = f"{name}_{split.upper()}"
    folders = []
    if root is not None:
        root = Path(root).expanduser()
        folders += [root / name, root]
    bundled = aeon_data_dir()
    if bundled is not None:
        folders.append(bundled / name)
    for folder in folders:
        for suffix in (".ts", ".tsv"):
            if (folder / f"{stem}{suffix}").is_file():
                return folder / f"{stem}{suffix}"
    return None


def aeon_data_dir() -> Path | None:
    """aeon's bundled data folder, found without importing aeon (slow); None when aeon is absent."""
    try:
        spec = importlib.util.find_spec("aeon")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "datasets" / "data"
    return folder if folder.is_dir() else None


def download_ucr(name: str, root: str | Path, *, timeout: float = 30.0) -> Path:
    """Fetch `NAME.zip` from timeseriesclassification.com and unpack it to `root/NAME/`."""
    import urllib.error
    import urllib.request

    target = Path(root).expanduser() / name
    target.mkdir(parents=True, exist_ok=True)
    url = DOWNLOAD_URL.format(name=name)
    archive = target / f".{name}.zip.part"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(archive, "wb") as out:
            out.write(response.read())
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        archive.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise UnifiedVizError(f"cannot download {name} from {url} ({reason}); "
                              f"offline, copy {name}_TRAIN.ts and {name}_TEST.ts into {target}") from None
    try:
        with zipfile.ZipFile(archive) as z:
            for member in z.namelist():
                base = os.path.basename(member)
                if base.startswith(f"{name}_") and base.endswith((".ts", ".tsv")):
                    (target / base).write_bytes(z.read(member))
    except zipfile.BadZipFile:
        raise UnifiedVizError(f"{url} did not return a zip file; download it by hand into {target}") from None
    finally:
        archive.unlink(missing_ok=True)
    return target


def read_ucr_file(path: str | Path, *, name: str | None = None) -> SequenceData:
    """Read one `.ts` or `.tsv` file."""
    path = Path(path)
    if path.suffix == ".ts":
        x, labels, classes = _read_ts(path)
    elif path.suffix == ".tsv":
        x, labels, classes = _read_tsv(path)
    else:
        raise UnifiedVizError(f"cannot read {path}: UCR files end in .ts or .tsv")
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise UnifiedVizError(f"{path}: labels {unknown[:3]} are not among the declared classes {classes}")
    y = torch.tensor([index[label] for label in labels], dtype=torch.int64)
    return SequenceData(torch.from_numpy(x), y, classes, name or path.stem.rsplit("_", 1)[0], str(path))


def _read_ts(path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    classes: list[str] | None = None
    cases: list[list[list[float]]] = []
    labels: list[str] = []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                low = line.lower()
                if low.startswith("@classlabel"):
                    parts = line.split()
                    if len(parts) < 3 or parts[1].lower() != "true":
                        raise UnifiedVizError(f"{path}: needs class labels (@classLabel true ...) for classification")
                    classes = parts[2:]
                elif low.startswith("@data"):
                    in_data = True
                continue
            fields = line.split(":")
            if len(fields) < 2:
                raise UnifiedVizError(f"{path}:{number}: expected channels separated by ':' and a label last")
            labels.append(fields[-1].strip())
            try:
                cases.append([[float(v) if v not in ("?", "NaN") else np.nan for v in ch.split(",")]
                              for ch in fields[:-1]])
            except ValueError:
                raise UnifiedVizError(f"{path}:{number}: a value is not a number") from None
    if not in_data or not cases:
        raise UnifiedVizError(f"{path}: no @data section with cases")
    return _stack(path, cases), labels, classes if classes is not None else _sorted_labels(labels)


def _read_tsv(path: Path) -> tuple[np.ndarray, list[str], list[str]]:
    cases, labels = [], []
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            fields = raw.rstrip("\n").split("\t")
            labels.append(fields[0].strip())
            try:
                cases.append([[float(v) if v.strip() not in ("", "NaN") else np.nan for v in fields[1:]]])
            except ValueError:
                raise UnifiedVizError(f"{path}:{number}: a value is not a number (tab-separated, label first)") from None
    if not cases:
        raise UnifiedVizError(f"{path}: no cases")
    return _stack(path, cases), labels, _sorted_labels(labels)


def _stack(path: Path, cases: list[list[list[float]]]) -> np.ndarray:
    shapes = {(len(c), len(c[0])) for c in cases} | {(len(c), len(ch)) for c in cases for ch in c}
    if len(shapes) != 1:
        raise UnifiedVizError(f"{path}: cases differ in channels or length {sorted(shapes)[:3]}; "
                              "only equal-length sets are supported")
    x = np.asarray(cases, dtype=np.float32)
    if np.isnan(x).any():
        raise UnifiedVizError(f"{path}: has missing values; fill them before loading")
    return x


def _sorted_labels(labels: list[str]) -> list[str]:
    unique = set(labels)
    try:
        return sorted(unique, key=float)
    except ValueError:
        return sorted(unique)


__all__ = ["KNOWN", "SequenceData", "aeon_data_dir", "download_ucr", "find_ucr", "load_ucr", "read_ucr_file"]
