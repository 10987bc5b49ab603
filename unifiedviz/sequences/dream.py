"""Sequence Dreaming (Schlegel et al.): centred-class and border activation maximisation for 1-D models.

    model = build_builtin("gunpoint-cnn")
    d = dream(model, starts=4, smoothing=0.3, l2=0.1)            # every class, 4 starts each
    b = border_dream(model, pairs=[(0, 1)], target=0.5)          # p = 0.5 / 0.5 between classes 0 and 1
    d.probabilities, d.sequences                                 # [N, K], [N, C, L] in [0, 1]

Objective per sequence: its class's log-probability (or logit), or for border sequences minus
KL(target || p), minus the weighted regularisers: `l2` (RMS of x - 0.5, i.e. of the z-value
for UCR built-ins), `tv` (total variation), `gaussian` (distance to a Gaussian-filtered copy of
`sigma` steps), `realism` (RMS distance to the `k` nearest real sequences of the class).
Exponential smoothing (`smoothing`, the EMA factor alpha: smaller is smoother) is part of the
`sequence` parameterisation, so it shapes every step and the result. Starts differ by their
seeded random initialisation (`init_sd`); each is seeded from (seed, name, copy) as in `visualize`.
Intermediate channels go through the unit grammar: `dream(model, units="conv3:channel=0:4")`.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ..adapters import as_adapter
from ..engine import render
from ..errors import UnifiedVizError
from ..objectives import OBJECTIVES, Objective, OnePerImage, UnitObjective
from ..params import make_param
from ..units import parse_units
from ..visualize import image_seeds
from .data import model_sequences
from .measures import class_probabilities
from .ucr import SequenceData


@dataclass
class Dream:
    """Dreamed sequences `[N, C, L]` in [0, 1] with, per sequence, its name, the class it dreams
    (None for border and channel units), the target probabilities `[N, K]` (one-hot for
    centred-class, NaN rows for channel units), the model's probabilities `[N, K]` and the run's settings."""

    sequences: torch.Tensor
    names: list[str]
    classes: list[int | None]
    targets: torch.Tensor
    probabilities: torch.Tensor
    final: torch.Tensor
    metadata: dict = field(default_factory=dict)


def dream(model, classes: Sequence[int] | None = None, *, units: str | None = None, starts: int = 3,
          **options) -> Dream:
    """Centred-class AM: `starts` sequences per class in `classes` (default: every class), or per unit of `units`."""
    adapter = as_adapter(model)
    k = _num_classes(adapter)
    if units is not None:
        resolved = [adapter.resolve(u) for u in parse_units(units)]
    else:
        classes = list(range(k)) if classes is None else list(classes)
        bad = [c for c in classes if not 0 <= c < k]
        if bad:
            raise UnifiedVizError(f"classes {bad} out of range: this model has {k} classes (0..{k - 1})")
        resolved = [adapter.resolve(f"class={c}") for c in classes]
    if starts < 1:
        raise UnifiedVizError(f"starts must be at least 1, got {starts}")
    resolved = [r for r in resolved for _ in range(starts)]
    score = options.pop("score", "logprob")
    main = OnePerImage([UnitObjective(r, batch=i, score=score) for i, r in enumerate(resolved)])
    names = [r.unit.address() for r in resolved]
    cls = [r.unit.index if r.unit.kind == "class" and r.unit.layer is None else None for r in resolved]
    targets = torch.full((len(names), k), float("nan"))
    for i, c in enumerate(cls):
        if c is not None:
            targets[i] = torch.nn.functional.one_hot(torch.tensor(c), k).float()
    return _run(adapter, main, names, cls, targets, score=score, **options)


def border_dream(model, pairs: Sequence[tuple[int, int]] = ((0, 1),), target: float = 0.5, *, starts: int = 3,
                 **options) -> Dream:
    """Border AM: sequences whose probabilities are `target` for class a and `1 - target` for b, per pair."""
    adapter = as_adapter(model)
    k = _num_classes(adapter)
    if not 0.0 < target < 1.0:
        raise UnifiedVizError(f"border target must be a probability strictly between 0 and 1, got {target}")
    rows, names = [], []
    for a, b in pairs:
        if a == b or not (0 <= a < k and 0 <= b < k):
            raise UnifiedVizError(f"border pair ({a}, {b}) needs two different classes in 0..{k - 1}")
        row = torch.zeros(k)
        row[a], row[b] = target, 1 - target
        rows += [row] * starts
        names += [f"border={a}:{b}@{target:g}"] * starts
    targets = torch.stack(rows)
    # The border is a property of one sequence, not of its jittered copies: no transforms unless asked.
    options.setdefault("transforms", None)
    main = OBJECTIVES.get("border")(targets)
    return _run(adapter, main, names, [None] * len(names), targets, score="border", **options)


def _run(adapter, main: Objective, names, classes, targets, *, score: str, steps: int = 300, lr: float = 0.05,
         smoothing: float | None = None, l2: float = 0.0, tv: float = 0.0, gaussian: float = 0.0,
         sigma: float = 2.0, realism: float = 0.0, k: int = 1, real: SequenceData | None = None,
         init_sd: float = 1.0, transforms: str | None = "standard", optimizer: str = "adam", seed: int = 0,
         progress: bool = False) -> Dream:
    model = adapter.model
    if len(model.spec.size) != 1:
        raise UnifiedVizError(f"Sequence Dreaming needs a 1-D model (input [C, L]); this one takes {model.spec.shape}")
    objective = main
    weights = {"l2": l2, "tv": tv, "gaussian": gaussian, "realism": realism}
    for name, w in weights.items():
        if w < 0:
            raise UnifiedVizError(f"{name} weight must be >= 0, got {w}")
    if l2:
        objective = objective - l2 * OBJECTIVES.get("l2")()
    if tv:
        objective = objective - tv * OBJECTIVES.get("total_variation")()
    if gaussian:
        objective = objective - gaussian * OBJECTIVES.get("gaussian")(sigma)
    if realism:
        real = real if real is not None else model_sequences(model.source, model.spec, "train")
        objective = objective - realism * OBJECTIVES.get("realism")(real.x, real.y, classes, k)
    seeds = image_seeds(seed, names)
    options = {"sd": init_sd} if smoothing is None else {"sd": init_sd, "smoothing": smoothing}
    param = make_param("sequence", len(names), model.spec, seed=seeds, **options)
    result = render(adapter, objective, param, steps=steps, lr=lr, optimizer=optimizer, transforms=transforms,
                    seed=seeds, names=names, progress=progress)
    probs = class_probabilities(model, result.images.to(next(iter(model.buffers())).device))
    metadata = {**result.metadata, "score": score, "starts_seeded_from": seed, "smoothing": smoothing,
                "init_sd": init_sd, **weights, "sigma": sigma if gaussian else None, "k": k if realism else None}
    return Dream(result.images, names, list(classes), targets, probs, result.final, metadata)


def _num_classes(adapter) -> int:
    with torch.no_grad():
        x = torch.full((1, *adapter.model.spec.shape), 0.5, device=next(iter(adapter.model.buffers())).device)
        return int(adapter.model(x).shape[-1])


__all__ = ["Dream", "border_dream", "dream"]
