"""The `Optimizer` interface and the `OPTIMIZERS` registry."""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ..registry import Registry

Evaluate = Callable[[], torch.Tensor]

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


def make_optimizer(spec: str | Optimizer, lr: float) -> Optimizer:
    """An `Optimizer` as given, or the one registered as `spec` built with step size `lr`."""
    if isinstance(spec, Optimizer):
        return spec
    return OPTIMIZERS.get(spec)(lr)
