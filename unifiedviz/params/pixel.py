"""Pixel parameterisation: one free logit per pixel, squashed into [0, 1]."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import UnifiedVizError
from .base import PARAMS, Param, Seed, check_shape
from .seeding import random_rows

# Keeps logit() finite for init images with exact 0s or 1s.
_INIT_EPS = 1e-4


@PARAMS.register("pixel", help="one free logit per pixel, squashed by a sigmoid")
class PixelParam(Param):
    """`sigmoid(raw)` with `raw` of shape `[n, channels, *size]`; works for images and sequences.

    `init` (optional) is a starting image in [0, 1], `[C, *size]` or `[n, C, *size]`;
    otherwise `raw ~ N(0, sd)`, i.e. mid-grey with faint noise. `seed`: an int, a generator, or
    one int per image (row i drawn from its own generator).
    """

    def __init__(
        self,
        n: int,
        channels: int,
        size: int | Sequence[int],
        *,
        init: torch.Tensor | None = None,
        sd: float = 0.01,
        seed: Seed = 0,
    ) -> None:
        super().__init__()
        size = check_shape(n, channels, size)
        shape = (n, channels, *size)
        if init is None:
            raw = random_rows("randn", shape, seed) * sd
        else:
            raw = torch.logit(_broadcast_init(init, shape).clamp(_INIT_EPS, 1 - _INIT_EPS))
        self.raw = nn.Parameter(raw)

    def forward(self) -> torch.Tensor:
        return torch.sigmoid(self.raw)


def _broadcast_init(init: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    init = torch.as_tensor(init, dtype=torch.float32).detach()
    if tuple(init.shape) not in (shape, shape[1:]) or init.min() < 0 or init.max() > 1:
        raise UnifiedVizError(
            f"init must be a [0, 1] tensor of shape {shape[1:]} or {shape}, got shape "
            f"{tuple(init.shape)}; resize it or scale it into [0, 1] first"
        )
    return init.expand(shape).clone()
