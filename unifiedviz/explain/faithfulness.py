"""Faithfulness of attribution maps, as numbers.

- `deletion_insertion` (Petsiuk et al., RISE): pixels are removed (set to a baseline) or
  inserted (into the baseline image) in the order of the map, most important first,
  in `steps` equal steps; the unit's curve against the fraction changed is integrated
  (trapezoid). A faithful map has a low deletion AUC and a high insertion AUC. For class units
  the curve is the class probability (softmax), otherwise the unit's raw value.
- `randomisation_check` (Adebayo et al., "Sanity checks for saliency maps"): the map must
  change when the model's weights are re-initialised. It passes when the mean Spearman rank
  correlation between the maps of the trained and the randomised model is below `threshold`.
  A map that does not depend on the model (an edge detector) fails it.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..adapters import Adapter, as_adapter
from ..errors import UnifiedVizError
from ..unit_kinds import UNIT_KINDS
from .base import is_vector, unit_scorer


def _curve_fn(adapter: Adapter, unit: str, probability: bool | None):
    resolved = adapter.resolve(unit)
    use_prob = UNIT_KINDS.get(resolved.unit.kind).logit and resolved.unit.layer is None if probability is None \
        else probability
    if not use_prob:
        return None
    k = resolved.unit.index

    def f(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(adapter.capture(x, "<logits>")["<logits>"], -1)[:, k]

    return f


def deletion_insertion(model, x: torch.Tensor, maps: torch.Tensor, unit: str, *, steps: int = 32,
                       baseline: float = 0.0, probability: bool | None = None, batch_size: int = 256
                       ) -> dict[str, np.ndarray]:
    """Deletion and insertion AUC per image (`{"deletion": [B], "insertion": [B]}`, curves too).

    `maps` has the input's spatial shape (`[B, H, W]` or `[B, F]`); ties are broken by position.
    """
    adapter = as_adapter(model)
    if maps.shape[0] != x.shape[0] or maps.shape[1:] != (x.shape[1:] if is_vector(adapter) else x.shape[2:]):
        raise UnifiedVizError(f"maps of shape {tuple(maps.shape)} do not fit inputs of shape {tuple(x.shape)}")
    prob = _curve_fn(adapter, unit, probability)
    b = x.shape[0]
    n = maps[0].numel()
    order = torch.argsort(maps.reshape(b, n), dim=1, descending=True, stable=True)
    counts = [round(n * s / steps) for s in range(steps + 1)]
    frac = np.array(counts, dtype=np.float64) / n
    out: dict[str, np.ndarray] = {}
    base = torch.full_like(x, baseline)
    for mode in ("deletion", "insertion"):
        seqs = []
        for i in range(b):
            keep = torch.zeros(len(counts), n, dtype=x.dtype, device=x.device)
            for s, c in enumerate(counts):
                keep[s, order[i, :c]] = 1.0
            if mode == "deletion":
                keep = 1.0 - keep  # 1: still the image
            shape = (len(counts), n) if is_vector(adapter) else (len(counts), 1, *x.shape[2:])
            keep = keep.view(shape)
            seqs.append(base[i] + keep * (x[i] - base[i]))
        batch = torch.cat(seqs)
        vals = []
        with torch.no_grad():
            if prob is not None:
                for j in range(0, len(batch), batch_size):
                    vals.append(prob(batch[j:j + batch_size]))
            else:
                with unit_scorer(adapter, unit) as score:
                    for j in range(0, len(batch), batch_size):
                        vals.append(score(batch[j:j + batch_size])[0])
        curves = torch.cat(vals).view(b, len(counts)).double().cpu().numpy()
        out[mode] = (np.trapezoid if hasattr(np, "trapezoid") else np.trapz)(curves, frac, axis=1)
        out[f"{mode}_curve"] = curves
    out["fraction"] = frac
    return out


def random_maps(x: torch.Tensor, *, spatial: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """Uniform random maps (the baseline a method must beat)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((x.shape[0], *spatial), generator=gen).to(x.device)


def randomised_copy(model, *, seed: int = 0) -> nn.Module:
    """A deep copy of `model` with every layer that has `reset_parameters` re-initialised (seeded)."""
    adapter = as_adapter(model)
    clone = copy.deepcopy(adapter.model)
    state = torch.random.get_rng_state()  # reset_parameters draws from the global generator
    try:
        torch.manual_seed(seed)
        n = 0
        for m in clone.modules():
            if m is not clone and hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False)):
                m.reset_parameters()
                n += 1
        if n == 0:
            raise UnifiedVizError("no layer of this model can be re-initialised (none has reset_parameters)")
    finally:
        torch.random.set_rng_state(state)
    return clone


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman rank correlation of two maps (average ranks for ties)."""
    from scipy.stats import spearmanr

    av, bv = a.flatten().double().cpu().numpy(), b.flatten().double().cpu().numpy()
    if np.ptp(av) == 0 or np.ptp(bv) == 0:
        return 0.0
    return float(spearmanr(av, bv).statistic)


@dataclass
class RandomisationCheck:
    correlations: list[float]  # per image: Spearman(map of trained model, map of randomised model)
    threshold: float

    @property
    def mean(self) -> float:
        return float(np.mean(self.correlations))

    @property
    def passed(self) -> bool:
        return self.mean < self.threshold

    def to_dict(self) -> dict:
        return {"mean_spearman": self.mean, "threshold": self.threshold, "passed": self.passed,
                "spearman": self.correlations}


def randomisation_check(model, x: torch.Tensor, unit: str, method: str | Callable, *, threshold: float = 0.5,
                        init_seed: int = 0, absolute: bool = False, **options) -> RandomisationCheck:
    """Compare `method`'s maps on `model` and on a re-initialised copy (signed maps; `absolute`: rank |map|).

    `method` is an `EXPLAINERS` name or a callable `(adapter, unit, x) -> maps`.
    """
    from .base import EXPLAINERS

    fn = EXPLAINERS.get(method) if isinstance(method, str) else method
    adapter = as_adapter(model)
    rand = as_adapter(randomised_copy(adapter, seed=init_seed))
    m1 = fn(adapter, unit, x, **options)
    m2 = fn(rand, unit, x, **options)
    if absolute:
        m1, m2 = m1.abs(), m2.abs()
    return RandomisationCheck([spearman(a, b) for a, b in zip(m1, m2)], threshold)


def edge_map(adapter: Adapter, unit: str, x: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of the image: looks like an explanation, ignores the model."""
    k = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device)
    g = x.mean(1, keepdim=True)
    gx = torch.nn.functional.conv2d(g, k.view(1, 1, 3, 3), padding=1)
    gy = torch.nn.functional.conv2d(g, k.t().reshape(1, 1, 3, 3), padding=1)
    return (gx ** 2 + gy ** 2).sqrt()[:, 0]
