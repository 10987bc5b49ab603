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

from contextlib import nullcontext

from .config import MetricsConfig
from .features import extract
from .metrics import METRICS, class_means, embed_2d, weight_vectors
from .train import Progress, embedding_work

#: The cosine figures get exact pair similarities up to this many pairs, a seeded sample above.
MAX_PLOTTED_PAIRS = 1_000_000
#: Sets of at most this many vectors (the class means) are drawn as a similarity matrix.
MATRIX_MAX = 20


def measure(
    model: nn.Module,
    loader: DataLoader,
    cfg: MetricsConfig,
    *,
    device,
    seed: int,
    full: bool = True,
    progress: bool = False,
    stages: Progress | None = None,
    run_name: str = "",
) -> tuple[dict, dict[tuple, object]]:
    """(metrics, figure data): 2-D embeddings keyed by (layer, method) and, with `full`, the
    pairwise cosine data keyed by ("cosine", layer, kind) (see `cosine_pairs`).

    `stages` announces measuring and each embedding (`Progress`), `run_name` naming the model.

    Always the metrics registered with `every_round=True` (accuracy, silhouette/Davies-Bouldin
    on the raw features of `cfg.layers`, the per-image cosine histogram of `cfg.cosine_layers`).
    With `full` (final models, not every active-learning round) every metric: also t-SNE/UMAP
    with the clustering scores on each 2-D embedding (the paper's numbers), unit selectivity,
    and cosine histograms of class-mean features and of the layer's per-neuron weight vectors.
    """
    def stage(text: str, kind: str, work: float):
        return stages.stage(f"{run_name}: {text}" if run_name else text, kind=kind, work=work) if stages else nullcontext()

    layers = list(dict.fromkeys(cfg.layers + cfg.cosine_layers))
    n_images = len(loader.dataset) if hasattr(loader, "dataset") else 0
    with stage(f"measuring {n_images} test images", "measuring", max(n_images, 1)):
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
                label = {"tsne": "t-SNE", "umap": "UMAP"}.get(method, method)
                with stage(f"{label} of {layer} ({x.shape[0]} points x {x.shape[1]} dims)", label,
                           embedding_work(x.shape[0])):
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
        if full:  # what the cosine figures draw
            sets = {"images": f.flat[layer], "class_means": class_means(f.flat[layer], labels)}
            if weight is not None:
                sets["weights"] = weight_vectors(weight)
            for kind, vectors in sets.items():
                if kind in entry:
                    embeddings[("cosine", layer, kind)] = cosine_pairs(vectors, seed=seed)
    return out, embeddings


def cosine_pairs(x, *, seed: int = 0, max_pairs: int = MAX_PLOTTED_PAIRS) -> dict:
    """The cosine similarities of the pairs i < j of rows of `x`, for a figure.

    Returns `values` (float32: every pair, or a seeded uniform sample of `max_pairs` of them),
    `pairs` (how many pairs there are), `vectors`, `sampled`, and for at most `MATRIX_MAX`
    vectors the full `matrix` [n, n]. Zero rows have similarity 0 (as in `cosine_histogram`).
    """
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    n = x.shape[0]
    unit = x / x.norm(dim=1, keepdim=True).clamp(min=1e-12)
    pairs = n * (n - 1) // 2
    out = {"vectors": n, "pairs": pairs, "sampled": pairs > max_pairs}
    if pairs <= max_pairs:
        i, j = torch.triu_indices(n, n, offset=1)
    else:
        g = torch.Generator().manual_seed(seed)
        i = torch.randint(0, n, (2 * max_pairs,), generator=g)
        j = torch.randint(0, n, (2 * max_pairs,), generator=g)
        keep = (i != j).nonzero().squeeze(1)[:max_pairs]
        i, j = i[keep], j[keep]
    values = torch.cat([(unit[i[k:k + 65536]] * unit[j[k:k + 65536]]).sum(1) for k in range(0, len(i), 65536)])
    out["values"] = values.numpy()
    if n <= MATRIX_MAX:
        out["matrix"] = (unit @ unit.T).numpy()
    return out


def _weight(model: nn.Module, layer: str) -> torch.Tensor | None:
    """The layer's weight with one row per output unit (conv or linear), if it has one."""
    net = getattr(model, "net", model)
    w = getattr(net.get_submodule(split_call(layer)[0]), "weight", None)
    return w if isinstance(w, torch.Tensor) and w.dim() >= 2 else None
