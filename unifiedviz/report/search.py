"""`best_so_far.png` of a budgeted run: each image's best objective against the model queries spent."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..visualize import Visualization


def save_best_so_far(result: "Visualization", path: str | Path) -> None:
    """One line per image: the running maximum of its objective (`history`) over queries per image (`queries`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    best = result.history.float().cummax(0).values  # a search optimiser's history is already its best so far
    queries = result.queries[: best.shape[0]].tolist()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for i, name in enumerate(result.names):
        ax.plot(queries, best[:, i].tolist(), label=name, linewidth=1, drawstyle="steps-post")
    ax.set_xlabel("model queries per image")
    ax.set_ylabel("best objective so far")
    ax.set_title(f"{result.metadata.get('optimizer', '')}, budget {result.metadata.get('budget')}")
    if len(result.names) <= 12:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["save_best_so_far"]
