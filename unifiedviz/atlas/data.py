"""What the atlas lists and what data says about each unit: values per image, exemplars, spatial maps.

`atlas_units` expands `LAYER[:selector]` into unit addresses (a bare layer: every feature, read
with the layout's own key, or every head of an attention layer) and, with a dictionary, appends
its latents (`LAYER:latent=K`). `unit_values` reads every unit on every image, `[N, U]`: a
neuron's value is what its address reads (`read_unit`: a conv channel's spatial mean, ...); a
latent's is the dictionary's code averaged over the image's positions (`per_image`, as in the
dictionary report), i.e. how much the latent *fires*, not its pre-activation (which its AM
image maximises). `unit_maps` gives a unit's value at every position of an image, as a 2-D grid
for the heatmaps: a feature map, a latent's code per position, a head's output strength per
token or, on attention probabilities, where the head attends (mean over queries).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..adapters import Adapter, ResolvedUnit
from ..errors import UnifiedVizError
from ..objectives import read_unit
from ..units import parse_units

if TYPE_CHECKING:
    from superposition.dictionaries import SparseAutoencoder


@dataclass(frozen=True)
class Dictionary:
    """A sparse dictionary the atlas lists latents of: its file (what `latent=` units read) and the model."""

    path: str
    sae: "SparseAutoencoder"
    layer: str | None = None  # the layer it was trained on

    @classmethod
    def load(cls, path: str) -> "Dictionary":
        from superposition.dictionaries import load_dictionary

        sae, meta = load_dictionary(path)
        return cls(str(path), sae, meta.get("layer") or None)


@dataclass(frozen=True)
class AtlasUnit:
    """One row of the atlas: its address, where it reads, and whether it is a dictionary latent."""

    address: str
    resolved: ResolvedUnit

    @property
    def latent(self) -> bool:
        return self.resolved.unit.kind == "latent"


def atlas_units(adapter: Adapter, spec: str, dictionary: Dictionary | None = None) -> list[AtlasUnit]:
    """The units `spec` (`LAYER` or `LAYER:selector`) names, then the dictionary's latents on LAYER.

    Every address is resolved (range-checked) here, latents against `dictionary` (held in
    `dictionary_in_use` while they resolve). Bad layers and units raise a one-line `UnifiedVizError`.
    """
    from ..unit_kinds.latent import dictionary_in_use

    layer = spec.split(":", 1)[0]
    if not layer:
        raise UnifiedVizError(f"atlas needs a layer: write LAYER or LAYER:selector, e.g. 'conv2', not {spec!r}")
    info = adapter.layer(layer)
    if dictionary is not None and dictionary.layer not in (None, layer):
        raise UnifiedVizError(f"dictionary {dictionary.path!r} was trained on layer {dictionary.layer!r}, not "
                              f"{layer!r}: give that layer, or the dictionary of {layer!r}")
    if ":" in spec:
        addresses = [u.address() for u in parse_units(spec)]
    else:
        addresses = _every_unit(info)
    with dictionary_in_use(dictionary.path if dictionary else None):
        if dictionary is not None:
            addresses += [f"{layer}:latent={k}" for k in range(dictionary.sae.n_latents)]
        addresses = list(dict.fromkeys(addresses))
        return [AtlasUnit(a, adapter.resolve(a)) for a in addresses]


def _every_unit(info) -> list[str]:
    layout, shape = info.layout, info.shape
    if not layout.readable:
        raise UnifiedVizError(f"no unit reads {info.where()}: pick a conv, token, vector or attention layer "
                              "('unifiedviz layers MODEL' lists them)")
    width = layout.feature_width(shape)
    if width is not None:
        return [f"{info.name}:{layout.unit_key}={i}" for i in range(width)]
    heads = layout.head_count(shape, 0)
    if heads:
        return [f"{info.name}:head={h}" for h in range(heads)]
    raise UnifiedVizError(f"{info.where()} has neither features nor heads to list: give a selector, "
                          f"e.g. '{info.name}:token=0'")


@torch.no_grad()
def unit_values(adapter: Adapter, units: list[AtlasUnit], images: torch.Tensor,
                dictionary: Dictionary | None = None, batch_size: int = 256) -> torch.Tensor:
    """Every unit's value on every image, `[N, U]` (see the module doc for latents)."""
    from superposition.dictionaries import rows_of
    from superposition.dictionaries.metrics import per_image

    targets = list(dict.fromkeys(u.resolved.target for u in units))
    columns: list[torch.Tensor] = []
    with adapter.session(targets) as run:
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size]
            acts = run(x)
            codes = {}
            row = []
            for u in units:
                r = u.resolved
                if u.latent:
                    if r.target not in codes:
                        rows = rows_of(r.info.layout, acts[r.target]).float()
                        codes[r.target] = per_image(dictionary.sae, rows, len(rows) // len(x))[1]
                    row.append(codes[r.target][:, r.unit.index])
                else:
                    row.append(read_unit(r, acts[r.target]).float())
            columns.append(torch.stack(row, 1).cpu())
    return torch.cat(columns)


@torch.no_grad()
def predicted_labels(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The model's top class on each image `[N]`: the classes of an atlas over unlabelled data."""
    out = [model(images[s : s + batch_size]) for s in range(0, len(images), batch_size)]
    if out[0].dim() != 2:
        raise UnifiedVizError("--labels predicted needs a classifier whose output is [batch, classes]")
    return torch.cat(out).argmax(1).cpu()


@torch.no_grad()
def unit_maps(adapter: Adapter, unit: AtlasUnit, images: torch.Tensor,
              dictionary: Dictionary | None = None) -> torch.Tensor | None:
    """The unit at every position of each image, `[n, h, w]`, or None when it has no spatial map
    (vector layers, class logits, token units)."""
    r = unit.resolved
    t = adapter.capture(images, [r.target])[r.target].float()
    layout, kind = r.info.layout, r.unit.kind
    if unit.latent:
        from superposition.dictionaries import rows_of

        code = dictionary.sae.encode(rows_of(layout, t))[:, r.unit.index]
        if layout.kind == "conv":
            return code.view(t.shape[0], t.shape[2], t.shape[3])
        return _grid(code.view(t.shape[0], -1), prefix=0)
    if kind in ("channel", "neuron") and layout.kind in ("conv", "tokens", "heads"):
        m = layout.feature_map(t, r.unit.index)
    elif kind == "head" and layout.kind == "attention":
        m = t[:, r.unit.index].mean(1)  # attention paid to each key, averaged over queries
    elif kind == "head" and layout.kind in ("tokens", "heads"):
        m = layout.head_map(t, r.unit.index, r.heads)
    else:
        return None
    if m.dim() == 3:  # conv: already [n, H, W]
        return m
    return _grid(m, prefix=layout.prefix)  # a unit read at one token still shows the whole map


def _grid(m: torch.Tensor, prefix: int) -> torch.Tensor | None:
    """Token values `[n, T]` -> `[n, side, side]` over the patch tokens (None if they are not a square)."""
    patches = m[:, prefix:]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1] or side < 2:
        return None
    return patches.reshape(len(m), side, side)


def exemplars(values: torch.Tensor, k: int) -> tuple[list[int], list[int]]:
    """Indices of the `k` images with the highest values (highest first) and the `k` lowest (lowest
    first); ties broken by image order, so the choice is the same on every run."""
    v = [float(x) for x in values]
    top = sorted(range(len(v)), key=lambda i: (-v[i], i))[:k]
    bottom = sorted(range(len(v)), key=lambda i: (v[i], i))[:k]
    return top, bottom


__all__ = ["Dictionary", "AtlasUnit", "atlas_units", "unit_values", "unit_maps", "exemplars"]
