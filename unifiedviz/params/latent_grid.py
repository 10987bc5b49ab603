"""A generator's latent on a grid (MANGO: 64 points per coordinate over [-4, 4]): a discrete search space."""
from __future__ import annotations

import torch

from .base import PARAMS, Param, Seed
from .generator import GeneratorParam
from .space import SearchSpace


@PARAMS.register("latent-grid", help="gradient-free: a generator's latent, each coordinate on a grid of 64 values "
                                     "(--generator NAME), for protes, uniform-search")
class LatentGridParam(SearchSpace, Param):
    """The codes of `inner` (a `GeneratorParam`), each coordinate one of `levels` values evenly from `lo` to `hi`.

    `lo`/`hi` default to the generator's clip range (its encoded real latents' range, per
    coordinate) when it has one, else -4/4 (MANGO's grid for a GAN's N(0, I) latent). Starts
    at the grid point nearest to `inner`'s initial codes; `assign` writes the chosen codes into
    `inner`, so `inner()` shows the search's best too (a `--param generator` run searched by
    PROTES is this wrapper around it: `unifiedviz.params.space.search_space`).
    """

    def __init__(self, inner: GeneratorParam, *, levels: int = 64, lo: float | None = None,
                 hi: float | None = None) -> None:
        super().__init__()
        self.inner = inner
        shape = inner.z.shape[1:]
        clip = inner.clip if inner.clip is not None else (-4.0, 4.0)
        bounds = [torch.as_tensor(b if b is not None else c, dtype=torch.float32, device=inner.z.device)
                  for b, c in ((lo, clip[0]), (hi, clip[1]))]
        self.register_buffer("lo", torch.broadcast_to(bounds[0], shape).reshape(-1).clone())
        self.register_buffer("hi", torch.broadcast_to(bounds[1], shape).reshape(-1).clone())
        self._start(inner.z.shape[0], self.lo.numel(), levels, 0)
        with torch.no_grad():
            nearest = ((inner.z.flatten(1) - self.lo) / (self.hi - self.lo) * (levels - 1)).round()
            self.assign(nearest.clamp(0, levels - 1).long())

    def codes(self, indices: torch.Tensor) -> torch.Tensor:
        values = self.lo + (self.hi - self.lo) * indices.to(self.lo.device).float() / (self.levels - 1)
        return values.view(-1, *self.inner.z.shape[1:])

    def images(self, indices: torch.Tensor) -> torch.Tensor:
        return self.inner.decode(self.codes(indices))

    @torch.no_grad()
    def assign(self, indices: torch.Tensor) -> None:
        super().assign(indices)
        self.inner.z.copy_(self.codes(self.indices))

    @classmethod
    def from_spec(cls, n: int, spec, *, generator=None, latent_shape=None, levels: int = 64, lo: float | None = None,
                  hi: float | None = None, seed: Seed = 0) -> "LatentGridParam":
        """`n` latents of `generator` (a `GENERATORS` name or a module) on a grid."""
        inner = GeneratorParam.from_spec(n, spec, generator=generator, latent_shape=latent_shape, seed=seed)
        return cls(inner, levels=levels, lo=lo, hi=hi)
