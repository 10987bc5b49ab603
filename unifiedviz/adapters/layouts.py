"""One canonical view of every activation, whatever layout the model produced it in.

    conv       [B, C, H, W]   (channels-last maps from Swin/ConvNeXt are transposed here)
    tokens     [B, T, D]      (the first `prefix` tokens are CLS/distillation/register tokens)
    heads      [B, T, heads, D/heads]  per-head attention outputs (TransformerLens hook_z)
    attention  [B, heads, T, T]        attention probabilities
    sequence   [B, C, L]      1-D conv maps (time series)
    vector     [B, D]         pooled features, logits
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

# TransformerLens hook names whose 4-D tensors are not conv maps.
_TL_HEADS = ("hook_q", "hook_k", "hook_v", "hook_z", "hook_result")
_TL_ATTENTION = ("hook_pattern", "hook_attn_scores")
# Modules that act on the last dim: a 4-D output from them is channels-last.
_LAST_DIM_MODULES = (nn.Linear, nn.LayerNorm)


@dataclass(frozen=True)
class Layout:
    kind: str  # conv | tokens | heads | attention | sequence | vector | other
    channels_last: bool = False  # a [B,H,W,C] map, transposed to [B,C,H,W]
    prefix: int = 0  # for token-like kinds: number of prefix tokens

    def canonical(self, t: torch.Tensor) -> torch.Tensor:
        return t.permute(0, 3, 1, 2) if self.channels_last else t


def first_tensor(out) -> torch.Tensor | None:
    """The activation a module produced: its tensor, or the first tensor of a tuple/ModelOutput."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item
    return None


def infer_layout(
    name: str, module: nn.Module, t: torch.Tensor, *, spatial_dims: int, square_input: bool, prefix_tokens: int
) -> Layout:
    """Decide the layout from the tensor's rank, the module's type and family conventions."""
    leaf = name.rsplit(".", 1)[-1]
    if t.dim() == 2:
        return Layout("vector")
    if t.dim() == 3:
        if spatial_dims == 1:
            return Layout("sequence")
        return Layout("tokens", prefix=_prefix_for(t.shape[1], prefix_tokens))
    if t.dim() == 4:
        # timm passes softmax(QK^T) through `attn_drop` when fused attention is off.
        if leaf in _TL_ATTENTION or leaf == "attn_drop":
            return Layout("attention", prefix=_prefix_for(t.shape[-1], prefix_tokens))
        if leaf in _TL_HEADS:
            return Layout("heads", prefix=_prefix_for(t.shape[1], prefix_tokens))
        _, d1, d2, d3 = t.shape
        if d2 == d3 and not (d1 == d2 and isinstance(module, _LAST_DIM_MODULES)):
            return Layout("conv")
        if d1 == d2 or isinstance(module, _LAST_DIM_MODULES):
            return Layout("conv", channels_last=True)
        if not square_input:
            return Layout("conv")
    # e.g. per-head queries [B, heads, T, d]: capturable, but no unit reads them
    return Layout("other")


def _prefix_for(tokens: int, prefix_tokens: int) -> int:
    """Prefix tokens are present when removing them leaves a square patch grid."""
    if prefix_tokens and _is_square(tokens - prefix_tokens):
        return prefix_tokens
    if _is_square(tokens):
        return 0
    return prefix_tokens


def _is_square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n
