"""A label-conditioned generator: noise, a label vector and a conditioning matrix -> an image.

As in Suhail's network inversion, the label enters twice: as a label vector (one-hot, concatenated
with the noise) and as a conditioning matrix (a learned per-class map, concatenated as an extra
channel to the decoder's first feature map). A small conv decoder upsamples to the model's input.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnifiedVizError


class ConditionedGenerator(nn.Module):
    """(z [B, latent_dim], labels [B]) -> images [B, C, H, W] (unbounded; the pixel-range loss keeps
    them near [0, 1] and samples are clamped to it)."""

    def __init__(self, num_classes: int, shape: tuple[int, int, int], latent_dim: int = 64, width: int = 64) -> None:
        super().__init__()
        c, h, w = shape
        self.num_classes, self.shape, self.latent_dim = num_classes, (c, h, w), latent_dim
        self.h0, self.w0 = max(1, math.ceil(h / 4)), max(1, math.ceil(w / 4))
        self.width = width
        self.fc = nn.Linear(latent_dim + num_classes, width * self.h0 * self.w0)
        self.condition = nn.Linear(num_classes, self.h0 * self.w0, bias=False)  # the conditioning matrix
        self.net = nn.Sequential(
            nn.Conv2d(width + 1, width, 3, padding=1), nn.BatchNorm2d(width), nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, width // 2, 3, padding=1), nn.BatchNorm2d(width // 2), nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width // 2, width // 4, 3, padding=1), nn.BatchNorm2d(width // 4), nn.LeakyReLU(0.2),
            nn.Conv2d(width // 4, c, 3, padding=1),
        )

    def label_vector(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, self.num_classes).float()

    def conditioning_matrix(self, labels: torch.Tensor) -> torch.Tensor:
        """[B, 1, h0, w0]: the label's learned map."""
        return self.condition(self.label_vector(labels)).view(-1, 1, self.h0, self.w0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        v = self.label_vector(labels)
        h = F.leaky_relu(self.fc(torch.cat([z, v], 1)), 0.2).view(-1, self.width, self.h0, self.w0)
        x = self.net(torch.cat([h, self.conditioning_matrix(labels)], 1))
        if tuple(x.shape[-2:]) != self.shape[1:]:
            x = F.interpolate(x, size=self.shape[1:], mode="bilinear", align_corners=False)
        return 0.5 + x  # start around mid-grey

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator)


def check_output(generator: nn.Module, latent_dim: int, num_classes: int, want: tuple[int, ...], model_name: str) -> None:
    """One line naming both shapes if `generator` does not write the model's input."""
    with torch.no_grad():
        was = generator.training
        generator.eval()
        try:
            out = generator(torch.zeros(2, latent_dim), torch.zeros(2, dtype=torch.long) % num_classes)
        except Exception as e:  # noqa: BLE001 - a user module that cannot even run
            raise UnifiedVizError(f"the generator failed on a batch of 2 latents [2, {latent_dim}]: {e}") from None
        finally:
            generator.train(was)
    got = tuple(out.shape[1:])
    if got != tuple(want):
        raise UnifiedVizError(f"the generator writes images of shape {list(got)} but {model_name} takes "
                              f"{list(want)}: make the generator's output match the model's input")
