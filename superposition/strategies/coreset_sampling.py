"""`coreset`: k-centre greedy on the `active.feature_layer` embedding (Sener & Savarese 2018)."""
from __future__ import annotations

import numpy as np

from ..features import extract
from .base import STRATEGIES, QueryContext
from .scores import k_center_greedy


@STRATEGIES.register("coreset", help="k-centre greedy on the active.feature_layer embedding")
def coreset_query(ctx: QueryContext) -> np.ndarray:
    layer = ctx.cfg.feature_layer
    n = len(ctx.labeled)
    feats = extract(ctx.model, ctx.loader(np.concatenate([ctx.labeled, ctx.pool])), [layer], device=ctx.device,
                    progress=ctx.progress, desc="coreset features").flat[layer]
    return k_center_greedy(feats[n:], feats[:n], ctx.k)


coreset_query.layers = lambda cfg: {"active.feature_layer": cfg.feature_layer}
