"""Dictionary metrics: reconstruction, sparsity, geometry, stability, and latents vs neurons.

Latents vs neurons: class selectivity and classes responded to (`latents_vs_neurons`), and the
monosemanticity score with an independent image encoder (`monosemanticity`, Pach et al. 2025).

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


def default_embedding_layer(adapter) -> str:
    """The layer that feeds a classifier's head (pre-logits features): the last readable one before it."""
    from unifiedviz.adapters import LOGITS
    from unifiedviz.errors import UnifiedVizError

    from .buffer import READABLE

    infos = [i for i in adapter.layers(each_call=False) if i.name != LOGITS]
    found = [i.name for i in infos[:-1] if i.calls == 1 and i.layout.kind in READABLE]
    if not found:
        raise UnifiedVizError("the encoder has no layer before its head to embed images with: give --encoder-layer")
    return found[-1]


@torch.no_grad()
def image_embeddings(adapter, layer: str, batches: Iterable[torch.Tensor]) -> torch.Tensor:
    """`[N, D]` one embedding per image: `layer`'s features, averaged over positions / patch tokens."""
    from .buffer import rows_of

    info = adapter.layer(layer)
    out = []
    with adapter.session([info.name]) as run:
        for x in batches:
            r = rows_of(info.layout, run(x)[info.name]).float()
            out.append(r.view(len(x), -1, r.shape[1]).mean(1))
    return torch.cat(out)


def monosemanticity_scores(units: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """MonoSemanticity score per unit (Pach et al. 2025, "Sparse Autoencoders Learn Monosemantic
    Features in Vision-Language Models", eq. 1 and their `metric.py`): `[N, K]` activations of K units
    on N images, `[N, D]` embeddings of the same images by an independent encoder -> `[K]`.

    Each unit's activations are scaled to [0, 1] over the images (min-max); MS is the average cosine
    similarity of the embeddings over all image pairs i < j, each pair weighted by a_i * a_j.
    Computed in O(N K D) with s = sum_i a_i e_i: sum_{i != j} a_i a_j cos_ij = |s|^2 - sum_i a_i^2 |e_i|^2
    (unit-norm e). A unit that is constant over the images (or fires on one image only) has no
    weighted pair: NaN.
    """
    a = torch.as_tensor(units).double()
    lo, hi = a.min(0).values, a.max(0).values
    live = hi > lo
    scores = pair_weighted_similarity((a - lo) / torch.where(live, hi - lo, torch.ones_like(hi)), embeddings)
    return torch.where(live, scores, torch.nan)


def pair_weighted_similarity(weights: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """Per column k of `weights` `[N, K]`: sum_{i != j} w_ik w_jk cos(e_i, e_j) / sum_{i != j} w_ik w_jk (NaN: no pair)."""
    a = torch.as_tensor(weights).double()
    e = torch.nn.functional.normalize(torch.as_tensor(embeddings).double(), dim=1)
    self_sim = e.pow(2).sum(1)  # 1, or 0 for an all-zero embedding
    weighted = (e.T @ a).pow(2).sum(0) - (a.pow(2) * self_sim[:, None]).sum(0)
    total = a.sum(0).pow(2) - a.pow(2).sum(0)
    ok = total > 1e-12
    return torch.where(ok, weighted / torch.where(ok, total, torch.ones_like(total)), torch.nan)


def _ms_summary(scores: torch.Tensor) -> dict:
    live = scores[~scores.isnan()]
    n = len(live)
    return {"units": len(scores), "dead": len(scores) - n,
            "mean": float(live.mean()) if n else float("nan"),
            "median": float(live.median()) if n else float("nan"),
            "std": float(live.std()) if n > 1 else float("nan"),
            "max": float(live.max()) if n else float("nan")}


def monosemanticity(neurons: torch.Tensor, latents: torch.Tensor, embeddings: torch.Tensor) -> dict:
    """MS of every neuron and every latent on the same images, side by side (dead units excluded)."""
    if not len(neurons) == len(latents) == len(embeddings):
        from unifiedviz.errors import UnifiedVizError

        raise UnifiedVizError(f"monosemanticity needs one embedding per image: {len(embeddings)} embeddings for "
                              f"{len(neurons)} images (give the encoder the same data)")
    # the reference: a unit that weights every image alike scores the encoder's mean pairwise cosine
    alike = pair_weighted_similarity(torch.ones(len(embeddings), 1), embeddings)
    return {"neurons": _ms_summary(monosemanticity_scores(neurons, embeddings)),
            "latents": _ms_summary(monosemanticity_scores(latents, embeddings)),
            "all_images_alike": float(alike[0])}
