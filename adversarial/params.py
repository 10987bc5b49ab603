"""The universal perturbation's parameterisation: a shared delta clipped per image, not per batch.

`unifiedviz.params.PerturbationParam(universal=True)` keeps the shared delta inside the box of
*every* image (`-min(x) <= delta <= 1 - max(x)` over the batch). On data with saturated pixels
that freezes most of the delta: on the digits test set 20% of pixels are 0 in one image and 1
in another (delta forced to 0 there) and 68% may only grow. Universal perturbations are
usually defined as `clip(x + v, 0, 1)` with `v` in the ball (Moosavi-Dezfooli et al. 2017):
the clip only moves a pixel back towards the clean image, so every image still stays within
the ball of its clean version and inside [0, 1]. On the digits CNN this lifts the fooling
rate at L-inf eps 0.2 from 2% to about 70% (40 steps, 200 test digits).
"""
from __future__ import annotations

import torch

from unifiedviz.params import PerturbationParam


class ClippedUniversalParam(PerturbationParam):
    """`clamp(images + v, 0, 1)` with one `v` `[1, C, *size]` in the eps-ball for the whole batch.

    The clamp stays straight-through as in `PerturbationParam` (a pixel an image saturates
    still passes that image's gradient to the shared delta): measured on the digits CNN at
    eps 0.2, 40 steps, that fools 70% of images against 60% with a true clamp.
    """

    def __init__(self, images: torch.Tensor, *, eps: float, norm: str = "linf", random_start: bool = False,
                 seed=0) -> None:
        super().__init__(images, eps=eps, norm=norm, random_start=random_start, universal=True, seed=seed)

    @torch.no_grad()
    def after_step(self) -> None:
        delta = self.delta
        if self.norm == "l2":
            delta.mul_((self.eps / delta.flatten(1).norm(dim=1).clamp(min=1e-12)).clamp(max=1.0).view(-1, *(1,) * (delta.dim() - 1)))
        else:
            delta.clamp_(-self.eps, self.eps)
        delta.clamp_(-1.0, 1.0)  # beyond +-1 every image saturates anyway


__all__ = ["ClippedUniversalParam"]
