"""Entanglement metrics on feature matrices: clustering scores, cosine histograms, unit selectivity.

Silhouette, Davies-Bouldin and pairwise cosine similarities run as chunked matrix products
in torch (rows in blocks, never an N x N matrix in memory), so 10,000 x 512 features take
a second or two, not a Python loop over pairs. They agree with scikit-learn's definitions.

`METRICS` (a `unifiedviz.registry.Registry`, filled at the end of this file) is what
`measure()` computes: each entry is a `Metric` that names its input kind (`INPUTS`: logits,
points, units, features, weights), which also says where its value lands in metrics.json.
`EMBEDDINGS` holds the 2-D embeddings (`metrics.embeddings`: tsne, umap). A new metric is one
function here, one `@register_metric(...)` line, and one row in
tests/test_registries_superposition.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from unifiedviz.errors import UnifiedVizError
from unifiedviz.registry import Registry

if TYPE_CHECKING:
    from .config import MetricsConfig

ArrayLike = np.ndarray | torch.Tensor


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).double().mean())


def _codes(labels: ArrayLike) -> tuple[torch.Tensor, int]:
    """Labels as 0..K-1 codes, and K; clustering scores need 2 <= K < N."""
    _, codes = torch.unique(torch.as_tensor(np.asarray(labels)), return_inverse=True)
    k = int(codes.max()) + 1 if len(codes) else 0
    if not 2 <= k < len(codes):
        raise UnifiedVizError(
            f"clustering scores need between 2 and N-1 classes among the N={len(codes)} measured images, "
            f"found {k}: measure more images (metrics.max_samples)"
        )
    return codes, k


def _as_tensor(x: ArrayLike, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).to(dtype).flatten(1)


def silhouette(x: ArrayLike, labels: ArrayLike, *, chunk: int = 2048, dtype: torch.dtype = torch.float32) -> float:
    """Mean silhouette coefficient with Euclidean distances (as `sklearn.metrics.silhouette_score`).

    Distances are computed in `dtype` (float32: twice as fast, ~1e-6 relative error; pass
    torch.float64 for exact agreement) and summed per class in float64. Each block of rows is
    measured only against itself and later rows; symmetry supplies the rest, halving the work.
    """
    x = _as_tensor(x, dtype)
    codes, k = _codes(labels)
    n = len(x)
    onehot = F.one_hot(codes, k).to(dtype)
    counts = onehot.sum(0).double()
    sq = (x * x).sum(1)
    sums = torch.zeros(n, k, dtype=torch.float64)  # summed distance from each point to each class
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        d = torch.addmm(sq[None, s:], x[s:e], x[s:].T, alpha=-2).add_(sq[s:e, None]).clamp_min_(0).sqrt_()
        d[torch.arange(e - s), torch.arange(e - s)] = 0.0  # exact zero self-distance
        sums[s:e] += (d @ onehot[s:]).double()  # rows s:e against columns s..n
        sums[e:] += (d[:, e - s:].T @ onehot[s:e]).double()  # the same pairs seen from the later rows
    rows = torch.arange(n)
    a = sums[rows, codes] / (counts[codes] - 1).clamp_min(1)
    mean_other = sums / counts
    mean_other[rows, codes] = torch.inf
    b = mean_other.min(1).values
    sil = (b - a) / torch.maximum(a, b)
    # Singleton classes score 0 (scikit-learn's convention); 0/0 for duplicates also -> 0.
    sil = torch.where((counts[codes] > 1) & torch.isfinite(sil), sil, torch.zeros_like(sil))
    return float(sil.mean())


def davies_bouldin(x: ArrayLike, labels: ArrayLike, *, chunk: int = 8192, dtype: torch.dtype = torch.float32) -> float:
    """Davies-Bouldin index (as `sklearn.metrics.davies_bouldin_score`); lower is better separated."""
    x = _as_tensor(x, dtype)
    codes, k = _codes(labels)
    counts = torch.bincount(codes, minlength=k).to(dtype)
    centroids = torch.zeros(k, x.shape[1], dtype=dtype).index_add_(0, codes, x) / counts[:, None]
    spread = torch.zeros(k, dtype=dtype)
    for s in range(0, len(x), chunk):
        e = min(s + chunk, len(x))
        spread.index_add_(0, codes[s:e], (x[s:e] - centroids[codes[s:e]]).norm(dim=1))
    spread /= counts
    between = torch.cdist(centroids, centroids)
    if torch.allclose(spread, torch.zeros_like(spread)) or torch.allclose(between, torch.zeros_like(between)):
        return 0.0
    between[between == 0] = torch.inf  # the diagonal (and coincident centroids) never wins the max
    ratio = (spread[:, None] + spread[None, :]) / between
    return float(ratio.max(1).values.mean())


def cosine_histogram(
    x: ArrayLike, *, bins: int = 50, value_range: tuple[float, float] = (-1.0, 1.0), chunk: int = 2048
) -> dict:
    """Histogram of cosine similarity over all pairs i < j of rows of `x`, and its mean.

    Rows of zeros have similarity 0 to everything (as `sklearn.metrics.pairwise.cosine_similarity`).
    """
    x = _as_tensor(x, torch.float32)
    n = len(x)
    if n < 2:
        raise UnifiedVizError(f"cosine similarity needs at least 2 vectors, got {n}")
    unit = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    lo, hi = value_range
    counts = torch.zeros(bins, dtype=torch.float64)
    for s in range(0, n - 1, chunk):
        e = min(s + chunk, n)
        block = (unit[s:e] @ unit[s:].T).clamp_(-1.0, 1.0)  # rows s:e against columns s..n
        c = e - s
        # Pairs j > i: the strict upper triangle of the leading square, then every later column.
        for sims in (block[:, :c][torch.ones(c, c, dtype=torch.bool).triu_(1)], block[:, c:].reshape(-1)):
            counts += torch.histc(sims, bins=bins, min=lo, max=hi).double()
    pairs = n * (n - 1) // 2
    # The mean needs no pairs: sum_{i<j} u_i.u_j = (|sum_i u_i|^2 - sum_i |u_i|^2) / 2, in float64.
    u64 = unit.double()
    total = u64.sum(0)
    mean = float((total @ total - (u64 * u64).sum()) / 2) / pairs
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    return {"mean": mean, "pairs": pairs, "counts": counts.long().tolist(), "edges": edges.tolist()}


def class_means(x: ArrayLike, labels: ArrayLike) -> torch.Tensor:
    """[K, D] mean feature of each class (classes in sorted label order)."""
    x = _as_tensor(x, torch.float64)
    _, codes = torch.unique(torch.as_tensor(np.asarray(labels)), return_inverse=True)
    k = int(codes.max()) + 1
    counts = torch.bincount(codes, minlength=k).double()
    return (torch.zeros(k, x.shape[1], dtype=torch.float64).index_add_(0, codes, x) / counts[:, None]).float()


def unit_selectivity(units: ArrayLike, labels: ArrayLike, *, respond_fraction: float = 0.5) -> dict:
    """Per-unit polysemanticity from class-mean activations (meant for post-ReLU units).

    Class selectivity (Morcos et al. 2018) is (top - rest) / (top + rest), with `top` the
    highest class mean and `rest` the mean of the other classes: 1 means one class only,
    0 means all alike. A unit "responds" to every class whose mean reaches
    `respond_fraction` x its top class mean; units whose class means are all <= 0 are dead.
    """
    means = class_means(units, labels).double().clamp_min(0)  # [K, C]
    k = means.shape[0]
    top = means.max(0).values
    rest = (means.sum(0) - top) / (k - 1)
    live = top > 0
    selectivity = ((top - rest) / (top + rest))[live]
    responds = ((means >= respond_fraction * top) & live).sum(0)[live]
    hist = torch.bincount(responds, minlength=k + 1)[1:]
    n_live = int(live.sum())
    return {
        "units": int(len(top)),
        "dead": int(len(top) - n_live),
        "selectivity_mean": float(selectivity.mean()) if n_live else float("nan"),
        "selectivity_median": float(selectivity.median()) if n_live else float("nan"),
        "classes_per_unit_mean": float(responds.double().mean()) if n_live else float("nan"),
        "classes_per_unit_hist": hist.tolist(),  # index i: units responding to i+1 classes
        "polysemantic_fraction": float((responds > 1).double().mean()) if n_live else float("nan"),
    }


def weight_vectors(weight: torch.Tensor) -> torch.Tensor:
    """One row per output unit: a conv kernel [out, in, kh, kw] or linear row, flattened."""
    return weight.detach().float().cpu().flatten(1)


#: 2-D embeddings by name (`metrics.embeddings`): `fn(data [N, D] float32, *, seed, **options) -> [N, 2]`,
#: options being perplexity, neighbors, tsne_backend (take the ones you use, `**_` the rest).
EMBEDDINGS: Registry[Callable[..., np.ndarray]] = Registry("2-D embedding")


def embed_2d(
    x: ArrayLike,
    method: str,
    *,
    seed: int = 0,
    perplexity: float = 30.0,
    neighbors: int = 15,
    tsne_backend: str = "sklearn",
) -> np.ndarray:
    """A 2-D embedding of the rows of `x` by a registered method: t-SNE (scikit-learn's or openTSNE's) or UMAP."""
    fn = EMBEDDINGS.get(method)  # unknown name: UnifiedVizError listing the registered ones
    data = _as_tensor(x, torch.float32).numpy()
    return fn(data, seed=seed, perplexity=perplexity, neighbors=neighbors, tsne_backend=tsne_backend)


@EMBEDDINGS.register("tsne", help="t-SNE: scikit-learn's, or openTSNE's with metrics.tsne_backend: opentsne")
def _tsne(data: np.ndarray, *, seed: int, perplexity: float = 30.0, tsne_backend: str = "sklearn", **_) -> np.ndarray:
    n = len(data)
    perplexity = min(perplexity, max(1.0, (n - 1) / 3))  # t-SNE needs perplexity < n
    if tsne_backend == "opentsne":
        try:
            from openTSNE import TSNE as OpenTSNE
        except ImportError:
            raise UnifiedVizError("metrics.tsne_backend 'opentsne' needs openTSNE: pip install openTSNE, "
                                  "or set metrics.tsne_backend: sklearn") from None
        tsne = OpenTSNE(n_components=2, perplexity=perplexity, initialization="pca", random_state=seed, n_jobs=-1,
                        verbose=False)
        return np.asarray(tsne.fit(data))
    from sklearn.manifold import TSNE

    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed, n_jobs=-1).fit_transform(data)


@EMBEDDINGS.register("umap", help="UMAP (umap-learn), seeded")
def _umap(data: np.ndarray, *, seed: int, neighbors: int = 15, **_) -> np.ndarray:
    import umap

    reducer = umap.UMAP(n_components=2, n_neighbors=min(neighbors, len(data) - 1), random_state=seed)
    return reducer.fit_transform(data)


def clustering(x: ArrayLike, labels: ArrayLike) -> dict[str, float]:
    """Silhouette and Davies-Bouldin of `x` against `labels`."""
    return {"silhouette": silhouette(x, labels), "davies_bouldin": davies_bouldin(x, labels)}


# ---------------------------------------------------------------------------------------------
# The registry `measure()` iterates: one `@register_metric` per value in metrics.json.

#: Input kinds: what a metric's `fn(x, labels, cfg)` gets as `x`, and where `measure()` puts the
#: value (L: a configured layer; N test images). `labels` are the N test labels, `cfg` the
#: `MetricsConfig`.
INPUTS = {
    "logits": "the model's logits [N, K] -> metrics[name]",
    "points": "a metrics.layers feature matrix [N, D] ('raw'), then each 2-D embedding [N, 2] "
              "-> layers[L][raw | tsne | umap][name]",
    "units": "a metrics.layers' per-unit activations [N, C] (channels spatially averaged) -> layers[L][name]",
    "features": "a metrics.cosine_layers feature matrix [N, D] -> cosine[L][name]",
    "weights": "a metrics.cosine_layers' weight, one row per output unit [C, in*kh*kw] -> cosine[L][name] "
               "(layers without a weight are skipped)",
}


@dataclass(frozen=True)
class Metric:
    """A measure `fn(x, labels, cfg) -> JSON-able value`, fed the input kind `input` (see `INPUTS`)."""

    fn: Callable[[Any, torch.Tensor, "MetricsConfig"], Any]
    input: str
    every_round: bool = False  # also in each active-learning round's measurement (else final models only)

    def __post_init__(self) -> None:
        if self.input not in INPUTS:
            raise ValueError(f"metric input {self.input!r} is not one of {', '.join(INPUTS)}")


METRICS: Registry[Metric] = Registry("metric")


def register_metric(name: str, input: str, *, every_round: bool = False, help: str = ""):
    """`@register_metric("name", "points")` on `fn(x, labels, cfg)`: its value is metrics.json's `name`."""

    def add(fn):
        doc = (fn.__doc__ or "").strip()
        METRICS.register(name, Metric(fn, input, every_round), help=help or (doc.splitlines()[0] if doc else ""))
        return fn

    return add


@register_metric("accuracy", "logits", every_round=True)
def _accuracy(logits, labels, cfg) -> float:
    """Top-1 accuracy on the test images"""
    return accuracy(logits, labels)


@register_metric("silhouette", "points", every_round=True)
def _silhouette(x, labels, cfg) -> float:
    """Mean silhouette against the true labels (higher: classes better separated)"""
    return silhouette(x, labels)


@register_metric("davies_bouldin", "points", every_round=True)
def _davies_bouldin(x, labels, cfg) -> float:
    """Davies-Bouldin index against the true labels (lower: better separated)"""
    return davies_bouldin(x, labels)


@register_metric("units", "units")
def _units(units, labels, cfg) -> dict:
    """Unit class selectivity and polysemanticity (post-ReLU units)"""
    return unit_selectivity(units, labels, respond_fraction=cfg.respond_fraction)


@register_metric("images", "features", every_round=True)
def _cosine_images(x, labels, cfg) -> dict:
    """Cosine histogram over pairs of per-image features"""
    return cosine_histogram(x, bins=cfg.cosine_bins)


@register_metric("class_means", "features")
def _cosine_class_means(x, labels, cfg) -> dict:
    """Cosine histogram over pairs of class-mean features"""
    return cosine_histogram(class_means(x, labels), bins=cfg.cosine_bins)


@register_metric("weights", "weights")
def _cosine_weights(w, labels, cfg) -> dict:
    """Cosine histogram over pairs of per-neuron weight vectors"""
    return cosine_histogram(w, bins=cfg.cosine_bins)
