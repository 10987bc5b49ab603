"""What every query strategy shares: the `STRATEGIES` registry, the `QueryContext` it is handed, `query()`.

A strategy is a function `strategy(ctx) -> positions`: `k` distinct positions into `ctx.pool`
(any order). Uncertainty strategies score the pool and return `top_k(scores, ctx.k)`.
Optional attributes, read before any training:

- `strategy.check(cfg: ExperimentConfig) -> str | None`: what the rest of the config lacks for
  this strategy (e.g. BALD needs `model.dropout > 0`), said after "active.strategy 'NAME' in FILE";
  `config.check()` calls it when `runs` includes `active`.
- `strategy.layers(cfg: ActiveConfig) -> dict[str, str]`: config key -> layer name the strategy
  reads (checked against the model like `metrics.layers`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np
import torch
from torch import nn

from unifiedviz.registry import Registry

from ..features import extract

if TYPE_CHECKING:
    from ..config import ActiveConfig
    from ..data import SuperpositionData


@dataclass
class QueryContext:
    """Everything a strategy may use to pick `k` images from the unlabelled pool."""

    model: nn.Module
    data: "SuperpositionData"
    labeled: np.ndarray  # training-set indices already labelled
    pool: np.ndarray  # training-set indices not labelled yet, ascending; a strategy returns positions into it
    k: int  # how many to pick: 1 <= k <= len(pool)
    seed: int  # everything random in the query derives from this
    device: Any
    cfg: "ActiveConfig"
    progress: bool = False

    def loader(self, indices: np.ndarray | None = None):
        """Ordered inference loader over training-set `indices` (default: the pool)."""
        return self.data.loader(self.data.train_set, self.pool if indices is None else indices)

    def probs(self, desc: str = "scores") -> torch.Tensor:
        """[len(pool), K] softmax of the model's logits on the pool (eval mode)."""
        logits = extract(self.model, self.loader(), [], device=self.device, logits=True, progress=self.progress,
                         desc=desc).logits
        return logits.softmax(1)


class Strategy(Protocol):
    """`strategy(ctx) -> k distinct positions into ctx.pool`; see the module docstring for optional hooks."""

    def __call__(self, ctx: QueryContext) -> np.ndarray: ...


#: Every module of this package is imported on the first look-up, so a new file here with
#: `@STRATEGIES.register("name")` on its function is all it takes.
STRATEGIES: Registry[Callable[[QueryContext], np.ndarray]] = Registry(
    "active-learning strategy", modules=["superposition.strategies"]
)


def top_k(scores: torch.Tensor, k: int) -> np.ndarray:
    """Positions of the k highest scores; equal scores go to the lower position first."""
    order = torch.sort(scores, descending=True, stable=True).indices
    return order[:k].numpy()


def query(
    model: nn.Module,
    data: "SuperpositionData",
    labeled: np.ndarray,
    cfg: "ActiveConfig",
    *,
    seed: int,
    device,
    progress: bool = False,
) -> np.ndarray:
    """Training-set indices of the next `cfg.query_size` images to label (fewer if the pool runs out)."""
    strategy = STRATEGIES.get(cfg.strategy)  # unknown name: UnifiedVizError listing the valid ones
    assert data.train_set is not None
    pool = np.setdiff1d(np.arange(len(data.train_set)), labeled)
    k = min(cfg.query_size, len(pool))
    if k == 0:
        return pool
    ctx = QueryContext(model=model, data=data, labeled=np.asarray(labeled), pool=pool, k=k, seed=seed,
                       device=device, cfg=cfg, progress=progress)
    picks = np.asarray(strategy(ctx), dtype=np.int64).reshape(-1)
    if len(picks) != k or len(np.unique(picks)) != k or picks.min() < 0 or picks.max() >= len(pool):
        raise ValueError(f"strategy {cfg.strategy!r} must return {k} distinct positions into the pool of "
                         f"{len(pool)}, returned {picks.tolist()[:10]}{'...' if len(picks) > 10 else ''}")
    return pool[np.sort(picks)]


def strategy_layers(cfg: "ActiveConfig") -> dict[str, str]:
    """Config key -> layer name that the configured strategy reads (for checking before training)."""
    layers = getattr(STRATEGIES.get(cfg.strategy), "layers", None)
    return dict(layers(cfg)) if layers is not None else {}
