"""The files of a feature-visualisation run: grids, one PNG per image and `summary.json`.

`write_visualization(result, folder)` writes into an existing folder (in practice the hidden
folder that `run_folder.claim(out, "visualize").writing()` yields, so the run folder is
replaced whole); `Visualization.save(out)` does both steps.

    grid.png                 all images tiled, each labelled with its unit (sequences: one panel each),
                             the exact addresses in its `unifiedviz:legend` (report.images.read_legend)
    grid_step00064.png       the images after step 64, for each snapshot step (images only), labelled alike
    unit_000.png ...         one PNG per image, in the order of `names`
    sequences.png            sequence models with known data: each sequence over its class's real ones
    best_so_far.png          a budgeted run (--budget): each image's best objective against queries spent
    summary.json             metadata (a budgeted run: queries per image and in all, NaN candidates),
                             per image: address, file, final objective, activation
                             (reference max and whether the image beats it), mean history
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .files import atomic_path, write_json
from .images import html_image, labelled_grid, png_bytes, save_labelled_grid, save_png, sequence_png

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
    with atomic_path(folder / "grid.png") as tmp:
        tmp.write_bytes(grid_png(result))
    labels = tile_labels(result)
    for step, snap in sorted(result.snapshots.items()):
        if snap.dim() == 4:
            save_labelled_grid(snap, labels, folder / f"grid_step{step:05d}.png", title=f"after step {step}")
    if result.queries is not None and result.metadata.get("budget") is not None:  # a budgeted (search) run
        from .search import save_best_so_far

        save_best_so_far(result, folder / "best_so_far.png")
    data = summary(result, files)
    if result.images.dim() == 3:  # sequences: probabilities, HF energy, sequences.png over real data
        from ..sequences.report import add_sequence_report

        add_sequence_report(result, folder, data)
    write_json(folder / "summary.json", data)


def tile_labels(result: "Visualization") -> list[str]:
    """Each image's label: its unit address, and for a class unit, the class's name when the model has names."""
    from ..units import parse_units

    names = result.metadata.get("class_names") or {}  # {"3": "cat"}: the rendered classes only
    labels = []
    for address in result.names:
        unit = parse_units(address)[0] if "class=" in address else None
        name = names.get(str(unit.index)) if unit is not None and unit.kind == "class" else None
        labels.append(f"{address} ({name})" if name else address)
    return labels


def grid_png(result: "Visualization") -> bytes:
    """The PNG file `grid.png`: images tiled with their labels, or sequences one titled panel each."""
    if result.images.dim() == 4:
        return png_bytes(labelled_grid(result.images, tile_labels(result)))
    return sequence_png(result.images, tile_labels(result))


def html(result: "Visualization") -> str:
    """The grid and a table of each image's unit, activation (and reference maximum): Jupyter's view."""
    import html as escape

    head = "<tr><th>unit</th><th>activation</th>" + ("<th>reference max</th>" if result.reference_max is not None
                                                     else "") + "</tr>"
    rows = []
    for i, label in enumerate(tile_labels(result)):
        cells = [escape.escape(label), f"{float(result.activations[i]):.4g}"]
        if result.reference_max is not None:
            cells.append(f"{float(result.reference_max[i]):.4g}")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    model = escape.escape(str(result.metadata.get("model", "")))
    return (f"<div><p>{len(result.names)} images of {model}</p>{html_image(grid_png(result), 'grid')}"
            f"<table>{head}{''.join(rows)}</table></div>")


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


__all__ = ["write_visualization", "summary", "tile_labels", "grid_png", "html"]
