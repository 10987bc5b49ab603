"""TCAV (Kim et al. 2018): the fraction of a class's inputs whose class logit rises along a CAV,
with a two-sided t-test of the concept's scores over several runs against random CAVs' scores."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..adapters import LOGITS
from ..errors import UnifiedVizError
from .cav import Acts, activations, fit_probe


def layer_gradients(adapter, layer: str, images: torch.Tensor, target: int, *, batch: int = 64) -> Acts:
    """d logit[target] / d activation at `layer`, canonical [N, ...] (the model's weights stay frozen)."""
    info = adapter.layer(layer)
    parts = []
    for i in range(0, len(images), batch):
        with adapter.session([info.name, LOGITS], stop_early=False, live=True) as run, torch.enable_grad():
            acts = run(images[i:i + batch].detach().requires_grad_(True))
            live = acts[info.name] if isinstance(acts[info.name], list) else [acts[info.name]]
            grads = torch.autograd.grad(acts[LOGITS][:, target].sum(), live, allow_unused=True)
            total = sum(g.detach() for g in grads if g is not None)
            parts.append(total.float().cpu())
    return Acts(torch.cat(parts), info.layout, info.name)


def directional_derivatives(grads: Acts, direction) -> np.ndarray:
    """[N]: each input's class-logit derivative along `direction` applied at every position
    (the derivative with respect to the position-averaged features, up to the position count)."""
    v = torch.as_tensor(getattr(direction, "direction", direction), dtype=torch.float64)
    if grads.has_positions():
        return grads.position_map(v).flatten(1).sum(1).numpy()
    return grads.pooled() @ v.numpy()


def tcav_score(derivatives) -> float:
    """Fraction of inputs with a positive directional derivative."""
    d = np.asarray(derivatives)
    return float((d > 0).mean())


@dataclass
class TCAVResult:
    scores: list[float]  # concept CAV of each run
    random_scores: list[float]  # random CAV of each run
    p_value: float
    alpha: float = 0.05
    info: dict = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def significant(self) -> bool:
        return bool(self.p_value < self.alpha)

    def as_dict(self) -> dict:
        return {"tcav": self.mean, "scores": self.scores, "random_mean": float(np.mean(self.random_scores)),
                "random_scores": self.random_scores, "p_value": self.p_value, "alpha": self.alpha,
                "significant": self.significant, **self.info}


def tcav(adapter, layer: str, inputs: torch.Tensor, target: int, concept: torch.Tensor, negatives: torch.Tensor,
         *, random_pool: torch.Tensor | None = None, runs: int = 10, set_size: int | None = None,
         kind: str = "logistic", alpha: float = 0.05, seed: int = 0, resample_concept: bool = False) -> TCAVResult:
    """TCAV of `concept` images for class `target` on `inputs`, tested against random CAVs.

    Run r fits the concept CAV on `concept` vs a random subset N_r of `negatives`, and a random
    CAV on a random subset R_r of `random_pool` (default: `negatives`, disjoint from N_r) vs N_r.
    `resample_concept`: each run draws `set_size` images of `concept` (a pool) afresh, as the
    random CAVs do (a sanity check that a random image pool is not significant).
    The p-value is a two-sided Welch t-test of the concept's run scores against the random ones."""
    from scipy.stats import ttest_ind

    if runs < 2:
        raise UnifiedVizError(f"TCAV's significance test needs at least 2 runs, got {runs}")
    pool = negatives if random_pool is None else random_pool
    m = set_size or len(concept)
    if m < 2:
        raise UnifiedVizError(f"TCAV set_size must be at least 2, got {m}")
    if len(negatives) < m or len(pool) < (2 * m if random_pool is None else m):
        raise UnifiedVizError(f"TCAV runs draw {m} negatives and {m} random images per run: give at least "
                              f"{2 * m} negatives (or a smaller set_size)")
    grads = layer_gradients(adapter, layer, inputs, target)
    pos = activations(adapter, layer, concept)
    neg_all = activations(adapter, layer, negatives)
    pool_all = neg_all if random_pool is None else activations(adapter, layer, pool)
    g = np.random.default_rng(seed)
    scores, rand = [], []
    for r in range(runs):
        perm = g.permutation(len(negatives))
        n_idx = perm[:m]
        r_idx = perm[m:2 * m] if random_pool is None else g.permutation(len(pool))[:m]
        neg = neg_all.select(torch.as_tensor(n_idx))
        cpos = pos.select(torch.as_tensor(g.permutation(len(pos))[:m])) if resample_concept else pos
        cav = fit_probe(kind, cpos, neg, seed=seed + r)
        rcav = fit_probe(kind, pool_all.select(torch.as_tensor(r_idx)), neg, seed=seed + r)
        scores.append(tcav_score(directional_derivatives(grads, cav)))
        rand.append(tcav_score(directional_derivatives(grads, rcav)))
    if np.std(scores) == 0 and np.std(rand) == 0:
        p = 1.0 if scores[0] == rand[0] else 0.0
    else:
        p = float(ttest_ind(scores, rand, equal_var=False).pvalue)
    return TCAVResult([float(s) for s in scores], [float(s) for s in rand], p, alpha,
                      {"target": int(target), "layer": layer, "kind": kind, "runs": runs, "set_size": m})


__all__ = ["tcav", "tcav_score", "directional_derivatives", "layer_gradients", "TCAVResult"]
