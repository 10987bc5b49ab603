"""nevergrad's portfolio over a param's discrete space (an optional extra, for comparison with PROTES).

`nevergrad` is never a runtime dependency: it is imported when a run starts, with a one-line
error naming `pip install nevergrad` when it is missing.
"""
from __future__ import annotations

import math

import torch

from ..errors import UnifiedVizError
from ..transforms import randint
from .base import OPTIMIZERS, SearchOptimizer


@OPTIMIZERS.register("nevergrad", help="nevergrad's Portfolio optimiser per image over a discrete param's grid, "
                                        "10 asks per step (pip install nevergrad; lr unused)")
class NevergradPortfolio(SearchOptimizer):
    """One nevergrad optimiser (default `Portfolio`) per image on an integer array of `dims` in [0, levels).

    Each step asks it `candidates` times, the engine scores all asks of all images in one
    batched forward, and each answer is told back (nevergrad minimises: -score; NaN, which
    arrives as -inf, is told as a large loss). Each image's optimiser is seeded from its own
    stream. `lr` is accepted for the registry's factory and unused.
    """

    def __init__(self, lr: float = 0.0, candidates: int = 10, method: str = "Portfolio") -> None:
        self.candidates, self.method = candidates, method

    def setup_space(self, space, generator, budget: int) -> None:
        try:
            import nevergrad as ng
            import numpy as np
        except ImportError:
            raise UnifiedVizError("the nevergrad optimiser needs the nevergrad package: pip install nevergrad") from None
        super().setup_space(space, generator, budget)
        seeds = randint(0, 2**31 - 1, (self.n, 1), self.generator).view(-1).tolist()
        self.searches = []
        for seed in seeds:
            box = ng.p.Array(shape=(self.dims,), lower=0, upper=self.levels - 1).set_integer_casting()
            box.random_state = np.random.RandomState(seed)
            self.searches.append(ng.optimizers.registry[self.method](box, budget=budget,
                                                                   num_workers=self.candidates))
        self.asked: list[list] = []

    def propose(self) -> torch.Tensor:
        import numpy as np

        self.asked = [[search.ask() for _ in range(self.candidates)] for search in self.searches]
        values = np.array([[c.value for c in asks] for asks in self.asked])
        return torch.from_numpy(values).round().long().clamp(0, self.levels - 1)

    def update(self, indices: torch.Tensor, scores: torch.Tensor) -> None:
        for search, asks, row in zip(self.searches, self.asked, scores.tolist()):
            for candidate, value in zip(asks, row):
                search.tell(candidate, -value if math.isfinite(value) else 1e30)
