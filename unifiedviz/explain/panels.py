"""One PNG per image: the original, each method's map as an overlay, and the unit's AM image."""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from ..report import atomic_path, to_uint8

TILE = 128
CAPTION = 30
PAD = 6


def _font():
    try:
        return ImageFont.load_default(size=11)
    except TypeError:
        return ImageFont.load_default()


def _tile(image: torch.Tensor) -> Image.Image:
    arr = to_uint8(image)
    img = Image.fromarray(arr, mode="RGB" if arr.ndim == 3 else "L").convert("RGB")
    w, h = img.size
    return img.resize((TILE, max(1, round(TILE * h / w))), Image.NEAREST)


def overlay(image: torch.Tensor, amap: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """The image in grey with the map (scaled to [0, 1] by its max |value|) as a red-yellow heat layer."""
    grey = image.mean(0, keepdim=True).expand(3, -1, -1)
    m = amap.abs()
    m = m / m.max() if float(m.max()) > 0 else m
    heat = torch.stack([m.clamp(0, 1) * 0 + 1.0, m, torch.zeros_like(m)]) * m.unsqueeze(0)
    return ((1 - alpha * m) * grey + alpha * heat).clamp(0, 1)


def save_panel(path: str | Path, image: torch.Tensor, maps: dict[str, torch.Tensor], captions: dict[str, str],
               am: torch.Tensor | None, title: str) -> None:
    tiles = [(_tile(image), [title, "original"])]
    for name, amap in maps.items():
        tiles.append((_tile(overlay(image, amap)), [name, captions.get(name, "")]))
    if am is not None:
        tiles.append((_tile(am), ["AM image of the unit", ""]))
    th = max(t.size[1] for t, _ in tiles)
    canvas = Image.new("RGB", (PAD + len(tiles) * (TILE + PAD), PAD + th + CAPTION), "white")
    draw = ImageDraw.Draw(canvas)
    font = _font()
    for j, (tile, lines) in enumerate(tiles):
        x0 = PAD + j * (TILE + PAD)
        canvas.paste(tile, (x0, PAD))
        for r, line in enumerate(lines):
            draw.text((x0, PAD + th + 2 + 13 * r), line[:24], fill=(0, 0, 0), font=font)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")


__all__ = ["overlay", "save_panel"]
