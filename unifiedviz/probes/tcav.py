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


def welch_p(a, b) -> float:
    """Two-sided Welch t-test p-value; constant samples (all runs 0 or 1, common for TCAV) are
    decided exactly: equal constants give 1, one constant sample is tested as a one-sample t-test
    of the other against it, two different constants give 0."""
    from scipy.stats import ttest_1samp, ttest_ind

    a, b = np.asarray(a, float), np.asarray(b, float)
    ca, cb = np.ptp(a) == 0, np.ptp(b) == 0
    if ca and cb:
        return 1.0 if a[0] == b[0] else 0.0
    if ca or cb:
        const, other = (a[0], b) if ca else (b[0], a)
        return float(ttest_1samp(other, const).pvalue)
    return float(ttest_ind(a, b, equal_var=False).pvalue)


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

    As in Kim et al. (2018), run r fits the concept CAV on `concept` vs a random set N_r drawn from
    `negatives`, and a random-vs-random CAV on a random set R_r drawn from `random_pool` (default:
    `negatives`, disjoint from N_r) vs the same N_r; both lists have `runs` scores, and the
    p-value is a two-sided Welch t-test of the concept's scores against the random ones.
    `resample_concept`: each run draws `set_size` images of `concept` (a pool) afresh.
    Passing the same tensor as `concept` and `random_pool` (with `resample_concept`) is the null
    check "is a random image set significant?": each run draws the pseudo-concept set and R_r
    disjointly from that one pool, so both CAV lists come from the same distribution (a fixed
    pseudo-concept set against a separate random pool is not exchangeable: its finite-sample
    quirks make it "significant" far more often than alpha)."""
    if runs < 2:
        raise UnifiedVizError(f"TCAV's significance test needs at least 2 runs, got {runs}")
    pool = negatives if random_pool is None else random_pool
    shared = random_pool is not None and random_pool is concept  # null check: one pool for both sets
    if shared and not resample_concept:
        raise UnifiedVizError("TCAV with the concept set as its own random pool needs resample_concept=True")
    m = set_size or len(concept)
    if m < 2:
        raise UnifiedVizError(f"TCAV set_size must be at least 2, got {m}")
    if len(negatives) < m or len(pool) < (2 * m if random_pool is None or shared else m):
        raise UnifiedVizError(f"TCAV runs draw {m} negatives and {m} random images per run: give at least "
                              f"{2 * m} negatives (or a smaller set_size)")
    grads = layer_gradients(adapter, layer, inputs, target)
    neg_all = activations(adapter, layer, negatives)
    pool_all = neg_all if random_pool is None else activations(adapter, layer, pool)
    pos = pool_all if shared else activations(adapter, layer, concept)
    g = np.random.default_rng(seed)
    scores, rand = [], []
    for r in range(runs):
        perm = g.permutation(len(negatives))
        n_idx = perm[:m]
        if shared:
            pp = g.permutation(len(pool))
            c_idx, r_idx = pp[:m], pp[m:2 * m]
        else:
            r_idx = perm[m:2 * m] if random_pool is None else g.permutation(len(pool))[:m]
            c_idx = g.permutation(len(pos))[:m] if resample_concept else None
        neg = neg_all.select(torch.as_tensor(n_idx))
        cpos = pos.select(torch.as_tensor(c_idx)) if c_idx is not None else pos
        cav = fit_probe(kind, cpos, neg, seed=seed + r)
        rcav = fit_probe(kind, pool_all.select(torch.as_tensor(r_idx)), neg, seed=seed + r)
        scores.append(tcav_score(directional_derivatives(grads, cav)))
        rand.append(tcav_score(directional_derivatives(grads, rcav)))
    p = welch_p(scores, rand)
    return TCAVResult([float(s) for s in scores], [float(s) for s in rand], p, alpha,
                      {"target": int(target), "layer": layer, "kind": kind, "runs": runs, "set_size": m})


__all__ = ["TCAVResult", "directional_derivatives", "layer_gradients", "tcav", "tcav_score", "welch_p"]
