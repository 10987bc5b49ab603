"""One PNG panel per attacked image: original | amplified perturbation | adversarial | top predictions.

Drawn with Pillow (no matplotlib figure per image, so hundreds of panels take seconds). The
perturbation is shown as `0.5 + delta * k` with `k = 0.5 / max|delta|` (grey = unchanged,
brighter = added, darker = removed) and `k` in its caption.
"""
from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from unifiedviz.report import atomic_path, to_uint8

from .metrics import AttackResult

TILE = 128  # displayed size of each image (nearest-neighbour upscaling, never smaller than the image)
CAPTION = 46
SIDE = 290  # width of the predictions column
PAD = 8


def _font(size: int = 12):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


def amplified(delta: torch.Tensor) -> tuple[torch.Tensor, float]:
    """`0.5 + delta * k` in [0, 1] and the factor `k` (1 when delta is all zero)."""
    peak = float(delta.abs().max())
    k = 0.5 / peak if peak > 0 else 1.0
    return (0.5 + delta * k).clamp(0, 1), k


def _tile(image: torch.Tensor) -> Image.Image:
    arr = to_uint8(image)
    img = Image.fromarray(arr if arr.ndim == 3 else arr, mode="RGB" if arr.ndim == 3 else "L").convert("RGB")
    w, h = img.size
    scale = max(1, TILE // max(w, h))
    return img.resize((w * scale, h * scale), Image.NEAREST)


def _name(result: AttackResult, index: int) -> str:
    names = result.class_names
    return f"{index} {names[index]}" if names and names[index] != str(index) else str(index)


def panel(result: AttackResult, i: int, *, top: int = 5) -> Image.Image:
    """The panel image for result image `i`."""
    orig, adv = result.images[i], result.adversarial[i]
    pert, k = amplified(adv - orig)
    tiles = [_tile(orig), _tile(pert), _tile(adv)]
    tw = max(t.size[0] for t in tiles)
    th = max(t.size[1] for t in tiles)
    width = PAD + 3 * (tw + PAD) + SIDE
    height = PAD + max(th + CAPTION, 18 * (2 * top + 3)) + PAD
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font, bold = _font(11), _font(12)
    ok = bool(result.success[i])
    verdict = "already target, not counted" if not bool(result.eligible[i]) else "success" if ok else "failed"
    lab = _name(result, int(result.labels[i]))
    captions = [
        [f"original  (label {lab})" if result.labels_from == "given" else "original",
         f"pred {_name(result, int(result.clean_pred[i]))}  p={float(result.clean_conf[i]):.2f}"],
        [f"perturbation x{k:.3g}", f"linf {float(result.linf[i]):.4f}  l2 {float(result.l2[i]):.3f}"],
        [f"adversarial  ({verdict})",
         f"pred {_name(result, int(result.adv_pred[i]))}  p={float(result.adv_conf[i]):.2f}"
         + (f"  target {_name(result, int(result.targets[i]))}" if result.targeted else "")],
    ]
    for j, (tile, lines) in enumerate(zip(tiles, captions)):
        x0 = PAD + j * (tw + PAD)
        canvas.paste(tile, (x0, PAD))
        for r, line in enumerate(lines):
            draw.text((x0, PAD + th + 4 + 14 * r), line, fill=(0, 0, 0) if r else (20, 20, 120), font=font)
    x0 = PAD + 3 * (tw + PAD)
    y = PAD
    for title, probs, colour in (("clean: top predictions", _probs(result, "clean", i), (70, 110, 180)),
                                 ("adversarial: top predictions", _probs(result, "adv", i), (200, 70, 60))):
        draw.text((x0, y), title, fill=(0, 0, 0), font=bold)
        y += 18
        values, idx = probs.topk(min(top, probs.numel()))
        for v, c in zip(values.tolist(), idx.tolist()):
            bar = int((SIDE - 120) * v)
            draw.rectangle((x0 + 100, y + 2, x0 + 100 + max(bar, 1), y + 12), fill=colour)
            label = _name(result, c)
            draw.text((x0, y), label[:15], fill=(0, 0, 0), font=font)
            draw.text((x0 + 104 + bar, y), f"{v:.2f}", fill=(60, 60, 60), font=font)
            y += 16
        y += 8
    return canvas


def _probs(result: AttackResult, which: str, i: int) -> torch.Tensor:
    probs = result.clean_probs if which == "clean" else result.adv_probs
    return probs[i]


def save_panel(result: AttackResult, i: int, path: str | Path, *, top: int = 5) -> None:
    """Write image `i`'s panel as PNG (atomically)."""
    img = panel(result, i, top=top)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


__all__ = ["panel", "save_panel", "amplified"]
