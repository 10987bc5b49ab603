"""Each dreamed sequence over its class's real sequences: the class mean and a band (10th-90th percentile)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..report.files import atomic_path
from ..report.images import LEGEND_KEY, legend_text


def plot_over_real(dreamed: torch.Tensor, classes: Sequence[int | None], real: torch.Tensor, labels: torch.Tensor,
                   path: str | Path, *, titles: Sequence[str] | None = None, class_names: Sequence[str] | None = None,
                   columns: int = 2) -> Path:
    """A grid with one panel per dreamed sequence `[N, C, L]`: its class's real mean (dashed) and
    10-90 % band (shaded) under it, in the same units as the inputs (channel 0; others dotted).
    `titles` name the panels, drawn and in the PNG's legend (`report.images.read_legend`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dreamed, real = dreamed.detach().cpu().float(), real.detach().cpu().float()
    n = len(dreamed)
    cols = max(1, min(columns, n))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.0 * rows), squeeze=False)
    t = range(dreamed.shape[-1])
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        c = classes[i]
        group = real if c is None else real[labels == c]
        if len(group):
            lo, hi = torch.quantile(group[:, 0], torch.tensor([0.1, 0.9]), dim=0)
            label = "all classes" if c is None else (class_names[c] if class_names else f"class {c}")
            ax.fill_between(t, lo.numpy(), hi.numpy(), color="tab:blue", alpha=0.2, label=f"real {label} 10-90%")
            ax.plot(t, group[:, 0].mean(0).numpy(), "--", color="tab:blue", linewidth=1, label="real mean")
        for ch in range(dreamed.shape[1]):
            ax.plot(t, dreamed[i, ch].numpy(), color="tab:red", linewidth=1.2 if ch == 0 else 0.8,
                    linestyle="-" if ch == 0 else ":", label="dreamed" if ch == 0 else None)
        ax.set_ylim(-0.05, 1.05)
        if titles:
            ax.set_title(titles[i], fontsize=8)
        if i == 0:
            ax.legend(fontsize=6, loc="upper left")
    fig.tight_layout()
    names = list(titles) if titles else [f"sequence {i}" for i in range(n)]
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={LEGEND_KEY: legend_text(names, cols)})
    plt.close(fig)
    return Path(path)


__all__ = ["plot_over_real"]
