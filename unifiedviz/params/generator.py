"""DGN-AM (Nguyen et al. 2016): optimise the latent code of a fixed image generator."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import UnifiedVizError
from ..models.spec import device_of
from .base import Param, Seed
from .seeding import random_rows


class GeneratorParam(Param):
    """`image = rescale(generator(z))` with codes `z` of shape `[n, *latent_shape]` as the only free tensor.

    The generator must output `[n, C, *size]` with values in `output_range` (default (-1, 1),
    a tanh GAN); they are mapped linearly into [0, 1] and clamped. The generator is frozen
    (`requires_grad_(False)`) and kept in eval mode so BatchNorm does not depend on the codes.
    After each step codes shrink by `decay` (L2 code decay: z <- (1 - decay) z), then are
    clipped: `clip=b` keeps |z| <= b elementwise, `clip=(lo, hi)` keeps lo <= z <= hi.
    Codes start from N(0, sd); `seed` is an int, a generator, or one int per code.

    Not in `PARAMS` (it needs a generator network): build it directly.
    """

    def __init__(
        self,
        generator: nn.Module,
        n: int,
        latent_shape: int | Sequence[int],
        *,
        output_range: tuple[float, float] = (-1.0, 1.0),
        clip: float | tuple[float, float] | None = None,
        decay: float = 0.0,
        sd: float = 1.0,
        seed: Seed = 0,
    ) -> None:
        super().__init__()
        latent_shape = (latent_shape,) if isinstance(latent_shape, int) else tuple(latent_shape)
        if isinstance(clip, (int, float)):
            clip = (-float(clip), float(clip))
        if clip is not None and not clip[0] < clip[1]:
            raise UnifiedVizError(f"clip must be a positive bound or (lo, hi) with lo < hi, got {clip}")
        if not 0.0 <= decay < 1.0:
            raise UnifiedVizError(f"decay must be in [0, 1), got {decay}")
        if not output_range[0] < output_range[1]:
            raise UnifiedVizError(f"output_range must be (lo, hi) with lo < hi, got {output_range}")
        self.generator = generator.requires_grad_(False).eval()
        self.output_range = output_range
        self.clip = clip
        self.decay = decay
        z = random_rows("randn", (n, *latent_shape), seed) * sd
        if clip is not None:
            z = z.clamp(*clip)  # the initial codes obey the clip too
        self.z = nn.Parameter(z.to(device_of(generator)))

    def train(self, mode: bool = True) -> "GeneratorParam":
        super().train(mode)
        self.generator.eval()
        return self

    def forward(self) -> torch.Tensor:
        lo, hi = self.output_range
        return ((self.generator(self.z) - lo) / (hi - lo)).clamp(0.0, 1.0)

    @torch.no_grad()
    def after_step(self) -> None:
        if self.decay:
            self.z.mul_(1.0 - self.decay)
        if self.clip is not None:
            self.z.clamp_(*self.clip)
