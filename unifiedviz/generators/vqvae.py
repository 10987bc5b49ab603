"""`builtin:cifar10-vqvae`: the CIFAR-10 VQ-VAE of iabs-neuro/mango (MIT, LICENSE.mango beside its weights).

Architecture written from the model's description (conversion: scripts/convert_vqvae.py). The
residual layers apply ReLU *in place* to their input in the original code, so the skip
connection carries relu(x), not x: reproduced here. The decoder's images are in CIFAR-10's
normalised space; `VQVAEGenerator` maps them to [0, 1] (times std plus mean).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2471, 0.2435, 0.2616)


class _ResidualLayer(nn.Module):
    def __init__(self, channels: int = 128, hidden: int = 32) -> None:
        super().__init__()
        self._block = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1, bias=False), nn.ReLU(),
                                    nn.Conv2d(hidden, channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)  # the original's ReLU(inplace=True) rewrites x itself: the skip carries relu(x)
        return x + self._block(x)


class _ResidualStack(nn.Module):
    def __init__(self, channels: int = 128, hidden: int = 32, n: int = 2) -> None:
        super().__init__()
        self._layers = nn.ModuleList([_ResidualLayer(channels, hidden) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._layers:
            x = layer(x)
        return F.relu(x)


class VQEncoder(nn.Module):
    """image, normalised [N, 3, 32, 32] -> continuous latent [N, 128, 8, 8] (before `_pre_vq_conv`)."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_1 = nn.Conv2d(3, 64, 4, stride=2, padding=1)
        self._conv_2 = nn.Conv2d(64, 128, 4, stride=2, padding=1)
        self._conv_3 = nn.Conv2d(128, 128, 3, padding=1)
        self._residual_stack = _ResidualStack()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self._conv_1(x))
        x = F.relu(self._conv_2(x))
        return self._residual_stack(self._conv_3(x))


class VQDecoder(nn.Module):
    """latent [N, 64, 8, 8] -> image in CIFAR-10's normalised space [N, 3, 32, 32]."""

    def __init__(self) -> None:
        super().__init__()
        self._conv_1 = nn.Conv2d(64, 128, 3, padding=1)
        self._residual_stack = _ResidualStack()
        self._conv_trans_1 = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1)
        self._conv_trans_2 = nn.ConvTranspose2d(64, 3, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self._residual_stack(self._conv_1(z))
        return self._conv_trans_2(F.relu(self._conv_trans_1(x)))


class _Codebook(nn.Module):
    def __init__(self, n: int = 512, dim: int = 64) -> None:
        super().__init__()
        self._embedding = nn.Embedding(n, dim)


class VQVAE(nn.Module):
    """The full model; state-dict keys as in the original file (EMA training state left out)."""

    def __init__(self) -> None:
        super().__init__()
        self._encoder = VQEncoder()
        self._pre_vq_conv = nn.Conv2d(128, 64, 1)
        self._vq_vae = _Codebook()
        self._decoder = VQDecoder()
        self.register_buffer("mean", torch.tensor(CIFAR_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CIFAR_STD).view(1, 3, 1, 1), persistent=False)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images in [0, 1] [N, 3, 32, 32] -> continuous latent grid [N, 64, 8, 8] (before quantisation)."""
        return self._pre_vq_conv(self._encoder((images - self.mean) / self.std))

    def codes(self, z: torch.Tensor) -> torch.Tensor:
        """Nearest codebook index per cell, [N, 8, 8] in [0, 512)."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
        return torch.cdist(flat, self._vq_vae._embedding.weight).argmin(1).view(z.shape[0], *z.shape[2:])

    def quantize(self, z: torch.Tensor, straight_through: bool = True) -> torch.Tensor:
        q = self._vq_vae._embedding(self.codes(z)).permute(0, 3, 1, 2)
        return z + (q - z).detach() if straight_through else q

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """latent [N, 64, 8, 8] -> images mapped to [0, 1] (not clamped: the param clamps)."""
        return self._decoder(z) * self.std + self.mean

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self.decode(self.quantize(self.encode(images), straight_through=False))


class VQVAEGenerator(nn.Module):
    """latent grid [N, 64, 8, 8] -> image [N, 3, 32, 32] in [0, 1]; `snap`: straight-through quantisation."""

    def __init__(self, vqvae: VQVAE, snap: bool = False) -> None:
        super().__init__()
        self.vqvae = vqvae
        self.snap = snap
        self.latent_shape = (64, 8, 8)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.vqvae.decode(self.vqvae.quantize(z) if self.snap else z)
