"""Benchmark: superposition metrics vs plain scikit-learn, and Lightning training vs a bare loop.

    python bench/superposition_metrics.py [--n 10000] [--dim 512] [--repeats 3] [--skip-tsne] [--part training]

Prints time ratios (ours / reference; below 1 means we are faster) from interleaved A/B runs,
since this VM's speed swings from minute to minute. The reference calls are
`sklearn.metrics.silhouette_score`, `davies_bouldin_score`, `sklearn.manifold.TSNE` with its
defaults, and for cosine histograms `cosine_similarity` + `np.histogram` over all pairs.
Training: images/second of `superposition.train.fit` (Lightning) against a bare PyTorch loop
with the same model, data loader, optimiser and batch size (target: overhead <= 10%).
"""
from __future__ import annotations

import argparse
import logging
import statistics
import time

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.manifold import TSNE
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.metrics.pairwise import cosine_similarity
from torch.utils.data import DataLoader, TensorDataset

from superposition.config import ModelConfig, TrainConfig
from superposition.metrics import cosine_histogram, davies_bouldin, embed_2d, silhouette
from superposition.models import build_model
from superposition.train import Classifier, make_trainer


def features(n: int, dim: int, classes: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered float32 features, like a trained network's penultimate layer."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    x = rng.normal(size=(n, dim)) + 1.5 * rng.normal(size=(classes, dim))[labels]
    return np.maximum(x, 0).astype(np.float32), labels  # post-ReLU


def sklearn_cosine(x: np.ndarray, bins: int = 50) -> float:
    sims = cosine_similarity(x)[np.triu_indices(len(x), 1)]
    np.histogram(sims, bins=bins, range=(-1, 1))
    return float(sims.mean())


def ab(name: str, ours, reference, repeats: int) -> None:
    """Interleave the two calls `repeats` times; print the median time of each and their ratio."""
    t_ours, t_ref = [], []
    for _ in range(repeats):
        for fn, times in ((ours, t_ours), (reference, t_ref)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    a, b = statistics.median(t_ours), statistics.median(t_ref)
    print(f"  {name:<18} ours {a:8.2f} s   scikit-learn {b:8.2f} s   ratio {a / b:5.2f}")


def bench_metrics(n: int, dim: int, repeats: int, tsne: bool) -> None:
    x, labels = features(n, dim)
    print(f"metrics on {n} x {dim} features, {repeats} interleaved repeats (median)")
    ours_s, ref_s = silhouette(x, labels), silhouette_score(x, labels)
    ours_d, ref_d = davies_bouldin(x, labels), davies_bouldin_score(x, labels)
    print(f"  values: silhouette {ours_s:.6f} vs {ref_s:.6f}, Davies-Bouldin {ours_d:.6f} vs {ref_d:.6f}")
    ab("silhouette", lambda: silhouette(x, labels), lambda: silhouette_score(x, labels), repeats)
    ab("davies_bouldin", lambda: davies_bouldin(x, labels), lambda: davies_bouldin_score(x, labels), repeats)
    ab("cosine histogram", lambda: cosine_histogram(x, bins=50), lambda: sklearn_cosine(x), repeats)
    if tsne:
        for backend in ("sklearn", "opentsne"):
            ab(f"t-SNE ({backend})", lambda: embed_2d(x, "tsne", seed=0, tsne_backend=backend),
               lambda: TSNE(n_components=2, random_state=0).fit_transform(x), 1)


def bench_training(batches: int, batch_size: int, epochs: int, repeats: int, image_size: int) -> None:
    g = torch.Generator().manual_seed(0)
    n = batches * batch_size
    data = TensorDataset(torch.rand(n, 3, image_size, image_size, generator=g), torch.randint(0, 10, (n,), generator=g))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True, generator=g)
    cfg = TrainConfig(epochs=epochs, accelerator="cpu", devices=1, progress_bar=False, precision="32-true")
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="resnet18"), 10, image_size)

    def lightning() -> None:
        model.train()
        make_trainer(cfg).fit(Classifier(model, cfg), train_dataloaders=loader)

    def bare() -> None:
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        for _ in range(epochs):
            for x, y in loader:
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()

    bare()  # warm up allocator and kernels
    t_l, t_b = [], []
    for _ in range(repeats):
        for fn, times in ((lightning, t_l), (bare, t_b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    images = n * epochs
    ips_l, ips_b = images / statistics.median(t_l), images / statistics.median(t_b)
    print(f"training resnet18 {image_size}x{image_size}, batch {batch_size}, {batches} batches x {epochs} epochs, "
          f"{repeats} interleaved repeats (median)")
    print(f"  Lightning {ips_l:7.1f} img/s   bare loop {ips_b:7.1f} img/s   "
          f"Lightning overhead {100 * (ips_b / ips_l - 1):+.1f}%")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-tsne", action="store_true", help="t-SNE takes ~30 s per call on 2 cores")
    p.add_argument("--train-batches", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--part", choices=["all", "metrics", "training"], default="all")
    args = p.parse_args()
    L.seed_everything(0, verbose=False)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    if args.part in ("all", "metrics"):
        bench_metrics(args.n, args.dim, args.repeats, not args.skip_tsne)
    if args.part in ("all", "training"):
        bench_training(args.train_batches, args.batch_size, args.epochs, args.repeats, args.image_size)


if __name__ == "__main__":
    main()
