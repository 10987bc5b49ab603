"""Measure one trained model on the test images: every registered metric (`metrics.METRICS`).

Each metric names its input kind (`metrics.INPUTS`); this module prepares those inputs once
(one pass over the test images) and files each value under its name, so a new metric needs
no line here.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from unifiedviz.adapters import split_call

from .config import MetricsConfig
from .features import extract
from .metrics import METRICS, embed_2d, weight_vectors


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

    Always the metrics registered with `every_round=True` (accuracy, silhouette/Davies-Bouldin
    on the raw features of `cfg.layers`, the per-image cosine histogram of `cfg.cosine_layers`).
    With `full` (final models, not every active-learning round) every metric: also t-SNE/UMAP
    with the clustering scores on each 2-D embedding (the paper's numbers), unit selectivity,
    and cosine histograms of class-mean features and of the layer's per-neuron weight vectors.
    """
    layers = list(dict.fromkeys(cfg.layers + cfg.cosine_layers))
    f = extract(model, loader, layers, device=device, logits=True, progress=progress, desc="measuring")
    labels = f.labels
    wanted = [e for e in METRICS.entries() if full or e.obj.every_round]
    kinds = {e.obj.input for e in wanted}

    def run(kind: str, x, into: dict) -> dict:
        for e in wanted:
            if e.obj.input == kind:
                if e.name in into:
                    raise ValueError(f"metric {e.name!r} ({kind}) would overwrite the {e.name!r} already measured")
                into[e.name] = e.obj.fn(x, labels, cfg)
        return into

    out: dict = run("logits", f.logits, {"images": len(labels)})
    out.update(layers={}, cosine={})
    embeddings = {}
    for layer in cfg.layers:
        x = f.flat[layer]
        entry = {"dims": int(x.shape[1]), "raw": run("points", x, {})}
        if full:
            for method in cfg.embeddings:
                xy = embed_2d(x, method, seed=seed, perplexity=cfg.perplexity, neighbors=cfg.umap_neighbors,
                              tsne_backend=cfg.tsne_backend)
                entry[method] = run("points", xy, {})
                embeddings[(layer, method)] = xy
        out["layers"][layer] = run("units", f.units[layer], entry)
    for layer in cfg.cosine_layers:
        entry = run("features", f.flat[layer], {})
        weight = _weight(model, layer) if "weights" in kinds else None
        if weight is not None:
            run("weights", weight_vectors(weight), entry)
        out["cosine"][layer] = entry
    return out, embeddings


def _weight(model: nn.Module, layer: str) -> torch.Tensor | None:
    """The layer's weight with one row per output unit (conv or linear), if it has one."""
    net = getattr(model, "net", model)
    w = getattr(net.get_submodule(split_call(layer)[0]), "weight", None)
    return w if isinstance(w, torch.Tensor) and w.dim() >= 2 else None
