"""`builtin:digits-gen`: a small VAE trained on scikit-learn digits (scripts/train_digits_gen.py).

The decoder draws the 8x8 digit (sigmoid, [0, 1]) and upsamples it bilinearly to 32x32 exactly
as `unifiedviz.datasets.load_digits_images` does, so every output lies in the same image space
as the data digits-cnn and digits-vit were trained on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LATENT = 16


class DigitsDecoder(nn.Module):
    """z [N, 16] -> image [N, 1, 32, 32] in [0, 1]."""

    def __init__(self, latent: int = LATENT, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 64))
        self.latent_shape = (latent,)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.sigmoid(self.net(z)).view(-1, 1, 8, 8)
        return F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)


class DigitsEncoder(nn.Module):
    """image [N, 1, 32, 32] (or 8x8) -> (mu, logvar) [N, 16] each."""

    def __init__(self, latent: int = LATENT, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * latent))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.shape[-1] != 8:
            x = F.adaptive_avg_pool2d(x, 8)
        mu, logvar = self.net(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar


class DigitsVAE(nn.Module):
    def __init__(self, latent: int = LATENT) -> None:
        super().__init__()
        self.encoder = DigitsEncoder(latent)
        self.decoder = DigitsDecoder(latent)
