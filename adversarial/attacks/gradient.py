"""Class attacks by gradient steps: FGSM (one step) and PGD (projected steps from a random start)."""
from __future__ import annotations

from unifiedviz.errors import UnifiedVizError

from .base import ATTACKS, Attack


@ATTACKS.register("fgsm", help="fast gradient sign method: one step of size eps")
class FGSM(Attack):
    """Fast gradient sign method: one step of size eps from the clean image (L-inf), or one
    normalised-gradient step of length eps (L2)."""

    method = "fgsm"
    default_steps = 1

    def __init__(self, model, *, eps: float = 8 / 255, norm: str = "linf", loss: str = "ce", **kwargs) -> None:
        kwargs.setdefault("random_start", False)
        kwargs.setdefault("steps", 1)
        super().__init__(model, eps=eps, norm=norm, loss=loss, **kwargs)

    def default_alpha(self) -> float:
        return self.eps

    @classmethod
    def from_options(cls, model, opts, common: dict) -> "FGSM":
        if common.get("steps") not in (None, 1):
            raise UnifiedVizError("fgsm takes exactly one step: use --method pgd for more")
        return cls(model, **{k: v for k, v in common.items() if k != "steps"})


@ATTACKS.register("pgd", help="projected gradient descent from a random start in the ball (default)")
class PGD(Attack):
    """Projected gradient descent (Madry et al.) from a random start in the ball, L-inf or L2."""

    method = "pgd"
    default_steps = 10
