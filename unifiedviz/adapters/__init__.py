"""Hook-based adapters: list layers, capture canonical activations, resolve unit addresses."""
from .convert import as_adapter
from .core import LOGITS, Adapter, LayerInfo, ResolvedUnit
from .layouts import (
    AGGREGATE,
    LAYOUTS,
    AttentionLayout,
    ConvLayout,
    HeadsLayout,
    Layout,
    OtherLayout,
    SequenceLayout,
    TokensLayout,
    VectorLayout,
    call_name,
    layout_for,
    split_call,
)

__all__ = [
    "as_adapter", "Adapter", "LayerInfo", "ResolvedUnit", "LOGITS",
    "Layout", "ConvLayout", "TokensLayout", "HeadsLayout", "AttentionLayout", "SequenceLayout", "VectorLayout",
    "OtherLayout", "LAYOUTS", "layout_for", "split_call", "call_name", "AGGREGATE",
]
