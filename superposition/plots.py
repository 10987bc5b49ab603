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


def cosine_plot(hists: dict[str, dict], title: str, path: Path) -> Path:
    """Overlaid cosine-similarity histograms (as fractions of pairs), one per run, with their means."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for run, h in hists.items():
        edges, counts = np.asarray(h["edges"]), np.asarray(h["counts"], dtype=float)
        ax.stairs(counts / max(counts.sum(), 1), edges, fill=True, alpha=0.45, color=RUN_COLOURS.get(run),
                  label=f"{run} (mean {h['mean']:.3f})")
        ax.axvline(h["mean"], color=RUN_COLOURS.get(run), ls="--", lw=1)
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("fraction of pairs")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path)


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
