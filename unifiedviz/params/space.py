"""Discrete search spaces for gradient-free optimisers (`unifiedviz.optimizers.SearchOptimizer`).

A `SearchSpace` param holds, per image, `dims` integer coordinates with `levels` values each
(`indices`, a `[n, dims]` long buffer) and decodes any batch of multi-indices to images:

    images(indices [M, dims]) -> [M, C, *size] in [0, 1]     (decode candidates; state untouched)
    assign(indices [n, dims])                                (make forward() show these)
    forward() == images(indices)

The engine decodes a step's N*k candidates with one `images` call, scores them in one batched
forward and `assign`s each image's best. Registered spaces: `codes` (a VQ-VAE's code grid),
`latent-grid` (a generator's latent on a grid), `lowres` (coarse pixels upsampled). A plain
`generator` param is searched as a latent grid (`search_space`).
"""
from __future__ import annotations

import torch

from ..errors import UnifiedVizError
from .seeding import random_rows


class SearchSpace:
    """Mixin for a `Param` whose images are decoded from integer indices (set `n`, `dims`, `levels`, `indices`)."""

    n: int
    dims: int
    levels: int
    indices: torch.Tensor

    def _start(self, n: int, dims: int, levels: int, seed) -> None:
        """Uniformly random initial indices, one stream per image under per-image seeds."""
        if levels < 2 or dims < 1:
            raise UnifiedVizError(f"a search space needs levels >= 2 and dims >= 1, got levels={levels}, dims={dims}")
        self.n, self.dims, self.levels = n, dims, levels
        start = (random_rows("rand", (n, dims), seed) * levels).long().clamp(max=levels - 1)
        self.register_buffer("indices", start)

    def images(self, indices: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self) -> torch.Tensor:
        return self.images(self.indices)

    @torch.no_grad()
    def assign(self, indices: torch.Tensor) -> None:
        self.indices.copy_(indices.to(self.indices.device))


def search_space(param) -> SearchSpace:
    """The discrete space a search optimiser explores for `param`: its own, or a generator's latent on a grid."""
    from .generator import GeneratorParam
    from .latent_grid import LatentGridParam

    if isinstance(param, SearchSpace):
        return param
    if isinstance(param, GeneratorParam):
        return LatentGridParam(param)
    raise UnifiedVizError(f"the {type(param).__name__} parameterisation has no discrete search space: use --param "
                          "codes, latent-grid, lowres or generator with a search optimiser (protes, uniform-search, "
                          "nevergrad)")


__all__ = ["SearchSpace", "search_space"]
