"""Adam (torch's) on -sum(scores), with a constant or cosine learning rate."""
from __future__ import annotations

import torch

from ..errors import UnifiedVizError
from .base import OPTIMIZERS, Evaluate, Optimizer


@OPTIMIZERS.register("adam", help="Adam at a constant learning rate (default)")
class Adam(Optimizer):
    """torch's Adam on -sum(scores); `schedule` is 'constant' or 'cosine' (decays to 10% of lr)."""

    def __init__(self, lr: float = 0.05, schedule: str = "constant", **kwargs) -> None:
        if schedule not in ("constant", "cosine"):
            raise UnifiedVizError(f"unknown schedule {schedule!r}: use 'constant' or 'cosine'")
        self.lr, self.schedule, self.kwargs = lr, schedule, kwargs

    def setup(self, params, steps, generator) -> None:
        super().setup(params, steps, generator)
        # fused: one kernel per step instead of ~8 passes over the whole parameterisation.
        self.opt = torch.optim.Adam(self.params, lr=self.lr, **{"fused": True, **self.kwargs})
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


@OPTIMIZERS.register("adam-cosine", help="Adam with the learning rate decaying to 10% on a cosine")
def adam_cosine(lr: float) -> Adam:
    return Adam(lr, schedule="cosine")
