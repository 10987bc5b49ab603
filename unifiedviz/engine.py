"""The one optimisation loop behind feature visualisation and adversarial inputs.

    param() -> images -> transforms -> adapter (hooks, early stop) -> objective -> optimiser step -> param.after_step()

Deterministic under a seed on CPU: the param's init and every transform draw come from
seeded generators. Weights are frozen for the run (gradients only reach the param), which
is most of why a step costs about one bare forward+backward.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from tqdm.auto import tqdm

from .adapters import Adapter
from .errors import UnifiedVizError
from .models.spec import device_of
from .objectives import Context, Objective
from .optimizers import Optimizer, make_optimizer
from .params.base import Param
from .report import image_grid, save_png, save_sequence_plot, upscale_factor, write_json
from .transforms import Compose, standard_transforms


@dataclass
class StepInfo:
    """What a callback sees after each step; return True from the callback to stop early."""

    step: int
    images: torch.Tensor
    scores: torch.Tensor
    acts: dict[str, torch.Tensor]


@dataclass
class Result:
    """Images in [0, 1], per-step objective history `[steps, N]` and the final scores `[N]`.

    `final` is the objective on the final images without transforms and `final_acts` the
    activations (and logits, if the objective read them) of that pass; `activations` (set by
    `visualize`) is each image's own unit value, and `reference_max` each unit's maximum
    over reference images when given.
    """

    images: torch.Tensor
    history: torch.Tensor
    final: torch.Tensor
    names: list[str]
    metadata: dict = field(default_factory=dict)
    activations: torch.Tensor | None = None
    reference_max: torch.Tensor | None = None
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    final_acts: dict[str, torch.Tensor] = field(default_factory=dict)

    def save(self, out_dir: str | Path) -> Path:
        """Write `grid.png`, one PNG per image (`unit_000.png`, ...) and `summary.json`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        files = []
        for i, image in enumerate(self.images):
            name = f"unit_{i:03d}.png"
            save_png(image, out / name)
            files.append(name)
        if self.images.dim() == 4:
            save_png(image_grid(self.images, scale=upscale_factor(self.images.shape[-1])), out / "grid.png")
        else:
            save_sequence_plot(self.images, out / "grid.png", titles=self.names)
        for step, snap in self.snapshots.items():
            if snap.dim() == 4:
                save_png(image_grid(snap, scale=upscale_factor(snap.shape[-1])), out / f"grid_step{step:05d}.png")
        units = []
        for i, name in enumerate(self.names):
            entry = {"address": name, "image": files[i], "final_objective": float(self.final[i])}
            if self.activations is not None:
                entry["activation"] = float(self.activations[i])
            if self.reference_max is not None:
                entry["reference_max"] = float(self.reference_max[i])
                entry["above_reference"] = bool(self.activations[i] > self.reference_max[i])
            units.append(entry)
        write_json(out / "summary.json", {"metadata": self.metadata, "units": units,
                                          "history_mean": self.history.mean(1).tolist()})
        return out


def render(
    model: nn.Module | Adapter,
    objective: Objective,
    param: Param,
    *,
    steps: int = 256,
    optimizer: str | Optimizer = "adam",
    lr: float = 0.05,
    transforms: str | Compose | None = "standard",
    seed: int = 0,
    names: Sequence[str] | None = None,
    snapshot_steps: Sequence[int] = (),
    callback: Callable[[StepInfo], bool | None] | None = None,
    stop_early: bool = True,
    progress: bool = True,
) -> Result:
    """Optimise `param` so `objective` rises; return the images, history and final scores."""
    adapter = model if isinstance(model, Adapter) else Adapter(model)
    if steps < 1:
        raise UnifiedVizError(f"steps must be at least 1, got {steps}")
    device = device_of(adapter.model)
    param = param.to(device)
    chain = _transforms(transforms, adapter)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    opt = make_optimizer(optimizer, lr)
    trainable = [p for p in param.parameters() if p.requires_grad]
    if not trainable:
        raise UnifiedVizError("the parameterisation has no trainable tensors: nothing to optimise")
    opt.setup(trainable, steps, generator)
    layers = objective.layers
    history: list[torch.Tensor] = []
    snapshots: dict[int, torch.Tensor] = {}
    last: dict = {}
    started = time.perf_counter()
    with adapter.session(layers, stop_early=stop_early) as run:

        def evaluate() -> torch.Tensor:
            images = param()
            x = chain(images, generator) if chain is not None else images
            acts = run(x)
            scores = objective(Context(acts, images))
            last.update(images=images, acts=acts)
            return scores

        bar = tqdm(range(1, steps + 1), disable=not progress, desc="render", leave=False)
        used = steps
        for step in bar:
            with torch.enable_grad() if opt.needs_grad else torch.no_grad():
                scores = opt.step(evaluate)
            if not torch.isfinite(scores).all():
                raise UnifiedVizError(
                    f"the objective became NaN/inf at step {step}: lower the learning rate or add regularisation"
                )
            param.after_step()
            history.append(scores.detach().cpu())
            if step in snapshot_steps:
                snapshots[step] = param().detach().cpu()
            if progress:
                bar.set_postfix(objective=f"{scores.mean().item():.3g}")
            if callback is not None and callback(StepInfo(step, last["images"], scores.detach(), last["acts"])):
                used = step
                break
        with torch.no_grad():
            images = param().detach()
            final_acts = run(images)
            final = objective(Context(final_acts, images)).detach().cpu()
    n = images.shape[0]
    return Result(
        images=images.cpu(),
        history=torch.stack(history),
        final=final,
        names=list(names) if names is not None else [objective.name] * n,
        metadata={
            "model": adapter.model.source,
            "objective": objective.name,
            "param": type(param).__name__,
            "optimizer": optimizer if isinstance(optimizer, str) else type(optimizer).__name__,
            "lr": lr,
            "steps": used,
            "seed": seed,
            "transforms": None if chain is None else _describe(chain),
            "seconds": round(time.perf_counter() - started, 3),
        },
        snapshots=snapshots,
        final_acts={k: v.detach().cpu() for k, v in final_acts.items() if v is not None},
    )


def _describe(chain: nn.Module) -> str:
    parts = getattr(chain, "transforms", [chain])
    return " > ".join(type(t).__name__ for t in parts)


def _transforms(transforms, adapter: Adapter) -> Compose | None:
    if transforms is None or transforms == "none":
        return None
    if transforms == "standard":
        return standard_transforms(adapter.model.spec)
    if isinstance(transforms, nn.Module):
        return transforms
    raise UnifiedVizError(f"unknown transforms {transforms!r}: use 'standard', 'none' or a Compose of transforms")
