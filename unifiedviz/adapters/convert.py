"""`as_adapter`: the one way any model argument (source string, module, VizModel, Adapter) becomes an Adapter."""
from __future__ import annotations

from torch import nn

from ..errors import UnifiedVizError
from .core import Adapter


def as_adapter(model) -> Adapter:
    """An `Adapter` for `model`: an Adapter as is; a source string or a module through `load_model`
    (which reads a module's input contract, or warns that it guessed one)."""
    if isinstance(model, Adapter):
        return model
    if isinstance(model, (str, nn.Module)):
        from ..models import load_model

        return Adapter(load_model(model))
    raise UnifiedVizError(f"model must be a source string, an nn.Module or an Adapter, not {type(model).__name__}")
