"""The atlas's columns per unit, by the superposition module's rules (`unit_selectivity`).

`unit_selectivity` summarises a layer; called on one unit's column it gives that unit's class
selectivity (Morcos et al.: (top - rest) / (top + rest) of the class means), the number of
classes it responds to (class means >= `respond_fraction` x the top one) and whether it is
polysemantic (responds to more than one class), or that it is dead (no class mean above 0).
Without labels only the maximum activation is known.
"""
from __future__ import annotations

import math

import torch

from superposition.metrics import class_means, unit_selectivity

#: The index's columns after the address: key, header, what it means.
COLUMNS = (
    ("max_activation", "max activation", "highest value over the data"),
    ("selectivity", "class selectivity", "(top - rest) / (top + rest) of the class means; 1: one class only"),
    ("classes", "classes", "classes whose mean reaches respond_fraction x the top class mean"),
    ("polysemantic", "polysemantic", "responds to more than one class (superposition.metrics)"),
)


def unit_rows(values: torch.Tensor, labels: torch.Tensor | None, *, respond_fraction: float = 0.5) -> list[dict]:
    """One dict per column of `values` `[N, U]`: max activation and, with labels, the class measures."""
    rows = []
    for u in range(values.shape[1]):
        row: dict = {"max_activation": float(values[:, u].max())}
        if labels is not None:
            s = unit_selectivity(values[:, u : u + 1], labels, respond_fraction=respond_fraction)
            dead = s["dead"] == 1
            row.update(dead=dead,
                       selectivity=math.nan if dead else s["selectivity_mean"],
                       classes=0 if dead else int(s["classes_per_unit_mean"]),
                       polysemantic=False if dead else s["polysemantic_fraction"] == 1.0)
        rows.append(row)
    return rows


def unit_class_means(column: torch.Tensor, labels: torch.Tensor) -> dict[int, float]:
    """A unit's mean value per class (for its page), by `superposition.metrics.class_means`."""
    classes = torch.unique(labels).tolist()
    means = class_means(column.view(-1, 1), labels)[:, 0].tolist()
    return dict(zip(map(int, classes), means))


__all__ = ["COLUMNS", "unit_rows", "unit_class_means"]
