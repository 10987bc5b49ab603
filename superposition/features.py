"""Per-image features at named layers, captured through the toolkit's `Adapter`."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from unifiedviz.adapters import LOGITS, Adapter
from unifiedviz.errors import UnifiedVizError

# Which canonical dimensions to average to get one value per unit (channel / feature).
_UNIT_AXES = {"conv": (2, 3), "sequence": (2,), "tokens": (1,), "vector": ()}


@dataclass
class Features:
    """`flat[layer]` is [N, D] (each image's activation, flattened); `units[layer]` is [N, C]."""

    flat: dict[str, torch.Tensor]
    units: dict[str, torch.Tensor]
    logits: torch.Tensor | None
    labels: torch.Tensor


@torch.no_grad()
def extract(
    model: torch.nn.Module,
    loader: DataLoader,
    layers: list[str],
    *,
    device: torch.device | str = "cpu",
    logits: bool = False,
    progress: bool = False,
    desc: str = "features",
) -> Features:
    """Run `loader` through `model` once and keep the activations of `layers` (and the logits)."""
    model.to(device)
    adapter = Adapter(model)
    targets = list(layers) + ([LOGITS] if logits else [])
    axes = {}
    for name in layers:
        kind = adapter.layer(name).layout.kind
        if kind not in _UNIT_AXES:
            raise UnifiedVizError(f"layer {name!r} has a {kind} layout: measure a conv, token or vector layer instead")
        axes[name] = _UNIT_AXES[kind]
    flat: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    units: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    outs, labels = [], []
    with adapter.session(targets) as run:
        for x, y in tqdm(loader, desc=desc, leave=False, disable=not progress):
            captured = run(x.to(device))
            for name in layers:
                act = captured[name].float()
                flat[name].append(act.flatten(1).cpu())
                units[name].append((act.mean(dim=axes[name]) if axes[name] else act).cpu())
            if logits:
                outs.append(captured[LOGITS].float().cpu())
            labels.append(y)
    return Features(
        flat={n: torch.cat(v) for n, v in flat.items()},
        units={n: torch.cat(v) for n, v in units.items()},
        logits=torch.cat(outs) if logits else None,
        labels=torch.cat(labels),
    )
