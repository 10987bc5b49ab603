"""`LAYER:latent=K`: a sparse-dictionary latent, read as its encoder direction (pre-activation).

The dictionary is a file written by `unifiedviz dictionary train` (`dictionary.safetensors`),
named by `use_dictionary(path)`, `dictionary_in_use(path)` (a context; `unifiedviz visualize
--dictionary FILE`) or the environment variable UNIFIEDVIZ_DICTIONARY. The value
per image is the latent's pre-activation `w_K . ((x - mean)/scale - b_dec) + b_K` at every
position, averaged like `channel` (conv: spatial mean; tokens: patch tokens, prefix excluded) or
read at `y=`/`x=`/`token=`: linear in the activations, so activation maximisation gets gradients
even where a TopK latent would be silent.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ..errors import UnifiedVizError
from . import unit_kind

ENV = "UNIFIEDVIZ_DICTIONARY"
_current: str | None = None


def use_dictionary(path: str | None) -> None:
    """Name the dictionary file `latent=` units read (None: fall back to $UNIFIEDVIZ_DICTIONARY)."""
    global _current
    _current = None if path is None else str(path)


@contextmanager
def dictionary_in_use(path: str | os.PathLike | None) -> Iterator[None]:
    """Inside the block `latent=` units read `path` (None: leave the current choice as it is);
    the earlier choice comes back on exit. `unifiedviz visualize --dictionary FILE` runs in one."""
    global _current
    before = _current
    if path is not None:
        _current = str(path)
    try:
        yield
    finally:
        _current = before


def _prepare(unit, info) -> dict:
    from superposition.dictionaries import (
        load_dictionary,  # the dictionary code lives with superposition
    )

    path = _current or os.environ.get(ENV)
    if not path:
        raise UnifiedVizError(f"latent= needs a dictionary: pass --dictionary FILE or set {ENV}=FILE "
                              "(from 'unifiedviz dictionary train')")
    sae, meta = load_dictionary(path)
    width = info.layout.feature_width(info.shape)
    if width != sae.d_in:
        raise UnifiedVizError(f"dictionary {path!r} was trained on {sae.d_in} features ({meta.get('layer')!r}) but "
                              f"layer {info.name!r} has {width}: give the dictionary of this layer")
    if not 0 <= unit.index < sae.n_latents:
        raise UnifiedVizError(f"latent {unit.index} is out of range for {path!r}: valid latents are "
                              f"0..{sae.n_latents - 1}")
    w = sae.W_enc.detach()[unit.index] / sae.scale
    bias = sae.b_enc.detach()[unit.index] - (sae.mean / sae.scale + sae.b_dec.detach()) @ sae.W_enc.detach()[unit.index]
    # the encoder direction as a `direction=` vector plus a constant
    return {"direction": torch.cat([w, bias.view(1)])}


@unit_kind("latent", index_axis=None, prepare=_prepare,
           help="a sparse-dictionary latent's encoder pre-activation (dictionary: --dictionary FILE "
                "or $UNIFIEDVIZ_DICTIONARY)")
def read_latent(r, t: torch.Tensor) -> torch.Tensor:
    v = r.direction.to(t)
    layout = r.info.layout
    return layout.reduce_positions(layout.project(t, v[:-1]) + v[-1], r.unit, mean=True)
