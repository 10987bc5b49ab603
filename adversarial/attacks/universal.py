"""Universal perturbations: one perturbation shared by every image of a batch."""
from __future__ import annotations

import torch

from unifiedviz.params import PerturbationParam

from .base import ATTACKS, Attack


@ATTACKS.register("universal", help="one perturbation shared by a batch (all images by default)")
class UniversalPerturbation(Attack):
    """One perturbation shared by every image of a batch (Moosavi-Dezfooli et al.'s goal, PGD-style).

    Each image is `clip(x + v, 0, 1)` with the shared `v` in the ball
    (`PerturbationParam(universal=True)`). Default loss "cw" with a cap kappa: images already
    fooled stop pulling on the shared delta, so it serves the images it does not fool yet;
    kappa 2 (a logit margin) keeps pulling a little past the boundary (on the digits CNN at
    eps 0.2: 76% fooled vs 70% with 0).
    """

    method = "universal"
    default_steps = 40
    universal = True

    def __init__(self, model, *, loss: str = "cw", kappa: float | None = 2.0, random_start: bool = False,
                 **kwargs) -> None:
        super().__init__(model, loss=loss, kappa=kappa, random_start=random_start, **kwargs)

    def default_alpha(self) -> float:
        return max(self.eps / 20, 5 * self.eps / self.steps)

    def param(self, images: torch.Tensor, k: int) -> PerturbationParam:
        return PerturbationParam(images, eps=self.eps, norm=self.norm, random_start=self.random_start,
                                 universal=True, seed=self.seed + k)
