"""Dictionary metrics: reconstruction, sparsity, geometry, stability, and latents vs neurons.

Streaming evaluation (`evaluate`) accumulates sums over batches of rows, so it never holds the
activation set. Explained variance = 1 - sum|x - x_hat|^2 / sum|x - mean(x)|^2; normalised MSE =
sum|x - x_hat|^2 / sum|x|^2; L0 = mean number of firing latents per row; a latent's density is the
fraction of rows it fires on: dead = 0, dense > `dense_above` (default 0.5).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from superposition.metrics import unit_selectivity

from .sae import SparseAutoencoder


@torch.no_grad()
def evaluate(sae: SparseAutoencoder, batches: Iterable[torch.Tensor], *, dense_above: float = 0.5,
             bins: int = 20) -> dict:
    """Reconstruction and sparsity over every row of `batches` (a finite iterable of [N, D])."""
    n, err, sq = 0, 0.0, 0.0
    total = None
    fires = torch.zeros(sae.n_latents, dtype=torch.float64)
    active = 0.0
    for x in batches:
        x = x.float()
        z, x_hat = sae(x)
        n += len(x)
        err += float((x - x_hat).double().pow(2).sum())
        sq += float(x.double().pow(2).sum())
        s = x.double().sum(0)
        total = s if total is None else total + s
        f = (z > 0)
        fires += f.sum(0).double()
        active += float(f.sum())
    var = sq - float(total.pow(2).sum()) / n
    density = (fires / n).numpy()
    return {
        "rows": n,
        "explained_variance": 1.0 - err / var,
        "nmse": err / sq,
        "l0": active / n,
        "latents": sae.n_latents,
        "dead": int((density == 0).sum()),
        "dense": int((density > dense_above).sum()),
        "density_histogram": density_histogram(density, bins=bins),
    }


def density_histogram(density: np.ndarray, *, bins: int = 20, low: float = -6.0) -> dict:
    """Histogram of log10(latent density) over [low, 0]; dead latents counted apart."""
    live = density[density > 0]
    counts, edges = np.histogram(np.log10(live), bins=bins, range=(low, 0.0))
    return {"log10_edges": edges.tolist(), "counts": counts.tolist(), "dead": int((density == 0).sum())}


def _unit_rows(w: torch.Tensor) -> torch.Tensor:
    w = torch.as_tensor(w).detach().double()
    return w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)


def collinearity(atoms: torch.Tensor) -> dict:
    """Largest and mean largest off-diagonal |cos| between dictionary atoms (rows)."""
    w = _unit_rows(atoms)
    c = (w @ w.T).abs()
    c.fill_diagonal_(0)
    per = c.max(1).values
    return {"max_abs_cos": float(per.max()), "mean_max_abs_cos": float(per.mean())}


def matched_cosine(a: torch.Tensor, b: torch.Tensor) -> dict:
    """Hungarian one-to-one matching of the rows of `a` to rows of `b` by cosine (stability across seeds)."""
    c = (_unit_rows(a) @ _unit_rows(b).T).numpy()
    rows, cols = linear_sum_assignment(-c)
    matched = c[rows, cols]
    return {"mean": float(matched.mean()), "median": float(np.median(matched)),
            "fraction_above_0.9": float((matched > 0.9).mean())}


def best_match(features: torch.Tensor, atoms: torch.Tensor) -> torch.Tensor:
    """For each row of `features`, its highest cosine with any row of `atoms` (planted-feature recovery)."""
    return (_unit_rows(features) @ _unit_rows(atoms).T).max(1).values.float()


@torch.no_grad()
def per_image(sae: SparseAutoencoder, rows: torch.Tensor, positions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(neurons, latents) per image: each unit's mean over the image's `positions` rows."""
    z = sae.encode(rows)
    return rows.view(-1, positions, rows.shape[1]).mean(1), z.view(-1, positions, z.shape[1]).mean(1)


def latents_vs_neurons(neurons: torch.Tensor, latents: torch.Tensor, labels: torch.Tensor, *,
                       respond_fraction: float = 0.5) -> dict:
    """Class selectivity and classes responded to, per neuron and per latent (superposition.metrics rules)."""
    return {"neurons": unit_selectivity(neurons, labels, respond_fraction=respond_fraction),
            "latents": unit_selectivity(latents, labels, respond_fraction=respond_fraction)}
