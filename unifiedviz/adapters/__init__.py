"""Hook-based adapters: list layers, capture canonical activations, resolve unit addresses."""
from .core import LOGITS, Adapter, LayerInfo, ResolvedUnit
from .layouts import Layout

__all__ = ["Adapter", "LayerInfo", "Layout", "ResolvedUnit", "LOGITS"]
