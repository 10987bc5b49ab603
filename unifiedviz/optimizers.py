"""Optimisers behind one interface, gradient-based and gradient-free.

`step(evaluate)` calls `evaluate()` (scores `[N]`, higher is better), updates the parameters
and returns the scores it saw. The engine does not care how the update is made, so a model
whose gradient is unavailable can still be optimised (`RandomSearch`).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from .errors import UnifiedVizError

Evaluate = Callable[[], torch.Tensor]


class Optimizer:
    needs_grad = True

    def setup(self, params: Sequence[nn.Parameter], steps: int, generator: torch.Generator) -> None:
        self.params = list(params)

    def step(self, evaluate: Evaluate) -> torch.Tensor:
        raise NotImplementedError


class Adam(Optimizer):
    """torch's Adam on -sum(scores); `schedule` is 'constant' or 'cosine' (decays to 10% of lr)."""

    def __init__(self, lr: float = 0.05, schedule: str = "constant", **kwargs) -> None:
        if schedule not in ("constant", "cosine"):
            raise UnifiedVizError(f"unknown schedule {schedule!r}: use 'constant' or 'cosine'")
        self.lr, self.schedule, self.kwargs = lr, schedule, kwargs

    def setup(self, params, steps, generator) -> None:
        super().setup(params, steps, generator)
        self.opt = torch.optim.Adam(self.params, lr=self.lr, **self.kwargs)
        self.sched = (
            torch.optim.lr_scheduler.CosineAnnealingLR(self.opt, T_max=max(steps, 1), eta_min=self.lr * 0.1)
            if self.schedule == "cosine"
            else None
        )

    def step(self, evaluate: Evaluate) -> torch.Tensor:
        self.opt.zero_grad(set_to_none=True)
        scores = evaluate()
        (-scores.sum()).backward()
        self.opt.step()
        if self.sched is not None:
            self.sched.step()
        return scores.detach()


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


class NormalizedGradient(SignGradient):
    """x += lr * grad / ||grad||_2 per sample: the L2 steepest ascent step of L2 PGD."""

    @staticmethod
    def direction(g: torch.Tensor) -> torch.Tensor:
        norm = g.flatten(1).norm(dim=1).clamp(min=1e-12)
        return g / norm.view(-1, *(1,) * (g.dim() - 1))


class RandomSearch(Optimizer):
    """A (1+1) evolution strategy per image, with the 1/5th success rule for the step size.

    Needs no gradient: for black-box models, or a generator's low-dimensional latent.
    Parameters whose first dimension is not the batch (e.g. a universal perturbation) are
    judged by the batch's total score.
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
                noise = torch.randn(p.shape, generator=self.generator).to(p)
                p.add_(noise * self._per_row(self.sigma, p))
            scores = evaluate()
            better = scores > self.best
            for p, old in zip(self.params, saved):
                keep = self._per_row(better, p) if p.shape[0] == len(better) else better.sum() > len(better) / 2
                p.copy_(torch.where(keep, p, old))
            self.best = torch.where(better, scores, self.best)
            # 1/5th rule: grow on success, shrink on failure, balanced at a 20% success rate
            self.sigma = self.sigma * torch.where(better, math.exp(0.8), math.exp(-0.2))
            return self.best.clone()

    @staticmethod
    def _per_row(values: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        if p.shape[0] != values.shape[0]:
            values = values.float().mean().expand(p.shape[0])
        return values.view(-1, *(1,) * (p.dim() - 1)).to(p.device)


def make_optimizer(spec: str | Optimizer, lr: float) -> Optimizer:
    if isinstance(spec, Optimizer):
        return spec
    if spec == "adam":
        return Adam(lr)
    if spec == "adam-cosine":
        return Adam(lr, schedule="cosine")
    if spec == "random-search":
        return RandomSearch(sigma=lr)
    raise UnifiedVizError(
        f"unknown optimiser {spec!r}: use 'adam', 'adam-cosine' or 'random-search' (or pass an Optimizer)"
    )
