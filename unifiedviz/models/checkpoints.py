"""Load weights without ever running pickled code.

`.safetensors` files are read with safetensors; anything else with
`torch.load(weights_only=True)`, which refuses arbitrary Python objects.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch
from torch import nn

from ..errors import UnifiedVizError

#: Prefixes that wrappers add to every key (DataParallel, Lightning, our own VizModel).
_PREFIXES = ("module.", "model.", "net.")
#: Keys under which training scripts nest the state dict.
_NESTED = ("state_dict", "model_state_dict", "model", "net", "weights")


def read_state_dict(path: str | Path, expected: Iterable[str] | None = None) -> dict[str, torch.Tensor]:
    """The tensors in a checkpoint file, unwrapped from training-script dicts and prefixes.

    With `expected` (the architecture's keys), a prefix is stripped only while the keys do not
    match yet, so a model whose own keys all start with `model.` still loads.
    """
    path = Path(path)
    if not path.is_file():
        raise UnifiedVizError(f"weights file {str(path)!r} not found: check the path given to --weights")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except SafetensorError as exc:
            raise UnifiedVizError(f"cannot read {str(path)!r} as safetensors ({exc}): is the file complete?") from None
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle.UnpicklingError and friends: report, never retry unsafely
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnifiedVizError(
                f"refusing to load {str(path)!r}: it is not a plain tensor checkpoint ({first}); "
                "convert it to .safetensors or a weights-only state dict"
            ) from None
    state = _unwrap(state, path)
    return _strip_prefixes(state, None if expected is None else set(expected))


def load_weights(net: nn.Module, path: str | Path) -> None:
    """Load `path` into `net` strictly; on mismatch list the missing and unexpected keys."""
    expected = net.state_dict()
    state = read_state_dict(path, expected)
    for k in expected:
        # Checkpoints from PyTorch < 0.4.1 lack BatchNorm's step counter; it never affects outputs.
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = expected[k]
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {list(state[k].shape)} vs {list(v.shape)}"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} ({_preview(missing)})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} ({_preview(unexpected)})")
        if wrong_shape:
            parts.append(f"wrong shape {len(wrong_shape)} ({_preview(wrong_shape)})")
        raise UnifiedVizError(
            f"weights in {str(path)!r} do not fit this architecture: {'; '.join(parts)}; "
            "check that the model name matches the checkpoint"
        )
    net.load_state_dict(state, strict=True)


def _unwrap(state, path: Path) -> dict[str, torch.Tensor]:
    while isinstance(state, dict) and not _all_tensors(state):
        inner = next((state[k] for k in _NESTED if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict) or not _all_tensors(state):
        raise UnifiedVizError(
            f"{str(path)!r} holds no state dict of tensors: save `model.state_dict()` (or a dict with 'state_dict')"
        )
    return dict(state)


def _all_tensors(d: dict) -> bool:
    return bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def _strip_prefixes(state: dict[str, torch.Tensor], expected: set[str] | None) -> dict[str, torch.Tensor]:
    changed = True
    while changed and set(state) != expected:
        changed = False
        for prefix in _PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                changed = True
    return state


def _preview(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")
