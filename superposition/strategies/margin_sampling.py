"""`margin`: the images whose two most probable classes are closest."""
import numpy as np

from .base import STRATEGIES, QueryContext, top_k
from .scores import margin


@STRATEGIES.register("margin", help="smallest gap between the two most probable classes")
def margin_query(ctx: QueryContext) -> np.ndarray:
    return top_k(margin(ctx.probs("margin scores")), ctx.k)
