"""`random`: a uniform sample of the pool (the usual active-learning control)."""
import numpy as np

from .base import STRATEGIES, QueryContext


@STRATEGIES.register("random", help="uniform sample of the pool (control)")
def random_query(ctx: QueryContext) -> np.ndarray:
    return np.random.default_rng(ctx.seed).choice(len(ctx.pool), size=ctx.k, replace=False)
