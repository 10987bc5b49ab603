"""A bounded perturbation of given inputs: the parameterisation behind adversarial attacks."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UnifiedVizError
from .base import Param, Seed, generator_from
from .seeding import is_row_seeds

NORMS = ("linf", "l2")


class PerturbationParam(Param):
    """`clamp(images + delta, 0, 1)` with `delta` kept in the `norm` ball of radius `eps`.

    The clamp is straight-through (gradient 1 everywhere) so saturated pixels can still move.

    `images` is `[N, C, *size]` in [0, 1]. `delta` is `[N, C, *size]`, or `[1, C, *size]` shared
    by the whole batch with `universal=True`. `after_step()` keeps `delta` feasible: inside the
    eps-ball (L2 per sample) and such that `images + delta` stays in [0, 1] for every image.
    For L-inf this is the exact projection (both sets are boxes); for L2 it projects onto the
    ball, then clips into the box, which only shrinks entries so the L2 bound still holds.

    A universal delta follows the usual definition (Moosavi-Dezfooli et al. 2017): each image
    is `clamp(x + delta, 0, 1)` with `delta` in the ball. Keeping `delta` inside every image's
    box instead would freeze it wherever one image is dark and another bright (on the digits
    test set 20% of pixels; the fooling rate at eps 0.2 fell from ~70% to 2%). The clamp only
    moves a pixel back towards its clean value, so every image stays in the ball and in [0, 1].
    `random_start` draws `delta` uniformly from the L-inf ball, or uniformly from the L2 ball
    (random direction, radius eps * U^(1/d)), before that projection. `seed` is an int or a
    generator, or (not universal) one int per image: image i's start then comes from its own
    generator, whatever the batch.

    Not in `PARAMS` (it needs the images): build it directly.
    """

    def __init__(
        self,
        images: torch.Tensor,
        *,
        eps: float,
        norm: str = "linf",
        random_start: bool = False,
        universal: bool = False,
        seed: Seed = 0,
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise UnifiedVizError(f"unknown norm {norm!r}; use one of {', '.join(NORMS)}")
        if not eps > 0:
            raise UnifiedVizError(f"eps must be > 0, got {eps}")
        if images.dim() < 3 or images.min() < 0 or images.max() > 1:
            raise UnifiedVizError(
                f"images must be a [N, C, *size] tensor in [0, 1], got shape {tuple(images.shape)} "
                f"with range [{images.min():.3g}, {images.max():.3g}]; pass un-normalised images"
            )
        self.eps = float(eps)
        self.norm = norm
        self.universal = universal
        images = images.detach().float()
        self.register_buffer("images", images.clone())
        shape = (1, *images.shape[1:]) if universal else tuple(images.shape)
        # The box for delta, fixed for the run: each image's own, or (universal) +-1, beyond
        # which every image saturates anyway; L-inf intersects it with the ball.
        lower = torch.full(shape, -1.0) if universal else -images
        upper = torch.full(shape, 1.0) if universal else 1 - images
        if norm == "linf":
            lower, upper = lower.clamp(min=-self.eps), upper.clamp(max=self.eps)
        self.register_buffer("lower", lower.to(images.device), persistent=False)
        self.register_buffer("upper", upper.to(images.device), persistent=False)
        delta = self._start(shape, seed) if random_start else torch.zeros(shape)
        self.delta = nn.Parameter(delta.to(images.device))
        self.after_step()

    def _start(self, shape: tuple[int, ...], seed: Seed) -> torch.Tensor:
        """The random start: one stream for the whole delta, or (per-image seeds) one per row."""
        if not is_row_seeds(seed):
            return self._random_delta(shape, generator_from(seed))
        seeds = list(seed)
        if self.universal or len(seeds) != shape[0]:
            what = "one universal perturbation" if self.universal else f"{shape[0]} images"
            raise UnifiedVizError(f"got {len(seeds)} seeds for {what}: give one seed per image "
                                  "(an int for a universal perturbation)")
        row = (1, *shape[1:])
        return torch.cat([self._random_delta(row, generator_from(s)) for s in seeds])

    def _random_delta(self, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
        if self.norm == "linf":
            return (torch.rand(shape, generator=gen) * 2 - 1) * self.eps
        direction = torch.randn(shape, generator=gen)
        direction = direction / _l2(direction)
        d = direction[0].numel()
        radius = self.eps * torch.rand((shape[0],) + (1,) * (len(shape) - 1), generator=gen) ** (1 / d)
        return direction * radius

    def forward(self) -> torch.Tensor:
        x = self.images + self.delta
        # Straight-through clamp: torch.clamp has zero gradient at exactly 0 and 1, which would
        # freeze every saturated pixel of a photo; after_step() keeps x in range anyway.
        return x + (x.clamp(0.0, 1.0) - x).detach()

    @torch.no_grad()
    def after_step(self, gradient: bool = True) -> None:
        delta = self.delta
        if self.norm == "l2":
            delta.mul_((self.eps / _l2(delta).clamp(min=1e-12)).clamp(max=1.0))
        delta.copy_(torch.minimum(torch.maximum(delta, self.lower), self.upper))

    def adversarial_images(self) -> torch.Tensor:
        """The perturbed images `[N, C, *size]`, detached."""
        return self.forward().detach()


def _l2(x: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm, shaped to broadcast against `x`."""
    return x.flatten(1).norm(dim=1).view(-1, *(1,) * (x.dim() - 1))
