"""`visualize(model, units)`: render what units respond to, many units per batch.

Each image is seeded from (seed, unit address, copy index) (`image_seeds`): its
initialisation and every random draw of its run (transforms, random-search proposals) come
from its own generator, so a unit's image is the same alone or in any batch, up to the
float noise of batched forwards (~1e-7 per activation on CPU). This also lets many
processes split a layer's units and still agree with one process doing them all.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch
from torch import nn

from .adapters import Adapter, ResolvedUnit, as_adapter
from .distributed import Batch, Ranks, render_batches
from .engine import Result, StepInfo, render
from .errors import UnifiedVizError
from .models.spec import device_of
from .objectives import Context, Diversity, Objective, OnePerImage, UnitObjective, read_unit
from .optimizers import Optimizer
from .params import make_param
from .params.seeding import check_seed, image_seed
from .units import Unit, parse_units


@dataclass
class Visualization:
    """What `visualize` returns: one image per unit (or `per_unit` each), in the order of `names`.

    `images` `[N, C, *size]` in [0, 1]; `activations` `[N]` each image's own unit value (no
    transforms); `reference_max` `[N]` each unit's maximum over reference images, when given;
    `history` `[steps, N]` the objective per step (batches that stopped early are cut to the
    shortest); `final` `[N]` the objective on the final images; `final_acts` the activations of
    that last pass, per capture target, `[N, ...]` (rows of batches that did not capture a
    target are NaN); `snapshots[s]` the images after step s (0: the initial images).
    """

    images: torch.Tensor
    names: list[str]
    activations: torch.Tensor
    history: torch.Tensor
    final: torch.Tensor
    metadata: dict = field(default_factory=dict)
    reference_max: torch.Tensor | None = None
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    final_acts: dict[str, torch.Tensor] = field(default_factory=dict)
    queries: torch.Tensor | None = None  # model queries per image after each step (history's x axis)

    def save(self, out_dir: str | Path) -> Path:
        """Write `grid.png`, `unit_000.png`, ... and `summary.json` into `out_dir`; return its path.

        Follows the output policy (`unifiedviz.report.run_folder`): `out_dir` must be new, empty
        or an earlier `visualize` run's folder, which is replaced whole (no stale files).
        """
        from .report.run_folder import claim
        from .report.visualization import write_visualization

        folder = claim(out_dir, "visualize")
        with folder.writing() as tmp:
            write_visualization(self, tmp)
        return folder.out

    def _repr_png_(self) -> bytes:
        """Jupyter shows the labelled grid (what `grid.png` holds)."""
        from .report.visualization import grid_png

        return grid_png(self)

    def _repr_html_(self) -> str:
        """Jupyter shows the labelled grid and a table of each image's unit and activation."""
        from .report.visualization import html

        return html(self)


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
    callback: Callable[[StepInfo], bool | None] | None = None,
    progress: bool = True,
    ranks: Ranks | None = None,
    budget: int | None = None,
) -> Visualization | None:
    """Render one image per unit (or `per_unit` images each) and return a `Visualization`.

    `model` is a source string ("timm:vit_tiny_patch16_224"), a module or an `Adapter`.
    `units` is an address ("blocks.6.mlp.fc1:neuron=0:16") or several. `diversity` > 0 adds
    Lucid's diversity term at the unit's layer so a unit's `per_unit` images differ.
    `regularizer` (e.g. `0.05 * total_variation()`) is subtracted from every image's score.
    `reference` images (in [0, 1]) give each unit's maximum activation over real data.

    `seed`: each image's initialisation and random draws come from its own generator, seeded
    from (seed, unit address, copy index) (`image_seeds`): the same unit gets the same image
    alone or in any batch (to float noise), whatever `batch_size` is.

    Units are rendered `batch_size` images at a time, one `render` run per batch, in order.
    `callback(StepInfo)` is called after every step of every batch: `info.batch` is the
    batch's index (0, 1, ...), `info.step` counts from 1 again in each batch, `info.names`
    are that batch's addresses and `info.images` / `info.scores` its rows. Returning True
    ends the current batch at that step (its images are kept); later batches still run.

    `ranks` (from `unifiedviz.distributed.run_in_processes`): this process renders only its share
    of the batches; rank 0 returns the whole result, bitwise the one-process one when there are
    at least as many batches as processes, and the other ranks return None.

    `budget`: model queries per image (the engine's `render(budget=)`; docs/gradient_free.md).
    """
    adapter = as_adapter(model)
    check_seed(seed)
    resolved = [adapter.resolve(u) for u in _units(units) for _ in range(per_unit)]
    if batch_size < 1:
        raise UnifiedVizError(f"batch_size must be at least 1, got {batch_size}")
    if param_options and "seed" in param_options:
        raise UnifiedVizError("give the seed as visualize(seed=...): each image's seed is derived from it")
    if diversity and per_unit < 2:
        raise UnifiedVizError("diversity compares images of the same unit: set per_unit to 2 or more")
    if per_unit > 1:
        batch_size = max(per_unit, batch_size // per_unit * per_unit)  # keep a unit's images together
    names = [r.unit.address() for r in resolved]
    seeds = image_seeds(seed, names)
    ranks = ranks or Ranks()

    def render_batch(batch: Batch[ResolvedUnit]) -> Visualization:
        chunk, where = batch.items, slice(batch.start, batch.start + len(batch.items))
        objective = _objective(chunk, per_unit, diversity, class_score, regularizer)
        params = make_param(param, len(chunk), adapter.model.spec, seed=seeds[where], **(param_options or {}))
        part = render(adapter, objective, params, steps=steps, optimizer=optimizer, lr=lr, transforms=transforms,
                      seed=seeds[where], names=names[where], snapshot_steps=snapshot_steps,
                      callback=_for_batch(callback, batch.index), progress=progress and ranks.main, budget=budget)
        # The engine's last pass already ran the final images without transforms: read the units there.
        activations = torch.cat([read_unit(r, part.final_acts[r.target][i : i + 1]) for i, r in enumerate(chunk)])
        return _from_result(part, activations)

    # Several processes: each renders its share of the batches; rank 0 gets them all, the others stop here.
    parts = render_batches(resolved, batch_size, render_batch, ranks=ranks, keep_together=per_unit)
    if parts is None:
        return None
    result = _concat(parts)
    if reference is not None:
        result.reference_max = reference_max(adapter, resolved, reference)
    result.metadata.update(param=param, per_unit=per_unit, diversity=diversity, class_score=class_score, seed=seed,
                           seeding="per image: sha256(seed, unit address, copy index)")
    if ranks.world > 1:
        result.metadata["processes"] = ranks.world
    class_names = adapter.model.class_names
    classes = sorted({r.unit.index for r in resolved if r.unit.kind == "class" and r.unit.index is not None})
    if class_names and classes:  # the rendered classes' names, for labels (not the whole list: ImageNet has 1000)
        result.metadata["class_names"] = {str(k): class_names[k] for k in classes if k < len(class_names)}
    return result


def image_seeds(seed: int, addresses: Sequence[str]) -> list[int]:
    """One seed per image: `image_seed(seed, address, copy)`, `copy` counting earlier images of the same address.

    A unit's k-th image (per_unit > 1, or the address listed again) gets copy index k, so
    copies differ from each other but not between runs or batchings.
    """
    seen: Counter[str] = Counter()
    seeds = []
    for address in addresses:
        seeds.append(image_seed(seed, address, seen[address]))
        seen[address] += 1
    return seeds


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


def _for_batch(callback, index: int):
    if callback is None:
        return None
    return lambda info: callback(dataclasses.replace(info, batch=index))


def _from_result(part: Result, activations: torch.Tensor) -> Visualization:
    return Visualization(images=part.images, names=part.names, activations=activations, history=part.history,
                         final=part.final, metadata=part.metadata, snapshots=part.snapshots,
                         final_acts=part.final_acts, queries=part.queries)


def _concat(parts: list[Visualization]) -> Visualization:
    if len(parts) == 1:
        return parts[0]
    steps = min(p.history.shape[0] for p in parts)
    used = [p.metadata["steps"] for p in parts]
    metadata = {**parts[0].metadata, "steps": max(used), "batches": len(parts),
                "seconds": round(sum(p.metadata["seconds"] for p in parts), 3)}
    for key in ("queries_total", "nan_candidates"):  # counts over all batches
        metadata[key] = sum(p.metadata.get(key, 0) for p in parts)
    metadata.pop("seed", None)  # per batch: the list of its images' seeds
    if len(set(used)) > 1:
        metadata["steps_per_batch"] = used
    return Visualization(
        images=torch.cat([p.images for p in parts]),
        names=[n for p in parts for n in p.names],
        activations=torch.cat([p.activations for p in parts]),
        history=torch.cat([p.history[:steps] for p in parts], 1),
        final=torch.cat([p.final for p in parts]),
        metadata=metadata,
        snapshots={s: torch.cat([p.snapshots[s] for p in parts])
                   for s in parts[0].snapshots if all(s in p.snapshots for p in parts)},
        final_acts=_concat_acts(parts),
        queries=None if parts[0].queries is None else parts[0].queries[:steps],
    )


def _concat_acts(parts: list[Visualization]) -> dict[str, torch.Tensor]:
    """Concatenate each capture target's activations over batches; NaN rows where a batch lacks it."""
    keys = list(dict.fromkeys(k for p in parts for k in p.final_acts))
    out = {}
    for key in keys:
        like = next(p.final_acts[key] for p in parts if key in p.final_acts)
        fill = float("nan") if like.is_floating_point() else 0
        out[key] = torch.cat([
            p.final_acts[key] if key in p.final_acts
            else torch.full((p.images.shape[0], *like.shape[1:]), fill, dtype=like.dtype)
            for p in parts
        ])
    return out


__all__ = ["visualize", "Visualization", "image_seeds", "unit_values", "reference_max"]
