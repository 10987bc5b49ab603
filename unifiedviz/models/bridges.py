"""TransformerLens 4.x `TransformerBridge` models: detect one, boot one, find the HF model inside.

A bridge wraps a Hugging Face image classifier, whose config carries the input contract.
Listing and hooking a bridge's layers lives in `adapters/transformer_lens.py`.

Nothing here imports transformer_lens at module level (it takes ~5 s); only `boot_bridge`
does, when asked to.
"""
from __future__ import annotations

from torch import nn

from ..errors import UnifiedVizError


def is_bridge(module: nn.Module) -> bool:
    """True for a TransformerLens bridge (checked by type, without importing transformer_lens)."""
    return type(module).__module__.startswith("transformer_lens.") and hasattr(module, "hook_dict")


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
