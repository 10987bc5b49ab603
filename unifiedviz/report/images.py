"""PNG output for [0, 1] tensors: single images, grids, and 1-D sequences drawn as curves."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .files import atomic_path


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


def image_grid(images: torch.Tensor, ncols: int | None = None, pad: int = 2, scale: int = 1) -> torch.Tensor:
    """Tile [N, C, H, W] into one [C, H', W'] image with white gutters; `scale` enlarges small images."""
    n, c, h, w = images.shape
    if scale > 1:
        images = torch.nn.functional.interpolate(images.float(), scale_factor=scale, mode="nearest")
        h, w = h * scale, w * scale
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = images.new_ones(c, nrows * (h + pad) + pad, ncols * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[:, top : top + h, left : left + w] = images[i]
    return grid


def upscale_factor(side: int, target: int = 128) -> int:
    """Nearest-neighbour factor so tiny inputs (32 px digits) are visible in a grid."""
    return max(1, target // max(side, 1))


def save_sequence_plot(sequences: torch.Tensor, path: str | Path, titles: list[str] | None = None) -> None:
    """Plot [C, L] (one panel) or [N, C, L] (one panel each) to PNG."""
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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
