"""The L2 steepest ascent step (L2 PGD): x += lr * grad / ||grad||_2 per sample."""
from __future__ import annotations

import torch

from .base import OPTIMIZERS
from .sign_gradient import SignGradient


@OPTIMIZERS.register("normalized-gradient", help="x += lr * grad / ||grad||_2 per sample: the L2 step of L2 PGD")
class NormalizedGradient(SignGradient):
    """x += lr * grad / ||grad||_2 per sample: the L2 steepest ascent step of L2 PGD."""

    @staticmethod
    def direction(g: torch.Tensor) -> torch.Tensor:
        norm = g.flatten(1).norm(dim=1).clamp(min=1e-12)
        return g / norm.view(-1, *(1,) * (g.dim() - 1))
