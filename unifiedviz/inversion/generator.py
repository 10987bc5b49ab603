"""Label-conditioned generators: noise, a label vector and a conditioning matrix -> an image.

As in Suhail's network inversion, the label enters twice: as a label vector (one-hot, concatenated
with the noise) and as a conditioning matrix (a learned per-class map, concatenated to the first
hidden features).
- `ConditionedGenerator` draws pixels: a small conv decoder upsamples to the model's input.
- `LatentConditionedGenerator` draws the latent code of a pretrained image generator (a data
  prior: `unifiedviz.generators`, e.g. `builtin:digits-gen`), clipped to the range of encoded real
  images and decoded by that generator (frozen, or fine-tuned with its own learning rate), so every
  sample is an image the prior can draw.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UnifiedVizError
from ..params.generator import clip_codes


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


class LatentConditionedGenerator(nn.Module):
    """(z [B, latent_dim], labels [B]) -> codes of `prior` (a `unifiedviz.generators.Generator`) -> its
    images mapped to [0, 1]. `code()` gives the codes before the clip (the latent prior loss reads them)."""

    def __init__(self, num_classes: int, prior, latent_dim: int = 64, width: int = 64,
                 prior_name: str | None = None) -> None:
        super().__init__()
        self.num_classes, self.latent_dim, self.width = num_classes, latent_dim, width
        self.prior_name = prior_name or prior.name
        self.code_shape = tuple(prior.latent_shape)
        self.fc = nn.Linear(latent_dim + num_classes, width)
        self.condition = nn.Linear(num_classes, width, bias=False)  # the conditioning matrix: one map per class
        self.net = nn.Sequential(nn.LeakyReLU(0.2), nn.Linear(2 * width, width), nn.LeakyReLU(0.2),
                                 nn.Linear(width, math.prod(self.code_shape)))
        self.decoder = prior.module.eval()
        self.output_range = tuple(prior.output_range)
        for name, bound in zip(("clip_lo", "clip_hi"), prior.clip or (None, None)):
            self.register_buffer(name, None if bound is None else torch.as_tensor(bound, dtype=torch.float32).clone())
        self.shape = tuple(prior.output_shape())
        self.fine_tune(False)

    def fine_tune(self, on: bool) -> "LatentConditionedGenerator":
        """Let the decoder's weights train (`prior_lr` > 0) or keep them frozen."""
        self.decoder.requires_grad_(on)
        return self

    def train(self, mode: bool = True) -> "LatentConditionedGenerator":
        super().train(mode)
        self.decoder.eval()  # its BatchNorm (if any) keeps the statistics of real images
        return self

    def label_vector(self, labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, self.num_classes).float()

    def code(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The prior's latent codes [B, *code_shape], before the clip."""
        v = self.label_vector(labels)
        h = torch.cat([self.fc(torch.cat([z, v], 1)), self.condition(v)], 1)
        return self.net(h).view(-1, *self.code_shape)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        clip = None if self.clip_lo is None else (self.clip_lo, self.clip_hi)
        lo, hi = self.output_range
        return (self.decoder(clip_codes(codes, clip)) - lo) / (hi - lo)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.decode(self.code(z, labels))

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
