"""What every parameterisation shares: the `Param` interface and input checks."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import UnifiedVizError

Seed = int | torch.Generator


class Param(nn.Module):
    """An image (or sequence) source for the engine.

    `forward()` takes no arguments and returns a batch `[N, C, *size]` in [0, 1];
    the engine calls `after_step()` after every optimiser step (projections, clipping).
    """

    def after_step(self) -> None:
        """Hook run after each optimiser step; most parameterisations need none."""


def generator_from(seed: Seed) -> torch.Generator:
    """A CPU generator: draws on CPU are bitwise reproducible whatever device runs later."""
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UnifiedVizError(f"seed must be an int or a torch.Generator, got {seed!r}")
    return torch.Generator(device="cpu").manual_seed(seed)


def check_shape(n: int, channels: int, size: int | Sequence[int]) -> tuple[int, ...]:
    """Validate batch/channels/size and return `size` as a tuple; an int means a square image."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) not in (1, 2):
        raise UnifiedVizError(f"size must be (H, W) for images or (L,) for sequences, got {size}")
    for what, value in (("n", n), ("channels", channels), *(("size", s) for s in size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UnifiedVizError(f"{what} must be a positive int, got {value!r}")
    return size
