"""`bald`: the images whose MC-dropout predictions disagree most (mutual information; needs dropout)."""
from __future__ import annotations

import numpy as np
import torch

from .base import STRATEGIES, QueryContext, top_k
from .scores import bald, mc_dropout_probs


@STRATEGIES.register("bald", help="MC-dropout mutual information (needs model.dropout > 0)")
def bald_query(ctx: QueryContext) -> np.ndarray:
    torch.manual_seed(ctx.seed)  # dropout masks are part of the query
    probs = mc_dropout_probs(ctx.model, ctx.loader(), ctx.cfg.mc_samples, device=ctx.device, progress=ctx.progress)
    return top_k(bald(probs), ctx.k)


def _needs_dropout(cfg) -> str | None:
    if cfg.model.dropout == 0.0:
        return "needs dropout to sample from: set model.dropout (e.g. 0.3)"
    return None


bald_query.check = _needs_dropout
