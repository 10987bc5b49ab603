"""Measure one trained model on the test images: accuracy and every configured metric."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from .config import MetricsConfig
from .features import extract
from .metrics import accuracy, class_means, clustering, cosine_histogram, embed_2d, unit_selectivity, weight_vectors


def measure(
    model: nn.Module,
    loader: DataLoader,
    cfg: MetricsConfig,
    *,
    device,
    seed: int,
    full: bool = True,
    progress: bool = False,
) -> tuple[dict, dict[tuple[str, str], np.ndarray]]:
    """(metrics, 2-D embeddings keyed by (layer, method)).

    Always: accuracy, silhouette/Davies-Bouldin on the raw features of `cfg.layers`, and the
    per-image cosine histogram of `cfg.cosine_layers`. With `full` (final models, not every
    active-learning round) also: t-SNE/UMAP with clustering scores on the 2-D embedding
    (the paper's numbers), unit selectivity, and cosine histograms of class-mean features
    and of the layer's per-neuron weight vectors.
    """
    layers = list(dict.fromkeys(cfg.layers + cfg.cosine_layers))
    f = extract(model, loader, layers, device=device, logits=True, progress=progress, desc="measuring")
    labels = f.labels
    out: dict = {"images": len(labels), "accuracy": accuracy(f.logits, labels), "layers": {}, "cosine": {}}
    embeddings = {}
    for layer in cfg.layers:
        x = f.flat[layer]
        entry = {"dims": int(x.shape[1]), "raw": clustering(x, labels)}
        if full:
            for method in cfg.embeddings:
                xy = embed_2d(x, method, seed=seed, perplexity=cfg.perplexity, neighbors=cfg.umap_neighbors,
                              tsne_backend=cfg.tsne_backend)
                entry[method] = clustering(xy, labels)
                embeddings[(layer, method)] = xy
            entry["units"] = unit_selectivity(f.units[layer], labels, respond_fraction=cfg.respond_fraction)
        out["layers"][layer] = entry
    for layer in cfg.cosine_layers:
        x = f.flat[layer]
        entry = {"images": cosine_histogram(x, bins=cfg.cosine_bins)}
        if full:
            entry["class_means"] = cosine_histogram(class_means(x, labels), bins=cfg.cosine_bins)
            weight = _weight(model, layer)
            if weight is not None:
                entry["weights"] = cosine_histogram(weight_vectors(weight), bins=cfg.cosine_bins)
        out["cosine"][layer] = entry
    return out, embeddings


def _weight(model: nn.Module, layer: str) -> torch.Tensor | None:
    """The layer's weight with one row per output unit (conv or linear), if it has one."""
    net = getattr(model, "net", model)
    w = getattr(net.get_submodule(layer.split("#")[0]), "weight", None)
    return w if isinstance(w, torch.Tensor) and w.dim() >= 2 else None
