"""The built-in unit kinds, in grammar order. Each reader asks the layout, never a kind string:

    channel    a feature's mean over positions (conv/sequence: spatial; tokens/heads: patch tokens,
               prefix excluded), or the position `y=`/`x=`/`token=` names; vector: the entry
    neuron     one position of a feature (`y=`/`x=`, default the centre; tokens: as channel)
    head       one attention head: its concentration (attention probabilities) or the mean square
               of its output (per-head outputs), over patch tokens or at `token=`
    class      a logit (no layer: the model output); read like neuron
    direction  the projection of every position's features on a saved vector, reduced like channel
    token      alone: how strongly a token position is written (mean square of its vector)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..adapters.families import head_output_target
from ..adapters.layouts import split_call, token_index
from ..errors import UnifiedVizError
from . import unit_kind


@unit_kind("channel", help="a conv channel's spatial mean, a token feature's mean over patch tokens, a vector entry")
def read_channel(r, t: torch.Tensor) -> torch.Tensor:
    layout = r.info.layout
    return layout.reduce_positions(layout.feature_map(t, r.unit.index), r.unit, mean=True)


@unit_kind("neuron", help="one position of a feature (y=/x= or token=, default the centre), a vector entry")
def read_neuron(r, t: torch.Tensor) -> torch.Tensor:
    layout = r.info.layout
    return layout.reduce_positions(layout.feature_map(t, r.unit.index), r.unit, mean=False)


def _head_target(adapter, unit) -> tuple[str, int]:
    """Per-head outputs of an attention module (timm `attn.norm`, TL `hook_z`, HF self-attention)."""
    assert unit.layer is not None
    info = adapter.layer(unit.layer)
    if info.layout.head_count(info.shape, 0) is not None:  # attention probabilities or per-head outputs
        return unit.layer, 0
    module = adapter.modules[split_call(unit.layer)[0]]
    found = head_output_target(unit.layer, module, adapter.modules)
    if found is None:
        # HF attention computes probabilities in a function and merges heads only inside o_proj.
        hint = ("its heads never leave it as a module output: load a Hugging Face ViT as tl:DIR and address "
                "'blocks.N.attn:head=H'") if hasattr(module, "o_proj") else (
                "address the attention module itself (e.g. 'blocks.4.attn:head=2') or its probabilities "
                "('blocks.4.attn.attn_drop')")
        raise UnifiedVizError(f"layer {unit.layer!r} is not an attention module with per-head outputs: {hint}")
    target, heads = found
    # Already split per head (e.g. HookedTransformer's [B,T,heads,d] hook_z): nothing to reshape.
    target_info = adapter.layer(target)
    return target, 0 if target_info.layout.head_count(target_info.shape, 0) is not None else heads


@unit_kind("head", index_axis="head", target=_head_target,
           help="one attention head: concentration of its probabilities, or mean square of its output")
def read_head(r, t: torch.Tensor) -> torch.Tensor:
    layout = r.info.layout
    return layout.reduce_positions(layout.head_map(t, r.unit.index, r.heads), r.unit, mean=True)


@unit_kind("class", layerless=True, logit=True, help="a logit; with no layer, the model output")
def read_class(r, t: torch.Tensor) -> torch.Tensor:
    return read_neuron(r, t)


def _load_direction(unit, info) -> dict:
    path = Path(unit.direction or "")
    width = info.layout.feature_width(info.shape)
    if width is None:
        raise UnifiedVizError(f"direction= does not apply to {info.where()}: it has no feature axis to project")
    if not path.is_file():
        raise UnifiedVizError(f"direction file {str(path)!r} not found: save a 1-D vector with numpy.save")
    try:
        vec = np.load(path, allow_pickle=False)  # never unpickle a user file
    except ValueError as exc:
        raise UnifiedVizError(f"cannot read direction file {str(path)!r} ({exc}): save it with numpy.save") from None
    if vec.ndim != 1 or vec.shape[0] != width:
        raise UnifiedVizError(
            f"direction in {str(path)!r} has shape {list(vec.shape)} but layer {info.name!r} has {width} "
            f"features: save a 1-D vector of length {width}"
        )
    return {"direction": torch.as_tensor(vec, dtype=torch.float32)}


@unit_kind("direction", value="file", index_axis=None, prepare=_load_direction,
           help="the projection on a saved 1-D vector (e.g. a CAV), reduced like channel")
def read_direction(r, t: torch.Tensor) -> torch.Tensor:
    layout = r.info.layout
    return layout.reduce_positions(layout.project(t, r.direction.to(t)), r.unit, mean=True)


@unit_kind("token", value="token", index_axis=None,
           help="alone: how strongly a token position is written; with another key: the position it reads")
def read_token(r, t: torch.Tensor) -> torch.Tensor:
    return r.info.layout.token_features(t, token_index(r.unit.token)).pow(2).mean(-1)
