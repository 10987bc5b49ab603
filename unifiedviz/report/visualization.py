"""The files of a feature-visualisation run: grids, one PNG per image and `summary.json`.

`write_visualization(result, folder)` writes into an existing folder (in practice the hidden
folder that `run_folder.claim(out, "visualize").writing()` yields, so the run folder is
replaced whole); `Visualization.save(out)` does both steps.

    grid.png                 all images tiled (sequences: one panel each)
    grid_step00064.png       the images after step 64, for each snapshot step (images only)
    unit_000.png ...         one PNG per image, in the order of `names`
    sequences.png            sequence models with known data: each sequence over its class's real ones
    summary.json             metadata, per image: address, file, final objective, activation
                             (reference max and whether the image beats it), mean history
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .files import write_json
from .images import image_grid, save_png, save_sequence_plot, upscale_factor

if TYPE_CHECKING:
    from ..visualize import Visualization


def write_visualization(result: "Visualization", folder: Path) -> None:
    """Write `result`'s grids, `unit_NNN.png` files and `summary.json` into `folder` (which exists)."""
    folder = Path(folder)
    files = []
    for i, image in enumerate(result.images):
        name = f"unit_{i:03d}.png"
        save_png(image, folder / name)
        files.append(name)
    if result.images.dim() == 4:
        save_png(image_grid(result.images, scale=upscale_factor(result.images.shape[-1])), folder / "grid.png")
    else:
        save_sequence_plot(result.images, folder / "grid.png", titles=list(result.names))
    for step, snap in sorted(result.snapshots.items()):
        if snap.dim() == 4:
            save_png(image_grid(snap, scale=upscale_factor(snap.shape[-1])), folder / f"grid_step{step:05d}.png")
    data = summary(result, files)
    if result.images.dim() == 3:  # sequences: probabilities, HF energy, sequences.png over real data
        from ..sequences.report import add_sequence_report

        add_sequence_report(result, folder, data)
    write_json(folder / "summary.json", data)


def summary(result: "Visualization", files: list[str] | None = None) -> dict:
    """The content of `summary.json`."""
    units = []
    for i, name in enumerate(result.names):
        entry = {"address": name, "final_objective": float(result.final[i])}
        if files is not None:
            entry["image"] = files[i]
        if result.activations is not None:
            entry["activation"] = float(result.activations[i])
        if result.reference_max is not None:
            entry["reference_max"] = float(result.reference_max[i])
            if result.activations is not None:
                entry["above_reference"] = bool(result.activations[i] > result.reference_max[i])
        units.append(entry)
    return {"metadata": result.metadata, "units": units, "history_mean": result.history.mean(1).tolist()}


__all__ = ["write_visualization", "summary"]
