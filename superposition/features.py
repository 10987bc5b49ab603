"""Per-image features at named layers, captured through the toolkit's `Adapter`."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from unifiedviz.adapters import LOGITS, Adapter
from unifiedviz.errors import UnifiedVizError

@dataclass
class Features:
    """`flat[layer]` is [N, D] (each image's activation, flattened); `units[layer]` is [N, C].

    `units` is the layout's `unit_means`: one value per channel / feature, the same reduction a
    `channel=` unit reads (conv: spatial mean; tokens: mean over patch tokens, prefix excluded).
    """

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
    layouts = {}
    for name in layers:
        layout = adapter.layer(name).layout
        if layout.unit_axes is None:
            raise UnifiedVizError(
                f"layer {name!r} has a {layout.kind} layout: measure a conv, token or vector layer instead"
            )
        layouts[name] = layout
    flat: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    units: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    outs, labels = [], []
    with adapter.session(targets) as run:
        for x, y in tqdm(loader, desc=desc, leave=False, disable=not progress):
            captured = run(x.to(device))
            for name in layers:
                act = captured[name].float()
                flat[name].append(act.flatten(1).cpu())
                units[name].append(layouts[name].unit_means(act).cpu())
            if logits:
                outs.append(captured[LOGITS].float().cpu())
            labels.append(y)
    return Features(
        flat={n: torch.cat(v) for n, v in flat.items()},
        units={n: torch.cat(v) for n, v in units.items()},
        logits=torch.cat(outs) if logits else None,
        labels=torch.cat(labels),
    )
