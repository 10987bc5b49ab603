"""Lightning checkpoints stored as safetensors (no pickle): every tensor of the checkpoint dict
goes to the safetensors body, the rest of its structure (loop counters, optimizer hyper-parameters)
to JSON in the file's metadata."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
from safetensors.torch import load_file, save_file, safe_open

from ..report.files import atomic_path

_STRUCTURE = "unifiedviz.checkpoint"


def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, path, tensors), _encode(v, f"{path}.{k}", tensors)] for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, path, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, path, tensors) for v in value]
    if isinstance(value, (os.PathLike,)):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {type(value).__name__} at {path} in a safetensors checkpoint")


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        if "__tuple__" in value:
            return tuple(_decode(v, tensors) for v in value["__tuple__"])
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__dict__"]}
    return value


def save_checkpoint_file(checkpoint: dict, path: str | Path) -> None:
    tensors: dict[str, torch.Tensor] = {}
    structure = _encode(checkpoint, "checkpoint", tensors)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={_STRUCTURE: json.dumps(structure)})


def load_checkpoint_file(path: str | Path, map_location: Any = "cpu") -> dict:
    with safe_open(str(path), framework="pt") as f:
        structure = json.loads(f.metadata()[_STRUCTURE])
    tensors = load_file(str(path), device=str(map_location) if isinstance(map_location, (str, torch.device)) else "cpu")
    return _decode(structure, tensors)


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning's CheckpointIO plugin: `Trainer(plugins=[SafetensorsCheckpointIO()])`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        save_checkpoint_file(checkpoint, path)

    def load_checkpoint(self, path, map_location: Any = None, weights_only: Any = None) -> dict[str, Any]:
        return load_checkpoint_file(path, map_location or "cpu")

    def remove_checkpoint(self, path) -> None:
        Path(path).unlink(missing_ok=True)
