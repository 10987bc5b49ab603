"""Pool-based query strategies: which unlabelled training images to label next.

`STRATEGIES` (a `unifiedviz.registry.Registry`) maps each `active.strategy` name to one callable
`strategy(ctx: QueryContext) -> positions` (see `base.py`); `query()` looks the name up, so an
unknown name fails with the valid ones instead of falling back to another strategy. Every module
of this package is imported on the first look-up: a new strategy is one new file here with
`@STRATEGIES.register("name")` on its function (and a row in tests/test_registries_superposition.py).

Uncertainty scores are "higher = query first"; `top_k` breaks ties by the lower pool index,
so a query is a pure function of the model, the pool and the seed.
"""
from .base import STRATEGIES, QueryContext, Strategy, query, strategy_layers, top_k
from .scores import bald, entropy, k_center_greedy, least_confidence, margin, mc_dropout_probs

__all__ = [
    "STRATEGIES",
    "QueryContext",
    "Strategy",
    "query",
    "strategy_layers",
    "top_k",
    "least_confidence",
    "margin",
    "entropy",
    "bald",
    "k_center_greedy",
    "mc_dropout_probs",
]
