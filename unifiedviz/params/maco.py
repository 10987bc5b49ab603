"""MACO (Fel et al. 2023): optimise only the phase of the spectrum; the magnitude stays fixed.

Fixing the amplitude spectrum to that of natural images keeps the visualisation's energy
spread like a photo's, which is what lets feature visualisation scale to deep networks.
As in the authors' Horama code, the spectrum lives in Lucid's decorrelated colour space and
the image is standardised, recorrelated and squashed with a sigmoid.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..errors import UnifiedVizError
from ._spectral import amplitude, hermitian_consistent, power_law, rfft_shape, spatial_dims, to_spatial
from .base import PARAMS, Param, Seed, check_shape
from .colour import decorrelated_to_rgb, rgb_to_decorrelated
from .seeding import random_rows


@PARAMS.register("maco", help="MACO: phase only, amplitude fixed to a natural-image prior")
class MacoParam(Param):
    """Phase-only parameterisation with a fixed amplitude spectrum.

    `magnitude` is `[channels, *rfft_shape]` (or `[*rfft_shape]`, shared by the channels),
    e.g. from `magnitude_from_images(photos)` at the same size; by default a 1/f^decay_power
    prior. The phase `[n, channels, *rfft_shape]` starts uniform in [-pi, pi). `spatial()`
    is the image before the output mapping: its amplitude spectrum equals `magnitude`.
    `seed`: an int, a generator, or one int per image.
    """

    def __init__(
        self,
        n: int,
        channels: int,
        size: int | Sequence[int],
        *,
        magnitude: torch.Tensor | None = None,
        decorrelate: bool = True,
        decay_power: float = 1.0,
        seed: Seed = 0,
    ) -> None:
        super().__init__()
        self.size = check_shape(n, channels, size)
        self.decorrelate = decorrelate and channels == 3
        freq_shape = rfft_shape(self.size)
        if magnitude is None:
            magnitude = power_law(self.size, decay_power)
        magnitude = torch.as_tensor(magnitude, dtype=torch.float32).detach()
        if tuple(magnitude.shape) not in (freq_shape, (channels, *freq_shape)) or magnitude.min() < 0:
            raise UnifiedVizError(
                f"magnitude must be a non-negative tensor of shape {(channels, *freq_shape)} or "
                f"{freq_shape}, got {tuple(magnitude.shape)}; compute it with "
                f"magnitude_from_images() on images of size {self.size}"
            )
        magnitude = hermitian_consistent(magnitude.expand(channels, *freq_shape), self.size, odd=False)
        self.register_buffer("magnitude", magnitude.clone())
        phase = random_rows("rand", (n, channels, *freq_shape), seed)
        self.phase = nn.Parameter((phase * 2 - 1) * math.pi)

    def spatial(self) -> torch.Tensor:
        """The real image whose amplitude spectrum is exactly `magnitude`."""
        phase = hermitian_consistent(self.phase, self.size, odd=True)
        return to_spatial(torch.polar(self.magnitude.expand_as(phase), phase), self.size)

    def forward(self) -> torch.Tensor:
        image = self.spatial()
        dims = (1, *spatial_dims(self.size))
        image = (image - image.mean(dims, keepdim=True)) / (image.std(dims, keepdim=True) + 1e-6)
        if self.decorrelate:
            image = decorrelated_to_rgb(image)
        return torch.sigmoid(image)


def magnitude_from_images(images: torch.Tensor, *, decorrelate: bool = True) -> torch.Tensor:
    """Mean amplitude spectrum `[C, *rfft_shape]` of natural images `[N, C, *size]` in [0, 1].

    With `decorrelate` (and 3 channels) it is measured in the decorrelated colour space, the
    space `MacoParam(decorrelate=True)` optimises in; pass the same flag to both.
    """
    if images.dim() not in (3, 4) or images.min() < 0 or images.max() > 1:
        raise UnifiedVizError(
            f"images must be a [N, C, H, W] or [N, C, L] tensor in [0, 1], got shape "
            f"{tuple(images.shape)} with range [{images.min():.3g}, {images.max():.3g}]"
        )
    images = images.detach().float()
    if decorrelate and images.shape[1] == 3:
        images = rgb_to_decorrelated(images)
    return amplitude(images, tuple(images.shape[2:])).mean(0)
