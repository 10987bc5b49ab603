"""Crash-safe writes: every file goes to a temporary name first and is renamed into place,
so a killed run leaves either the old file or the new one, never half of one."""
from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterator

from safetensors.torch import load_file, save_file
from torch import nn


@contextlib.contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")  # keep the suffix: savefig infers the format
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    with atomic(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(_finite(data), indent=2) + "\n")


def _finite(data: Any) -> Any:
    """JSON has no NaN: write null instead."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def save_weights(model: nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic(path) as tmp:
        save_file(state, str(tmp))


def load_weights(model: nn.Module, path: Path) -> None:
    model.load_state_dict(load_file(str(path)), strict=True)
