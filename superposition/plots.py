"""Figures for a run: embeddings by class, overlaid cosine histograms, active-learning curves."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from unifiedviz.report import atomic_path  # noqa: E402

RUN_COLOURS = {"baseline": "tab:blue", "active": "tab:orange"}


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def embedding_plot(
    points: dict[str, np.ndarray], labels: np.ndarray, class_names: list[str], title: str, path: Path
) -> Path:
    """One scatter per run (side by side), coloured by true class."""
    fig, axes = plt.subplots(1, len(points), figsize=(5.5 * len(points), 5), squeeze=False)
    cmap = plt.get_cmap("tab10" if len(class_names) <= 10 else "turbo", len(class_names))
    for ax, (run, xy) in zip(axes[0], points.items()):
        ax.scatter(xy[:, 0], xy[:, 1], c=labels, cmap=cmap, vmin=-0.5, vmax=len(class_names) - 0.5, s=3, alpha=0.7,
                   linewidths=0)
        ax.set_title(run)
        ax.set_xticks([])
        ax.set_yticks([])
    if len(class_names) <= 20:
        handles = [plt.Line2D([], [], marker="o", ls="", color=cmap(i), label=n) for i, n in enumerate(class_names)]
        fig.legend(handles=handles, loc="center right", fontsize=8, frameon=False)
    fig.suptitle(title)
    return _save(fig, path)


def cosine_plot(hists: dict[str, dict], title: str, path: Path, pairs: dict[str, dict] | None = None,
                names: list[str] | None = None) -> Path:
    """The pairwise cosine similarities of each run (`cosine_figure`), saved to `path`."""
    return _save(cosine_figure(hists, title, pairs, names), path)


def cosine_figure(hists: dict[str, dict], title: str, pairs: dict[str, dict] | None = None,
                  names: list[str] | None = None):
    """Pairwise cosine similarities, one curve or panel per run, each saying how many pairs it holds.

    `hists` are the runs' metrics.json entries (exact `mean`, `pairs`, the fixed-bin histogram);
    `pairs` the `measure.cosine_pairs` data. Small sets (every run has a `matrix`: the class
    means) are drawn as similarity matrices in one shared order (average-linkage clustering of
    the first run), else overlaid histograms whose range and bin count come from the data
    (`histogram_edges`). Without `pairs`, the stored histograms on the range their pairs occupy.
    """
    if pairs and all("matrix" in d for d in pairs.values()):
        return _matrix_figure(hists, title, pairs, names)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if pairs:
        edges = histogram_edges([pairs[run]["values"] for run in hists])
        for run, h in hists.items():
            d = pairs[run]
            counts, _ = np.histogram(d["values"], bins=edges)
            label = f"{run}: {d['pairs']:,} pairs of {d['vectors']} vectors, mean {h['mean']:.3f}"
            if d["sampled"]:
                label += f" (bars: {len(d['values']):,}-pair sample)"
            ax.stairs(counts / max(counts.sum(), 1), edges, fill=True, alpha=0.45, color=RUN_COLOURS.get(run),
                      label=label)
            ax.axvline(h["mean"], color=RUN_COLOURS.get(run), ls="--", lw=1)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel(f"cosine similarity ({len(edges) - 1} bins of {edges[1] - edges[0]:.3g}, range from the data)")
    else:
        lo, hi = 1.0, -1.0
        for run, h in hists.items():
            edges, counts = np.asarray(h["edges"]), np.asarray(h["counts"], dtype=float)
            ax.stairs(counts / max(counts.sum(), 1), edges, fill=True, alpha=0.45, color=RUN_COLOURS.get(run),
                      label=f"{run}: {h['pairs']:,} pairs, mean {h['mean']:.3f}")
            ax.axvline(h["mean"], color=RUN_COLOURS.get(run), ls="--", lw=1)
            used = np.nonzero(counts)[0]
            if len(used):
                lo, hi = min(lo, edges[used[0]]), max(hi, edges[used[-1] + 1])
        if lo < hi:
            ax.set_xlim(lo, hi)
        ax.set_xlabel("cosine similarity")
    ax.set_ylabel("fraction of pairs")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def histogram_edges(samples: list[np.ndarray], *, min_bins: int = 10, max_bins: int = 80) -> np.ndarray:
    """Shared bin edges for several runs' values: the pooled data's range (padded 3%) and the
    Freedman-Diaconis bin count, kept within [min_bins, max_bins]."""
    pooled = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in samples])
    lo, hi = float(pooled.min()), float(pooled.max())
    pad = 0.03 * (hi - lo) if hi > lo else 0.01
    lo, hi = max(lo - pad, -1.0), min(hi + pad, 1.0)
    q75, q25 = np.percentile(pooled, [75, 25])
    width = 2 * (q75 - q25) / len(pooled) ** (1 / 3)
    bins = int(np.clip(np.ceil((hi - lo) / width) if width > 0 else min_bins, min_bins, max_bins))
    return np.linspace(lo, hi, bins + 1)


def _matrix_figure(hists: dict[str, dict], title: str, pairs: dict[str, dict], names: list[str] | None):
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    runs = list(hists)
    first = np.asarray(pairs[runs[0]]["matrix"], dtype=np.float64)
    n = first.shape[0]
    dist = np.clip(1 - (first + first.T) / 2, 0, None)
    np.fill_diagonal(dist, 0)
    order = leaves_list(linkage(squareform(dist, checks=False), "average")) if n > 2 else np.arange(n)
    off = ~np.eye(n, dtype=bool)
    vmax = max(float(np.abs(np.asarray(pairs[r]["matrix"])[off]).max()) for r in runs) or 1.0
    fig, axes = plt.subplots(1, len(runs), figsize=(4.6 * len(runs) + 0.8, 4.4), squeeze=False)
    labels = [(names[i] if names and i < len(names) else str(i)) for i in order]
    for ax, run in zip(axes[0], runs):
        m = np.asarray(pairs[run]["matrix"])[np.ix_(order, order)].copy()
        np.fill_diagonal(m, np.nan)  # the diagonal is 1 by definition; the colours are the pairs
        im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        if n <= 12:
            for a in range(n):
                for b in range(n):
                    if a != b:
                        ax.text(b, a, f"{m[a, b]:.2f}", ha="center", va="center", fontsize=6)
        ax.set_xticks(range(n), labels, fontsize=7, rotation=90)
        ax.set_yticks(range(n), labels, fontsize=7)
        ax.set_title(f"{run}: {pairs[run]['pairs']} pairs of {n}, mean {hists[run]['mean']:.3f}", fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="cosine similarity")
    fig.suptitle(f"{title} (rows and columns in the same clustered order)", fontsize=10)
    return fig


def rounds_plot(rounds: list[dict], baseline: dict | None, layer: str | None, cosine_layer: str | None,
                path: Path) -> Path:
    """Accuracy, raw-feature clustering and mean cosine per active-learning round (baseline dashed)."""
    panels = [("accuracy", lambda m: m["accuracy"])]
    if layer is not None:
        panels += [
            (f"silhouette ({layer})", lambda m: m["layers"][layer]["raw"]["silhouette"]),
            (f"Davies-Bouldin ({layer})", lambda m: m["layers"][layer]["raw"]["davies_bouldin"]),
        ]
    if cosine_layer is not None:
        panels.append((f"mean cosine ({cosine_layer})", lambda m: m["cosine"][cosine_layer]["images"]["mean"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    sizes = [r["labeled"] for r in rounds]
    for ax, (name, get) in zip(axes[0], panels):
        ax.plot(sizes, [get(r) for r in rounds], "o-", color=RUN_COLOURS["active"], label="active")
        if baseline is not None:
            ax.axhline(get(baseline), color=RUN_COLOURS["baseline"], ls="--", label="baseline (all)")
        ax.set_xlabel("labelled images")
        ax.set_title(name)
    axes[0][0].legend()
    fig.tight_layout()
    return _save(fig, path)
