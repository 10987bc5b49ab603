"""TransformerLens 4.x `TransformerBridge` models: TL hook names are layer names.

A bridge wraps a Hugging Face ViT. Its `hook_dict` names every `HookPoint` the TL way
(`blocks.0.hook_resid_post`, `blocks.0.attn.hook_pattern`, `blocks.0.mlp.hook_post`),
including aliases that share one HookPoint; its own components (`blocks.0.attn`) are
modules too. The wrapped HF modules hang under `_original_component` and are left out,
so each layer has one readable name. A HookPoint is a plain identity `nn.Module`, so the
Adapter's forward hooks, early stop (an exception raised in a hook propagates out of the
bridge) and gradients work as for any module.

Booting a bridge and reading its input contract live in `models/bridges.py`; nothing here
imports transformer_lens (~5 s).
"""
from __future__ import annotations

from torch import nn

from ..models.bridges import is_bridge

__all__ = ["bridge_layers", "is_bridge"]

_HIDDEN = "_original_component"


def bridge_layers(bridge: nn.Module) -> dict[str, nn.Module]:
    """Bridge components and every TL hook name (aliases included), name -> module."""
    layers = {
        name: module
        for name, module in bridge.named_modules(remove_duplicate=False)
        if name and _HIDDEN not in name.split(".")
    }
    layers.update(bridge.hook_dict)
    return layers
