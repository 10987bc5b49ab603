"""One PNG panel per attacked image: original | amplified perturbation | adversarial | top predictions.

Drawn with Pillow (no matplotlib figure per image, so hundreds of panels take seconds). The
perturbation is shown as `0.5 + delta * k` with `k = 0.5 / max|delta|` (grey = unchanged,
brighter = added, darker = removed) and `k` in its caption.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from unifiedviz.report.images import LEGEND_KEY, font, html_image, labelled_grid, legend_text, png_bytes, write_image

from .metrics import AttackResult

TILE = 128  # displayed size of each image (nearest-neighbour upscaling, never smaller than the image)
PAD = 8
BAR = 150  # width of a probability of 1 in the predictions column
ROW = 16  # one prediction's line height


def amplified(delta: torch.Tensor) -> tuple[torch.Tensor, float]:
    """`0.5 + delta * k` in [0, 1] and the factor `k` (1 when delta is all zero)."""
    peak = float(delta.abs().max())
    k = 0.5 / peak if peak > 0 else 1.0
    return (0.5 + delta * k).clamp(0, 1), k


def _name(result: AttackResult, index: int) -> str:
    names = result.class_names
    return f"{index} {names[index]}" if names and names[index] != str(index) else str(index)


def panel(result: AttackResult, i: int, *, top: int = 5) -> Image.Image:
    """The panel image for result image `i` (a PIL image: Jupyter shows it); its legend names the three tiles."""
    orig, adv = result.images[i], result.adversarial[i]
    pert, k = amplified(adv - orig)
    ok = bool(result.success[i])
    verdict = "already target, not counted" if not bool(result.eligible[i]) else "success" if ok else "failed"
    lab = _name(result, int(result.labels[i]))
    labels = [
        (f"original  (label {lab})" if result.labels_from == "given" else "original")
        + f"\npred {_name(result, int(result.clean_pred[i]))}  p={float(result.clean_conf[i]):.2f}",
        f"perturbation x{k:.3g}\nlinf {float(result.linf[i]):.4f}  l2 {float(result.l2[i]):.3f}",
        f"adversarial  ({verdict})\npred {_name(result, int(result.adv_pred[i]))}  p={float(result.adv_conf[i]):.2f}"
        + (f"  target {_name(result, int(result.targets[i]))}" if result.targeted else ""),
    ]
    h, w = orig.shape[-2:]
    tiles = labelled_grid([orig, pert, adv], labels, ncols=3, tile=w * max(1, TILE // max(h, w)))
    columns = [("clean: top predictions", result.clean_probs[i], (70, 110, 180)),
               ("adversarial: top predictions", result.adv_probs[i], (200, 70, 60))]
    f, bold = font(11), font(12)
    measure = ImageDraw.Draw(tiles)
    rows = [_top(result, probs, top) for _, probs, _ in columns]
    name_w = max(measure.textlength(name, font=f) for row in rows for name, _ in row)
    title_w = max(measure.textlength(title, font=bold) for title, _, _ in columns)
    value_w = measure.textlength("1.00", font=f)
    bar_x = int(name_w) + 8
    side = max(int(title_w), bar_x + BAR + 4 + int(value_w)) + PAD  # the widest value text still fits
    column_h = PAD + sum(18 + ROW * len(row) for row in rows) + 8 * (len(rows) - 1) + PAD
    canvas = Image.new("RGB", (tiles.width + PAD + side, max(tiles.height, column_h)), "white")
    canvas.paste(tiles, (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0, y = tiles.width + PAD, PAD
    for (title, _, colour), row in zip(columns, rows):
        draw.text((x0, y), title, fill=(0, 0, 0), font=bold)
        y += 18
        for name, v in row:
            bar = int(BAR * v)
            draw.rectangle((x0 + bar_x, y + 2, x0 + bar_x + max(bar, 1), y + 12), fill=colour)
            draw.text((x0, y), name, fill=(0, 0, 0), font=f)
            draw.text((x0 + bar_x + max(bar, 1) + 4, y), f"{v:.2f}", fill=(60, 60, 60), font=f)
            y += ROW
        y += 8
    canvas.info[LEGEND_KEY] = tiles.info[LEGEND_KEY]
    return canvas


def _top(result: AttackResult, probs: torch.Tensor, top: int) -> list[tuple[str, float]]:
    """The `top` most probable classes as (short name, probability), most probable first."""
    values, idx = probs.topk(min(top, probs.numel()))
    return [(_name(result, c)[:15], v) for v, c in zip(values.tolist(), idx.tolist())]


def overview(result: AttackResult, limit: int = 8) -> Image.Image:
    """The panels of the first `limit` images, one under another (Jupyter's view of a result).

    Its legend lists every panel's three tiles in reading order (3 columns, a row per image).
    """
    panels = [panel(result, i) for i in range(min(limit, len(result)))]
    canvas = Image.new("RGB", (max(p.width for p in panels), sum(p.height for p in panels)), "white")
    y = 0
    for p in panels:
        canvas.paste(p, (0, y))
        y += p.height
    labels = [label for p in panels for label in json.loads(p.info[LEGEND_KEY])["tiles"]]
    canvas.info[LEGEND_KEY] = legend_text(labels, 3)
    return canvas


def html(result: AttackResult, limit: int = 8) -> str:
    """The success line and the first `limit` panels as HTML with the PNG inline."""
    import html as escape

    shown = min(limit, len(result))
    more = f" (first {shown} of {len(result)} shown)" if shown < len(result) else ""
    return (f"<div><p>{escape.escape(result.success_line())}{more}</p>"
            f"{html_image(png_bytes(overview(result, limit)), 'attack panels')}</div>")


def save_panel(result: AttackResult, i: int, path: str | Path, *, top: int = 5) -> None:
    """Write image `i`'s panel as PNG (atomically)."""
    write_image(panel(result, i, top=top), path)


__all__ = ["panel", "save_panel", "amplified", "overview", "html"]
