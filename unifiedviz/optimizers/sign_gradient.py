"""The L-inf steepest ascent step (FGSM/PGD): x += lr * sign(grad)."""
from __future__ import annotations

import torch

from .base import OPTIMIZERS, Evaluate, Optimizer


@OPTIMIZERS.register("sign-gradient", help="x += lr * sign(grad): the L-inf step of FGSM/PGD")
class SignGradient(Optimizer):
    """x += lr * sign(grad): the L-inf steepest ascent step of FGSM/PGD."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def step(self, evaluate: Evaluate) -> torch.Tensor:
        scores = evaluate()
        grads = torch.autograd.grad(scores.sum(), self.params)
        with torch.no_grad():
            for p, g in zip(self.params, grads):
                p.add_(self.direction(g), alpha=self.lr)
        return scores.detach()

    @staticmethod
    def direction(g: torch.Tensor) -> torch.Tensor:
        return g.sign()
