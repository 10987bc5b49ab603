"""What model families hide from a plain forward hook, and how to get it back.

- timm attention blocks use fused attention (`F.scaled_dot_product_attention`), so the
  probabilities never pass through `attn_drop`; we switch fusion off only while capturing.
- Per-head outputs: timm's `Attention.norm` (Identity before `proj`) carries all heads
  concatenated; Hugging Face self-attention modules return them concatenated too. We split
  them with the module's head count.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn


def head_count(module: nn.Module) -> int:
    for attr in ("num_heads", "num_attention_heads", "n_heads"):
        value = getattr(module, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    config = getattr(module, "config", None)
    value = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", None)
    return value if isinstance(value, int) else 0


def head_output_target(name: str, module: nn.Module, modules: dict[str, nn.Module]) -> tuple[str, int] | None:
    """(module to hook, number of heads) for a `head=` unit on attention module `name`.

    None when the module does not expose per-head outputs (the caller explains).
    """
    heads = head_count(module)
    if not heads:
        return None
    # timm: the output of `attn` is already mixed by `proj`; `attn.norm` is the last point
    # where heads are still separate (concatenated along D).
    if hasattr(module, "proj") and f"{name}.norm" in modules:
        return f"{name}.norm", heads
    # TransformerLens: hook_z is the attention output before the output projection, per head
    # ([B, T, heads, d_head] in HookedTransformer, flattened [B, T, D] in 4.x bridges).
    if f"{name}.hook_z" in modules:
        return f"{name}.hook_z", heads
    # Hugging Face self-attention returns (context [B,T,D], probs?) with heads concatenated.
    if not hasattr(module, "proj") and not hasattr(module, "o_proj"):
        return name, heads
    return None


@contextlib.contextmanager
def unfused_attention(modules: dict[str, nn.Module], names: list[str] | None = None) -> Iterator[None]:
    """Turn off fused attention on the attention modules owning `names` (all when None)."""
    switched: list[nn.Module] = []
    for mod_name, mod in modules.items():
        if getattr(mod, "fused_attn", None) is not True:
            continue
        if names is not None and not any(n.startswith(mod_name + ".") for n in names):
            continue
        mod.fused_attn = False
        switched.append(mod)
    try:
        yield
    finally:
        for mod in switched:
            mod.fused_attn = True
