"""The `Optimizer` interface, its gradient-free `SearchOptimizer` form, and the `OPTIMIZERS` registry.

Two contracts, one engine loop (`unifiedviz.engine.render`):

- `Optimizer` (gradient-based, or the (1+1)-ES): `setup(params, steps, generator)` once, then
  `step(evaluate)`: `evaluate()` runs the model on the param's current images and returns
  scores `[N]` (higher is better); the optimiser changes the param's tensors in place.
- `SearchOptimizer` (PROTES, uniform search, nevergrad): searches a param's discrete space
  (`unifiedviz.params.space.SearchSpace`: per image, `dims` coordinates of `levels` values
  each). `setup_space(space, generator, budget)` once; each `step(score)` proposes `candidates`
  multi-indices per image and calls `score(indices [N, k, dims]) -> [N, k]` once: the engine
  decodes all N*k images and runs them in one batched forward. The base class keeps each
  image's best (`best_indices`, `best_scores`); the engine shows it through the param.

A step's cost in model queries per image is `queries_per_step()` (1 for gradient steps, k for a
search step): the engine's `budget` counts these. NaN scores reach a `SearchOptimizer` as -inf
(the engine counts them), so they rank last.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ..registry import Registry

Evaluate = Callable[[], torch.Tensor]
#: `score(indices [N, k, dims]) -> scores [N, k]`: k candidates per image, one batched forward.
Score = Callable[[torch.Tensor], torch.Tensor]

#: name -> factory `lr -> Optimizer` (a class whose first argument is the step size, or a function).
OPTIMIZERS: Registry[Callable[[float], "Optimizer"]] = Registry("optimiser", modules=["unifiedviz.optimizers"])


class Optimizer:
    """`setup(params, steps, generator)` once, then `step(evaluate)` per step.

    `generator` is the run's random source: a `torch.Generator`, or a
    `unifiedviz.params.RowGenerators` (one stream per image) when the run is seeded per image.
    """

    needs_grad = True

    def setup(self, params: Sequence[nn.Parameter], steps: int, generator) -> None:
        self.params = list(params)

    def step(self, evaluate: Evaluate) -> torch.Tensor:
        raise NotImplementedError

    def queries_per_step(self) -> int:
        """Model queries per image that the next `step` costs (what a budget counts)."""
        return 1


class SearchOptimizer(Optimizer):
    """Gradient-free search over a discrete space: `propose` candidates, the engine scores them, `update`.

    Subclasses set `candidates` (k, proposals per image per step) and implement `propose()`
    -> `[N, k, dims]` long and, if they learn, `update(indices, scores)`. `generator` is a
    `torch.Generator` or a `RowGenerators` (then image i's proposals come from stream i only,
    so they do not depend on the batch); draw with `unifiedviz.transforms.rand` / `randint`.
    """

    needs_grad = False
    candidates = 1

    def setup_space(self, space, generator, budget: int) -> None:
        """Once per run: `space` (a `SearchSpace`), the random source, the queries allowed per image."""
        self.n, self.dims, self.levels = space.n, space.dims, space.levels
        self.generator = generator
        self.best_indices = space.indices.detach().clone().long().cpu()
        self.best_scores = torch.full((self.n,), -float("inf"))

    def queries_per_step(self) -> int:
        return self.candidates

    def propose(self) -> torch.Tensor:
        raise NotImplementedError

    def update(self, indices: torch.Tensor, scores: torch.Tensor) -> None:
        """Learn from a step's candidates `[N, k, dims]` and their scores `[N, k]` (NaN already -inf)."""

    def step(self, score: Score) -> torch.Tensor:
        indices = self.propose()
        scores = score(indices).detach().float().cpu()
        top = scores.argmax(1)
        rows = torch.arange(self.n)
        better = scores[rows, top] > self.best_scores
        self.best_indices[better] = indices[rows, top][better]
        self.best_scores = torch.where(better, scores[rows, top], self.best_scores)
        self.update(indices, scores)
        return self.best_scores.clone()


def make_optimizer(spec: str | Optimizer, lr: float) -> Optimizer:
    """An `Optimizer` as given, or the one registered as `spec` built with step size `lr`."""
    if isinstance(spec, Optimizer):
        return spec
    return OPTIMIZERS.get(spec)(lr)
