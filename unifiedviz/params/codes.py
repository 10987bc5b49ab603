"""A VQ-VAE's discrete latent: a grid of codebook indices decoded to an image (MANGO's search space)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import UnifiedVizError
from .base import PARAMS, Param, Seed
from .space import SearchSpace


@PARAMS.register("codes", help="gradient-free: a VQ-VAE's grid of code indices (default builtin:cifar10-vqvae, "
                               "8x8 of 512), for protes, uniform-search")
class CodesParam(SearchSpace, Param):
    """`image = decoder(codebook[indices])`: `grid` cells (e.g. 8x8 = 64 dims), each one of the codebook's rows.

    `decoder` maps latents `[M, dim, *grid]` to images in [0, 1] (clamped here); `codebook` is
    `[levels, dim]`. Both are frozen. Starts from uniformly random codes (`seed`).
    """

    def __init__(self, decoder: nn.Module, codebook: torch.Tensor, n: int, grid: Sequence[int] = (8, 8), *,
                 seed: Seed = 0) -> None:
        super().__init__()
        self.decoder = decoder.requires_grad_(False).eval()
        self.register_buffer("codebook", codebook.detach().clone())
        self.grid = tuple(grid)
        self._start(n, int(torch.Size(self.grid).numel()), codebook.shape[0], seed)

    def train(self, mode: bool = True) -> "CodesParam":
        super().train(mode)
        self.decoder.eval()
        return self

    def images(self, indices: torch.Tensor) -> torch.Tensor:
        latent = self.codebook[indices].view(-1, *self.grid, self.codebook.shape[1])
        return self.decoder(latent.movedim(-1, 1)).clamp(0.0, 1.0)

    @classmethod
    def from_spec(cls, n: int, spec, *, generator="builtin:cifar10-vqvae", seed: Seed = 0) -> "CodesParam":
        """`n` code grids of a VQ-VAE generator (a `GENERATORS` name or module holding a `VQVAEGenerator`)."""
        from ..generators import as_generator
        from ..generators.vqvae import VQVAEGenerator

        gen = as_generator(generator)
        vq = next((m for m in gen.module.modules() if isinstance(m, VQVAEGenerator)), None)
        if vq is None:
            raise UnifiedVizError(f"the codes parameterisation needs a VQ-VAE generator (builtin:cifar10-vqvae); "
                                  f"{gen.name} has no codebook: use --param latent-grid for it")
        param = cls(VQVAEGenerator(vq.vqvae), vq.vqvae._vq_vae._embedding.weight, n, vq.latent_shape[1:], seed=seed)
        got = tuple(param.images(param.indices[:1]).shape[1:])
        if got != (spec.channels, *spec.size):
            raise UnifiedVizError(f"generator {gen.name} makes images of shape {list(got)} but the model takes "
                                  f"{[spec.channels, *spec.size]} (channels, height, width)")
        return param
