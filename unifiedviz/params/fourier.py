"""Lucid's Fourier parameterisation: a scaled spectrum, optionally colour-decorrelated.

Optimising frequency coefficients scaled by 1/f^decay makes the gradient steps follow the
spectrum of natural images, so low frequencies move first and high-frequency noise is damped.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ._spectral import power_law, rfft_shape, to_spatial
from .base import PARAMS, Param, Seed, check_shape
from .colour import decorrelated_to_rgb
from .seeding import random_rows

# Lucid's constant: shrinks the initial spatial image so sigmoid does not saturate.
_LUCID_SCALE = 4.0


@PARAMS.register("fourier", help="Lucid's 1/f-scaled spectrum, colour-decorrelated (default)")
class FourierParam(Param):
    """`sigmoid(colour(irfft(spectrum * 1/f^decay_power) / 4))`, for images `(H, W)` or sequences `(L,)`.

    `spectrum` holds real and imaginary parts, `[n, channels, *rfft_shape, 2]`, drawn from
    N(0, sd). Colour decorrelation (Lucid's ImageNet matrix) applies only with 3 channels;
    any other channel count is left as is. `seed`: an int, a generator, or one int per image.
    """

    def __init__(
        self,
        n: int,
        channels: int,
        size: int | Sequence[int],
        *,
        decorrelate: bool = True,
        decay_power: float = 1.0,
        sd: float = 0.01,
        seed: Seed = 0,
    ) -> None:
        super().__init__()
        self.size = check_shape(n, channels, size)
        self.decorrelate = decorrelate and channels == 3
        shape = (n, channels, *rfft_shape(self.size), 2)
        self.spectrum = nn.Parameter(random_rows("randn", shape, seed) * sd)
        # Lucid's /4 folded into the spectrum's scale (the inverse FFT is linear): one pass less.
        self.register_buffer("scale", power_law(self.size, decay_power) / _LUCID_SCALE, persistent=False)

    def forward(self) -> torch.Tensor:
        image = to_spatial(torch.view_as_complex(self.spectrum) * self.scale, self.size)
        if self.decorrelate:
            image = decorrelated_to_rgb(image)
        return torch.sigmoid(image)
