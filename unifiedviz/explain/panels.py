"""One PNG per image: the original, each method's map as an overlay, and the unit's AM image.

The tiles and their captions are drawn by the shared `report.images.labelled_grid` (one row), so
each panel carries the same `unifiedviz:legend` as every grid: the tiles' labels in order.
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from ..report.images import labelled_grid, write_image

TILE = 128


def overlay(image: torch.Tensor, amap: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """The image in grey with the map (scaled to [0, 1] by its max |value|) as a red-yellow heat layer."""
    grey = image.mean(0, keepdim=True).expand(3, -1, -1)
    m = amap.abs()
    m = m / m.max() if float(m.max()) > 0 else m
    heat = torch.stack([m.clamp(0, 1) * 0 + 1.0, m, torch.zeros_like(m)]) * m.unsqueeze(0)
    return ((1 - alpha * m) * grey + alpha * heat).clamp(0, 1)


def panel(image: torch.Tensor, maps: dict[str, torch.Tensor], captions: dict[str, str], am: torch.Tensor | None,
          title: str) -> Image.Image:
    """The panel as a PIL image (Jupyter shows it): `title` above; original, overlays, AM image, each captioned."""
    tiles, labels = [image], ["original"]
    for name, amap in maps.items():
        tiles.append(overlay(image, amap))
        labels.append(f"{name}\n{captions[name]}" if captions.get(name) else name)
    if am is not None:
        tiles.append(am)
        labels.append("AM image of the unit")
    return labelled_grid(tiles, labels, ncols=len(tiles), tile=TILE, title=title)


def save_panel(path: str | Path, image: torch.Tensor, maps: dict[str, torch.Tensor], captions: dict[str, str],
               am: torch.Tensor | None, title: str) -> None:
    """Write `panel(...)` to `path` as PNG (atomically), its legend included."""
    write_image(panel(image, maps, captions, am, title), path)


__all__ = ["overlay", "panel", "save_panel"]
