"""Random search: uniform samples over a param's search space, keep the best (the baseline for PROTES)."""
from __future__ import annotations

import torch

from ..transforms import randint
from .base import OPTIMIZERS, SearchOptimizer


@OPTIMIZERS.register("uniform-search", help="random search: 10 uniform samples per image per step over a "
                                             "discrete param's grid, keep the best (lr unused)")
class UniformSearch(SearchOptimizer):
    """Each step draws `candidates` multi-indices per image uniformly from the grid; the best so far is kept.

    Over a fine grid (a latent on 64 points, pixels on 16 levels) this is uniform sampling of
    the continuous box as well. `lr` is accepted for the registry's factory and unused.
    """

    def __init__(self, lr: float = 0.0, candidates: int = 10) -> None:
        self.candidates = candidates

    def propose(self) -> torch.Tensor:
        return randint(0, self.levels, (self.n, self.candidates, self.dims), self.generator)
