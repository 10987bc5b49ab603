"""Crash-safe weight files: written to a temporary name and renamed into place, so a killed
run leaves either the old file or the new one, never half of one (text and JSON go through
`unifiedviz.report`'s `write_text` / `write_json`, which work the same way)."""
from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from unifiedviz.report import atomic_path


def save_weights(model: nn.Module, path: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp))


def load_weights(model: nn.Module, path: Path) -> None:
    model.load_state_dict(load_file(str(path)), strict=True)
