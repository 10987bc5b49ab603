"""The input contract every loaded model carries, and the wrapper that enforces it.

The rest of the toolkit works on images in [0, 1] pixel space; `VizModel` normalises them
with the model's own mean/std, so neither users nor attacks ever normalise by hand.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from ..errors import UnifiedVizError


@dataclass(frozen=True)
class InputSpec:
    """What a model expects: `size` is (H, W) for images or (L,) for 1-D sequences."""

    size: tuple[int, ...]
    channels: int = 3
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    value_range: tuple[float, float] = (0.0, 1.0)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one input (without batch)."""
        return (self.channels, *self.size)

    def check(self, x: torch.Tensor) -> None:
        if x.dim() != len(self.shape) + 1 or x.shape[1] != self.channels:
            raise UnifiedVizError(
                f"input of shape {tuple(x.shape)} does not fit this model: expected "
                f"[batch, {', '.join(map(str, self.shape))}] ({self.channels} channel(s)); "
                "resize or convert the input first"
            )


class VizModel(nn.Module):
    """A classifier that takes [0, 1] inputs, normalises them, and returns logits.

    `net` is the wrapped module; layer names are relative to it (`layer3.1`, not `net.layer3.1`).
    `spec_guessed` is True when `spec` is the 3x224x224, no-normalisation default for a module
    whose contract could not be read (see `as_viz_model`), rather than read or given.
    """

    def __init__(
        self,
        net: nn.Module,
        spec: InputSpec,
        *,
        source: str = "module",
        num_prefix_tokens: int = 0,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.spec = spec
        self.source = source
        self.num_prefix_tokens = num_prefix_tokens
        self.class_names = list(class_names) if class_names is not None else None
        self.spec_guessed = False
        shape = (1, -1) + (1,) * len(spec.size)
        self.register_buffer("mean", torch.tensor(spec.mean, dtype=torch.float32).view(shape), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std, dtype=torch.float32).view(shape), persistent=False)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.mean)  # inputs follow the model's device and dtype (`model.to(...)` moved these buffers)
        lo, hi = self.spec.value_range
        if (lo, hi) != (0.0, 1.0):
            x = x * (hi - lo) + lo
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(self.normalise(x))
        return logits_of(out)

    def extra_repr(self) -> str:
        return f"source={self.source!r}, input={self.spec.shape}, prefix_tokens={self.num_prefix_tokens}"


def logits_of(out) -> torch.Tensor:
    """Logits from whatever a model returns (tensor, HF ModelOutput, tuple)."""
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"cannot find logits in model output of type {type(out).__name__}")


def as_viz_model(model: nn.Module, spec: InputSpec | None = None) -> VizModel:
    """Wrap a plain module (identity normalisation) unless it is already a VizModel."""
    if isinstance(model, VizModel):
        return model
    guessed = spec is None and not _has_timm_cfg(model)
    if spec is None:
        spec = guess_spec(model)
    viz = VizModel(model, spec, source="module", num_prefix_tokens=_prefix_tokens(model))
    viz.spec_guessed = guessed
    return viz


def guess_spec(model: nn.Module) -> InputSpec:
    """Best guess of a plain module's input: timm's pretrained_cfg, else 3x224x224."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    size = tuple(cfg.get("input_size", (3, 224, 224)))
    return InputSpec(size=size[1:], channels=size[0])


def _has_timm_cfg(model: nn.Module) -> bool:
    cfg = getattr(model, "pretrained_cfg", None)
    return isinstance(cfg, dict) and "input_size" in cfg


def _prefix_tokens(model: nn.Module) -> int:
    return int(getattr(model, "num_prefix_tokens", 0) or 0)


def device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))
