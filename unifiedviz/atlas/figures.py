"""The atlas's PNG files: AM images, exemplars with activation heatmaps, activation histograms.

An exemplar PNG is the image and, beside it, the image overlaid with the unit's value at every
position (its positive part, upsampled bilinearly to the image, on one colour scale per unit so a
unit's exemplars compare). Small inputs (32 px digits) are enlarged by whole pixels.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..report.files import atomic_path
from ..report.images import save_png, upscale_factor

#: Displayed size the small images are enlarged towards (whole-pixel factors).
DISPLAY = 96


def _rgb(image: torch.Tensor) -> torch.Tensor:
    image = image.detach().float().cpu().clamp(0, 1)
    return image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]


def _enlarge(image: torch.Tensor) -> torch.Tensor:
    factor = upscale_factor(image.shape[-2], DISPLAY)
    return F.interpolate(image[None], scale_factor=factor, mode="nearest")[0] if factor > 1 else image


def save_am(image: torch.Tensor, path: Path) -> None:
    """An AM image, enlarged for display."""
    save_png(_enlarge(image.detach().float().cpu()) if image.dim() == 3 else image, path)


def heat_overlay(image: torch.Tensor, heat: torch.Tensor, vmax: float) -> torch.Tensor:
    """`image` `[C, H, W]` overlaid with `heat` `[h, w]` (positive part / vmax, inferno colours), `[3, H, W]`."""
    from matplotlib import colormaps

    rgb = _rgb(image)
    h = F.interpolate(heat.detach().float().cpu()[None, None], size=tuple(rgb.shape[1:]), mode="bilinear",
                      align_corners=False)[0, 0]
    h = (h.clamp_min(0) / vmax).clamp(0, 1) if vmax > 0 else torch.zeros_like(h)
    colour = torch.from_numpy(colormaps["inferno"](h.numpy())[..., :3]).permute(2, 0, 1).float()
    return 0.4 * rgb + 0.6 * colour


def save_exemplar(image: torch.Tensor, heat: torch.Tensor | None, vmax: float, path: Path) -> None:
    """The image and (with a map) its heatmap overlay side by side, enlarged."""
    rgb = _rgb(image)
    if heat is not None:
        gutter = torch.ones(3, rgb.shape[1], max(1, rgb.shape[2] // 16))
        rgb = torch.cat([rgb, gutter, heat_overlay(image, heat, vmax)], dim=2)
    save_png(_enlarge(rgb), path)


def class_label(k: int, names: list[str] | None) -> str:
    """`cat` for class 3 of a model that names its classes; `class 3` otherwise (digits name theirs '3')."""
    name = names[k] if names and 0 <= k < len(names) else None
    return name if name and name != str(k) else f"class {k}"


def save_histogram(values: torch.Tensor, labels: torch.Tensor | None, am_values: list[float], path: Path,
                   title: str, class_names: list[str] | None = None) -> None:
    """The unit's values over the data, one step histogram per class, AM images' values as dashed lines."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    v = values.detach().float().cpu().numpy()
    lo, hi = float(v.min()), max([float(v.max()), *am_values])
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)
    # A bare Figure with fixed margins: pyplot's state and tight_layout cost more than the drawing.
    fig = Figure(figsize=(5.5, 3.0), dpi=90)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.1, 0.16, 0.68, 0.74))
    if labels is None:
        ax.stairs(np.histogram(v, edges)[0], edges, fill=True, alpha=0.6, label="all images")
    else:
        y = labels.cpu().numpy()
        colours = [f"C{i}" for i in range(10)]
        for i, c in enumerate(np.unique(y)):
            ax.stairs(np.histogram(v[y == c], edges)[0], edges, color=colours[i % 10], linewidth=1.4,
                      label=class_label(int(c), class_names))
    for a in am_values:
        ax.axvline(a, color="black", linestyle="--", linewidth=1)
    ax.set_xlabel("unit value" + (" (dashed: AM images)" if am_values else ""))
    ax.set_ylabel("images")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})


__all__ = ["save_am", "save_exemplar", "save_histogram", "heat_overlay"]
