"""Real sequences for a model, in the model's [0, 1] input space.

`REFERENCE_SETS` names the UCR set each built-in sequence model was trained on, so plots and
measures can put a dreamed sequence next to its class's real ones.
"""
from __future__ import annotations

import torch

from ..errors import UnifiedVizError
from ..models.spec import InputSpec
from .ucr import SequenceData, load_ucr

#: Model source -> the UCR set it was trained on (found offline in aeon's bundled data).
REFERENCE_SETS = {"builtin:gunpoint-cnn": "GunPoint"}


def to_unit_range(x: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """Data values -> the [0, 1] inputs a `VizModel` takes (inverse of its `value_range` map), clamped."""
    lo, hi = spec.value_range
    return ((x - lo) / (hi - lo)).clamp(0.0, 1.0)


def from_unit_range(x: torch.Tensor, spec: InputSpec) -> torch.Tensor:
    """[0, 1] model inputs -> data values."""
    lo, hi = spec.value_range
    return x * (hi - lo) + lo


def reference_set(source: str) -> str | None:
    """The UCR set a model source was trained on, if the toolkit knows it."""
    return REFERENCE_SETS.get(source)


def model_sequences(source: str, spec: InputSpec, split: str = "train", **kwargs) -> SequenceData:
    """The real sequences of the set `source` was trained on, mapped into [0, 1] for `spec`."""
    name = reference_set(source)
    if name is None:
        raise UnifiedVizError(f"no reference data known for {source!r}; load sequences with load_ucr(NAME, root=DIR)")
    data = load_ucr(name, split, **kwargs)
    if tuple(data.x.shape[1:]) != tuple(spec.shape):
        raise UnifiedVizError(f"{name} sequences have shape {tuple(data.x.shape[1:])}, the model takes {spec.shape}")
    return SequenceData(to_unit_range(data.x, spec), data.y, data.classes, data.name, data.source)


__all__ = ["REFERENCE_SETS", "from_unit_range", "model_sequences", "reference_set", "to_unit_range"]
