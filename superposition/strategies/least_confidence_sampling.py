"""`least_confidence`: the images whose top class probability is lowest (the paper's strategy)."""
import numpy as np

from .base import STRATEGIES, QueryContext, top_k
from .scores import least_confidence


@STRATEGIES.register("least_confidence", help="lowest top-class probability (the paper's)")
def least_confidence_query(ctx: QueryContext) -> np.ndarray:
    return top_k(least_confidence(ctx.probs("least_confidence scores")), ctx.k)
