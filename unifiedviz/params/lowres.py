"""Coarse pixels on a few grey levels, upsampled bilinearly to the model's size: a search space with no generator."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UnifiedVizError
from .base import PARAMS, Param, Seed, check_shape
from .space import SearchSpace


@PARAMS.register("lowres", help="gradient-free: low x low pixels per channel on `levels` values, upsampled "
                                "(for protes, uniform-search)")
class LowResParam(SearchSpace, Param):
    """`n` images of `channels` x `low` x `low` pixels, each one of `levels` values evenly in [0, 1], upsampled
    bilinearly to `size`. `dims` = channels * low * low. Starts uniformly random (`seed`)."""

    def __init__(self, n: int, channels: int, size, *, low: int = 8, levels: int = 16, seed: Seed = 0) -> None:
        super().__init__()
        size = check_shape(n, channels, size)
        if len(size) != 2:
            raise UnifiedVizError("the lowres parameterisation makes images: the model must take (H, W) inputs")
        if not 1 <= low <= min(size):
            raise UnifiedVizError(f"low must be between 1 and the image size {min(size)}, got {low}")
        self.channels, self.size, self.low = channels, size, low
        self._start(n, channels * low * low, levels, seed)

    def images(self, indices: torch.Tensor) -> torch.Tensor:
        coarse = indices.float().view(-1, self.channels, self.low, self.low) / (self.levels - 1)
        return F.interpolate(coarse, size=self.size, mode="bilinear", align_corners=False).clamp(0.0, 1.0)
