"""What a `visualize` run of a sequence model adds to its folder: `sequences.png` and measures in `summary.json`.

For every image: class probabilities (when the logits were captured, i.e. class units) and
high-frequency energy. When the model's training set is known (`REFERENCE_SETS`) and found
offline: each image plotted over its class's real sequences, and its Euclidean and DTW
distance to the nearest real sequence of its class next to the real-to-real baseline.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..adapters import LOGITS
from ..errors import UnifiedVizError
from ..units import parse_units
from .data import from_unit_range, model_sequences, reference_set
from .measures import HF_CUTOFF, hf_energy, nearest_real, real_to_real
from .plots import plot_over_real


def add_sequence_report(result, folder: Path, summary: dict) -> None:
    """Add per-unit measures to `summary` (in place) and write `sequences.png` into `folder` when data is known."""
    images = result.images
    hf = hf_energy(images)
    classes = [_class_of(name) for name in result.names]
    logits = result.final_acts.get(LOGITS)
    probs = torch.softmax(logits, -1) if logits is not None and not torch.isnan(logits).any() else None
    for i, entry in enumerate(summary["units"]):
        entry[f"hf_energy_above_{HF_CUTOFF:g}"] = float(hf[i])
        if probs is not None:
            entry["class_probabilities"] = [round(float(p), 6) for p in probs[i]]
            if classes[i] is not None:
                entry["class_probability"] = float(probs[i, classes[i]])
    source = result.metadata.get("model", "")
    if reference_set(source) is None:
        return
    try:
        model = _builtin(source)
        spec = model.spec
        real = model_sequences(source, spec, "train")
    except UnifiedVizError as exc:
        summary["sequences"] = {"reference": f"unavailable: {exc}"}
        return
    names = model.class_names or real.classes
    titles = [n if c is None else f"{n} ({names[c]})" for n, c in zip(result.names, classes)]
    plot_over_real(images, classes, real.x, real.y, folder / "sequences.png", titles=titles, class_names=names)
    x, r = from_unit_range(images, spec), from_unit_range(real.x, spec)
    for metric in ("euclidean", "dtw"):
        near = nearest_real(x, r, real.y, classes, metric)
        for i, entry in enumerate(summary["units"]):
            entry[f"nearest_real_{metric}"] = float(near[i])
    summary["sequences"] = {
        "reference": f"{real.name} train ({len(real)} sequences), distances in data units",
        "plot": "sequences.png",
        "real_to_real_euclidean_mean": float(real_to_real(r, real.y).mean()),
        "real_to_real_dtw_mean": float(real_to_real(r, real.y, "dtw").mean()),
        "hf_cutoff_cycles_per_step": HF_CUTOFF,
    }


def _class_of(name: str) -> int | None:
    try:
        unit = parse_units(name)[0]
    except UnifiedVizError:
        return None
    return unit.index if unit.kind == "class" and unit.layer is None else None


def _builtin(source: str):
    from ..models.builtin import build_builtin

    return build_builtin(source.removeprefix("builtin:"), load_weights=False)


__all__ = ["add_sequence_report"]
