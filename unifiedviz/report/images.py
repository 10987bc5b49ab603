"""PNG output for [0, 1] tensors: single images, labelled grids, and 1-D sequences drawn as curves.

Every grid PNG a command writes names its tiles twice: drawn under each tile (wrapped to the
tile's width, for people) and, exactly, in a legend stored inside the PNG as the text chunk
`unifiedviz:legend` (for programs): `{"columns": C, "rows": R, "tiles": [label, ...]}` with the
tiles in reading order (row by row). `read_legend(path)` reads it back; so do
`PIL.Image.open(path).text` and `exiftool`. The legend travels with the picture and adds no file
to a run folder.
"""
from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo

from .files import atomic_path

LEGEND_KEY = "unifiedviz:legend"
LINE = 13  # caption line height in pixels (font size 11)
GAP = 4  # white space between tiles


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[C, H, W] in [0, 1] -> HxW (grey) or HxWx3 uint8."""
    arr = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    return arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)


def save_png(image: torch.Tensor, path: str | Path) -> None:
    """One image [C, H, W] (lossless), or a 1-D sequence [C, L] plotted as curves."""
    if image.dim() == 2:
        return save_sequence_plot(image, path)
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp, format="PNG")


def upscale_factor(side: int, target: int = 128) -> int:
    """Nearest-neighbour factor so tiny inputs (32 px digits) are visible in a grid."""
    return max(1, target // max(side, 1))


def save_sequence_plot(sequences: torch.Tensor, path: str | Path, titles: list[str] | None = None) -> None:
    """Plot [C, L] (one panel) or [N, C, L] (one panel each) to PNG; `titles` name the panels (and the legend)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(sequence_png(sequences, titles))


def sequence_png(sequences: torch.Tensor, titles: list[str] | None = None) -> bytes:
    """The PNG file of `save_sequence_plot` (one panel per sequence, `titles` drawn and in the legend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seqs = sequences.detach().cpu().float()
    if seqs.dim() == 2:
        seqs = seqs.unsqueeze(0)
    n = seqs.shape[0]
    fig, axes = plt.subplots(n, 1, figsize=(6, 1.6 * n), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        for ch in seqs[i]:
            ax.plot(ch.numpy(), linewidth=1)
        ax.set_ylim(-0.05, 1.05)
        if titles:
            ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={LEGEND_KEY: legend_text(titles, 1)} if titles else None)
    plt.close(fig)
    return buffer.getvalue()


def font(size: int = 11) -> ImageFont.ImageFont:
    """Pillow's bundled font at `size` (Pillow < 10.1: its fixed bitmap font)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def legend_text(labels: Sequence[str], columns: int) -> str:
    """The `unifiedviz:legend` JSON of a grid of `labels` (reading order) in `columns` columns."""
    return json.dumps({"columns": columns, "rows": math.ceil(len(labels) / max(columns, 1)),
                       "tiles": [str(label) for label in labels]})


def read_legend(path: str | Path | BinaryIO) -> dict:
    """The legend stored in a grid PNG (a path or an open binary file): `{"columns", "rows", "tiles"}`."""
    with Image.open(path) as img:
        text = getattr(img, "text", {}).get(LEGEND_KEY)
    if text is None:
        from ..errors import UnifiedVizError

        raise UnifiedVizError(f"{path} carries no {LEGEND_KEY} text chunk: it is not a grid written by unifiedviz")
    return json.loads(text)


def labelled_grid(images: torch.Tensor | Sequence[torch.Tensor], labels: Sequence[str], *, ncols: int | None = None,
                  tile: int | None = None, title: str | None = None) -> Image.Image:
    """Tile images `[C, H, W]` in [0, 1] with each one's label drawn under it; an RGB `PIL.Image`.

    `labels[i]` names image i (a newline starts a second caption line; lines wider than the tile
    wrap). `tile`: the displayed width (nearest-neighbour scaling; default: small images are
    enlarged to about 128 px). `title`: one line above the grid. The exact labels are kept as
    the image's legend (`img.info[LEGEND_KEY]`), which `write_image` and `png_bytes` store.
    """
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    n = len(images)
    side = max(int(images[0].shape[-1]), 1) if n else 1
    tile = tile or side * upscale_factor(side)
    ncols = max(1, min(ncols or math.ceil(math.sqrt(n)), max(n, 1)))
    nrows = math.ceil(n / ncols)
    pictures = [_picture(image, tile) for image in images]
    th = max((p.height for p in pictures), default=tile)
    f = font()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    captions = [_wrap(str(label), f, tile, measure) for label in labels]
    cap_h = LINE * max((len(c) for c in captions), default=1) + GAP
    top = LINE + GAP if title else 0
    width = GAP + ncols * (tile + GAP)
    canvas = Image.new("RGB", (width, top + GAP + nrows * (th + cap_h + GAP)), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((GAP, GAP // 2), _fit(title, f, width - 2 * GAP, measure), fill=(0, 0, 0), font=f)
    for i, (picture, lines) in enumerate(zip(pictures, captions)):
        r, c = divmod(i, ncols)
        x0, y0 = GAP + c * (tile + GAP), top + GAP + r * (th + cap_h + GAP)
        canvas.paste(picture, (x0, y0))
        for k, line in enumerate(lines):
            draw.text((x0, y0 + th + 2 + LINE * k), line, fill=(0, 0, 0), font=f)
    canvas.info[LEGEND_KEY] = legend_text(labels, ncols)
    return canvas


def write_image(img: Image.Image, path: str | Path) -> Path:
    """Write a PIL image as PNG (atomically), with its legend (`img.info[LEGEND_KEY]`) if it has one."""
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG", pnginfo=_pnginfo(img))
    return Path(path)


def png_bytes(img: Image.Image) -> bytes:
    """The PNG file of a PIL image, legend included (for Jupyter's `_repr_png_`)."""
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", pnginfo=_pnginfo(img))
    return buffer.getvalue()


def html_image(png: bytes, alt: str = "") -> str:
    """An `<img>` tag holding `png` inline (a data URI), so the HTML needs no file beside it."""
    import base64
    import html

    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="{html.escape(alt)}">'


def save_labelled_grid(images: torch.Tensor | Sequence[torch.Tensor], labels: Sequence[str], path: str | Path,
                       **options) -> Path:
    """`labelled_grid(images, labels, **options)` written to `path` as PNG with its legend."""
    return write_image(labelled_grid(images, labels, **options), path)


def _pnginfo(img: Image.Image) -> PngInfo | None:
    if LEGEND_KEY not in img.info:
        return None
    info = PngInfo()
    info.add_itxt(LEGEND_KEY, img.info[LEGEND_KEY])
    return info


def _picture(image: torch.Tensor, width: int) -> Image.Image:
    arr = to_uint8(image)
    img = Image.fromarray(arr, mode="RGB" if arr.ndim == 3 else "L").convert("RGB")
    w, h = img.size
    return img.resize((width, max(1, round(width * h / w))), Image.NEAREST)


def _wrap(text: str, f, width: int, draw: ImageDraw.ImageDraw) -> list[str]:
    """Lines of `text` no wider than `width`: break after a separator (`:` `,` `=` `.` space) where one fits."""
    lines = []
    for paragraph in text.split("\n"):
        rest = paragraph
        while rest and draw.textlength(rest, font=f) > width:
            cut = max(1, _fitting(rest, f, width, draw))
            soft = max((rest.rfind(ch, 0, cut) for ch in ":,=. "), default=-1)
            cut = soft + 1 if soft > 0 else cut
            lines.append(rest[:cut].rstrip())
            rest = rest[cut:].lstrip()
        lines.append(rest)
    return lines


def _fitting(text: str, f, width: int, draw: ImageDraw.ImageDraw) -> int:
    """How many leading characters of `text` fit in `width`."""
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid], font=f) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _fit(text: str, f, width: int, draw: ImageDraw.ImageDraw) -> str:
    """`text` cut (with an ellipsis) to fit `width` on one line."""
    if draw.textlength(text, font=f) <= width:
        return text
    return text[: max(0, _fitting(text, f, width - draw.textlength("...", font=f), draw))] + "..."
