"""Shipped weights of the built-in models: safetensors files (never pickle) plus metadata."""
from __future__ import annotations

from pathlib import Path

from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from ...errors import UnifiedVizError
from ...report.files import atomic_path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def weights_path(name: str, directory: Path | None = None) -> Path:
    return Path(directory or WEIGHTS_DIR) / f"{name.replace('-', '_')}.safetensors"


def _existing(name: str) -> Path:
    path = weights_path(name)
    if not path.is_file():
        raise UnifiedVizError(
            f"weights for built-in model {name!r} are missing ({path}); "
            "reinstall unifiedviz or run scripts/train_builtins.py"
        )
    return path


def load_builtin_weights(net: nn.Module, name: str) -> None:
    """Load the shipped weights into `net` (all keys and shapes must match)."""
    net.load_state_dict(load_file(_existing(name)), strict=True)


def builtin_metadata(name: str) -> dict[str, str]:
    """Metadata stored with the shipped weights (e.g. `test_accuracy`)."""
    with safe_open(_existing(name), framework="pt") as f:
        return dict(f.metadata() or {})


def save_builtin_weights(net: nn.Module, name: str, metadata: dict[str, str], directory: Path | None = None) -> Path:
    """Write `net`'s weights atomically: a temp file in the same folder, then rename over."""
    path = weights_path(name, directory)
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in metadata.items()})
    return path
