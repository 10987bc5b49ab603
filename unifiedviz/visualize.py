"""`visualize(model, units)`: render what units respond to, many units per batch."""
from __future__ import annotations

from typing import Iterable, Sequence

import torch
from torch import nn

from .adapters import Adapter, ResolvedUnit
from .engine import Result, render
from .errors import UnifiedVizError
from .models import load_model
from .models.spec import device_of
from .objectives import Context, Diversity, Objective, OnePerImage, UnitObjective, read_unit
from .optimizers import Optimizer
from .params import make_param
from .units import Unit, parse_units


def visualize(
    model: str | nn.Module | Adapter,
    units: str | Iterable[str | Unit],
    *,
    steps: int = 256,
    param: str = "fourier",
    lr: float = 0.05,
    optimizer: str | Optimizer = "adam",
    transforms: str | nn.Module | None = "standard",
    seed: int = 0,
    batch_size: int = 32,
    per_unit: int = 1,
    diversity: float = 0.0,
    class_score: str = "logit",
    regularizer: Objective | None = None,
    reference: torch.Tensor | None = None,
    param_options: dict | None = None,
    snapshot_steps: Sequence[int] = (),
    progress: bool = True,
) -> Result:
    """Render one image per unit (or `per_unit` images each) and return a `Result`.

    `model` is a source string ("timm:vit_tiny_patch16_224"), a module or an `Adapter`.
    `units` is an address ("blocks.6.mlp.fc1:neuron=0:16") or several. `diversity` > 0 adds
    Lucid's diversity term at the unit's layer so a unit's `per_unit` images differ.
    `regularizer` (e.g. `0.05 * total_variation()`) is subtracted from every image's score.
    `reference` images (in [0, 1]) give each unit's maximum activation over real data.
    """
    adapter = _adapter(model)
    resolved = [adapter.resolve(u) for u in _units(units) for _ in range(per_unit)]
    if batch_size < 1:
        raise UnifiedVizError(f"batch_size must be at least 1, got {batch_size}")
    if diversity and per_unit < 2:
        raise UnifiedVizError("diversity compares images of the same unit: set per_unit to 2 or more")
    if per_unit > 1:
        batch_size = max(per_unit, batch_size // per_unit * per_unit)  # keep a unit's images together
    parts: list[Result] = []
    for chunk_index, start in enumerate(range(0, len(resolved), batch_size)):
        chunk = resolved[start : start + batch_size]
        objective = _objective(chunk, per_unit, diversity, class_score, regularizer)
        params = make_param(param, len(chunk), adapter.model.spec, seed=seed + chunk_index, **(param_options or {}))
        part = render(adapter, objective, params, steps=steps, optimizer=optimizer, lr=lr, transforms=transforms,
                      seed=seed + chunk_index, names=[r.unit.address() for r in chunk],
                      snapshot_steps=snapshot_steps, progress=progress)
        # The engine's last pass already ran the final images without transforms: read the units there.
        part.activations = torch.cat(
            [read_unit(r, part.final_acts[r.target][i : i + 1]) for i, r in enumerate(chunk)]
        )
        parts.append(part)
    result = _concat(parts)
    if reference is not None:
        result.reference_max = reference_max(adapter, resolved, reference)
    result.metadata.update(param=param, per_unit=per_unit, diversity=diversity, class_score=class_score)
    return result


def unit_values(adapter: Adapter, resolved: Sequence[ResolvedUnit], images: torch.Tensor) -> torch.Tensor:
    """Image i's value of unit i (no transforms), `[N]`: e.g. to score images made elsewhere."""
    objective = OnePerImage([UnitObjective(r, batch=i) for i, r in enumerate(resolved)])
    with torch.no_grad():
        x = images.to(device_of(adapter.model))
        return objective(Context(adapter.capture(x, objective.layers), x)).cpu()


def reference_max(
    adapter: Adapter, resolved: Sequence[ResolvedUnit], images: torch.Tensor, batch_size: int = 256
) -> torch.Tensor:
    """Each unit's maximum activation over `images`, `[N]`."""
    layers = list(dict.fromkeys(r.target for r in resolved))
    best = torch.full((len(resolved),), -float("inf"))
    with torch.no_grad(), adapter.session(layers) as run:
        for start in range(0, len(images), batch_size):
            acts = run(images[start : start + batch_size])
            values = torch.stack([read_unit(r, acts[r.target]) for r in resolved], 1)  # [B, N]
            best = torch.maximum(best, values.max(0).values.cpu())
    return best


def _adapter(model) -> Adapter:
    if isinstance(model, Adapter):
        return model
    return Adapter(load_model(model) if isinstance(model, (str, nn.Module)) else model)


def _units(units) -> list[Unit]:
    if isinstance(units, Unit):
        return [units]
    if isinstance(units, str):
        return parse_units(units)
    out: list[Unit] = []
    for u in units:
        out.extend([u] if isinstance(u, Unit) else parse_units(u))
    return out


def _objective(chunk, per_unit, diversity, class_score, regularizer) -> Objective:
    objective: Objective = OnePerImage([UnitObjective(r, batch=i, score=class_score) for i, r in enumerate(chunk)])
    if diversity:
        for start in range(0, len(chunk), per_unit):
            group = _GroupDiversity(chunk[start].target, start, per_unit)
            objective = objective + diversity * group
    if regularizer is not None:
        objective = objective - regularizer
    return objective


class _GroupDiversity(Diversity):
    """Diversity among one unit's images only (rows start..start+n of the batch), zero elsewhere."""

    def __init__(self, layer: str, start: int, n: int) -> None:
        super().__init__(layer)
        self.start, self.n = start, n
        self.name = f"diversity({layer})[{start}:{start + n}]"

    def __call__(self, ctx: Context) -> torch.Tensor:
        t = ctx.acts[self.layer]
        sub = super().__call__(Context({self.layer: t[self.start : self.start + self.n]}, ctx.images))
        out = t.new_zeros(t.shape[0])
        out[self.start : self.start + self.n] = sub
        return out


def _concat(parts: list[Result]) -> Result:
    if len(parts) == 1:
        return parts[0]
    steps = min(p.history.shape[0] for p in parts)
    return Result(
        images=torch.cat([p.images for p in parts]),
        history=torch.cat([p.history[:steps] for p in parts], 1),
        final=torch.cat([p.final for p in parts]),
        activations=torch.cat([p.activations for p in parts]),
        names=[n for p in parts for n in p.names],
        metadata={**parts[0].metadata, "batches": len(parts),
                  "seconds": round(sum(p.metadata["seconds"] for p in parts), 3)},
        snapshots={s: torch.cat([p.snapshots[s] for p in parts]) for s in parts[0].snapshots},
    )


__all__ = ["visualize", "unit_values", "reference_max"]
