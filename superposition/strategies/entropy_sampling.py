"""`entropy`: the images whose predicted class distribution has the highest entropy."""
import numpy as np

from .base import STRATEGIES, QueryContext, top_k
from .scores import entropy


@STRATEGIES.register("entropy", help="highest entropy of the predicted distribution")
def entropy_query(ctx: QueryContext) -> np.ndarray:
    return top_k(entropy(ctx.probs("entropy scores")), ctx.k)
