"""TransformerLens 4.x `TransformerBridge` models: TL hook names are layer names.

A bridge wraps a Hugging Face ViT. Its `hook_dict` names every `HookPoint` the TL way
(`blocks.0.hook_resid_post`, `blocks.0.attn.hook_pattern`, `blocks.0.mlp.hook_post`),
including aliases that share one HookPoint; its own components (`blocks.0.attn`) are
modules too. The wrapped HF modules hang under `_original_component` and are left out,
so each layer has one readable name. A HookPoint is a plain identity `nn.Module`, so the
Adapter's forward hooks, early stop (an exception raised in a hook propagates out of the
bridge) and gradients work as for any module.

Nothing here imports transformer_lens (~5 s); only `boot_bridge` does, when asked to.
"""
from __future__ import annotations

from torch import nn

from ..errors import UnifiedVizError

_HIDDEN = "_original_component"


def is_bridge(module: nn.Module) -> bool:
    return type(module).__module__.startswith("transformer_lens.") and hasattr(module, "hook_dict")


def bridge_layers(bridge: nn.Module) -> dict[str, nn.Module]:
    """Bridge components and every TL hook name (aliases included), name -> module."""
    layers = {
        name: module
        for name, module in bridge.named_modules(remove_duplicate=False)
        if name and _HIDDEN not in name.split(".")
    }
    layers.update(bridge.hook_dict)
    return layers


def original_model(bridge: nn.Module) -> nn.Module:
    """The Hugging Face model a bridge wraps (its config carries the input contract)."""
    hf = getattr(bridge, "original_model", None)
    if not isinstance(hf, nn.Module) or not hasattr(hf, "config"):
        raise UnifiedVizError(
            "this TransformerLens model wraps no Hugging Face model with a config: boot it with "
            "TransformerBridge.boot_transformers(name, hf_model=..., device='cpu')"
        )
    return hf


def boot_bridge(hf_model: nn.Module, name: str) -> nn.Module:
    """Wrap a local HF image classifier in a TransformerBridge, offline (imports transformer_lens)."""
    from transformer_lens.model_bridge import TransformerBridge

    if not getattr(hf_model.config, "architectures", None):
        # boot_transformers picks its architecture adapter from config.architectures.
        hf_model.config.architectures = [type(hf_model).__name__]
    try:
        return TransformerBridge.boot_transformers(name, hf_model=hf_model, device="cpu")
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnifiedVizError(
            f"TransformerLens cannot wrap {type(hf_model).__name__} ({first[:160]}); "
            "its vision support covers Hugging Face ViT/DeiT image classifiers"
        ) from None
