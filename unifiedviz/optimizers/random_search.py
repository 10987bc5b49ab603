"""A gradient-free (1+1) evolution strategy per image."""
from __future__ import annotations

import math

import torch

from ..params.seeding import RowGenerators
from .base import OPTIMIZERS, Evaluate, Optimizer


@OPTIMIZERS.register("random-search", help="(1+1)-ES per image, no gradient; lr is the initial step size")
class RandomSearch(Optimizer):
    """A (1+1) evolution strategy per image, with the 1/5th success rule for the step size.

    Needs no gradient: for black-box models, or a generator's low-dimensional latent.
    Parameters whose first dimension is not the batch (e.g. a universal perturbation) are
    judged by the batch's total score. With per-image generators (`RowGenerators`), each
    image's proposals come from its own stream, so they do not depend on the batch.
    """

    needs_grad = False

    def __init__(self, sigma: float = 0.1) -> None:
        self.sigma0 = sigma

    def setup(self, params, steps, generator) -> None:
        super().setup(params, steps, generator)
        self.generator = generator
        self.best: torch.Tensor | None = None

    def step(self, evaluate: Evaluate) -> torch.Tensor:
        with torch.no_grad():
            if self.best is None:
                self.best = evaluate()
                self.sigma = torch.full_like(self.best, self.sigma0)
            saved = [p.detach().clone() for p in self.params]
            for p in self.params:
                p.add_(self._noise(p) * self._per_row(self.sigma, p))
            scores = evaluate()
            better = scores > self.best
            for p, old in zip(self.params, saved):
                keep = self._per_row(better, p) if p.shape[0] == len(better) else better.sum() > len(better) / 2
                p.copy_(torch.where(keep, p, old))
            self.best = torch.where(better, scores, self.best)
            # 1/5th rule: grow on success, shrink on failure, balanced at a 20% success rate
            self.sigma = self.sigma * torch.where(better, math.exp(0.8), math.exp(-0.2))
            return self.best.clone()

    def queries_per_step(self) -> int:
        return 2 if getattr(self, "best", None) is None else 1  # the first step also scores the start

    def _noise(self, p: torch.Tensor) -> torch.Tensor:
        g = self.generator
        if isinstance(g, RowGenerators):
            noise = g.randn(p.shape) if p.shape[0] == len(g) else torch.randn(p.shape, generator=g.shared)
        else:
            noise = torch.randn(p.shape, generator=g)
        return noise.to(p)

    @staticmethod
    def _per_row(values: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        if p.shape[0] != values.shape[0]:
            values = values.float().mean().expand(p.shape[0])
        return values.view(-1, *(1,) * (p.dim() - 1)).to(p.device)
