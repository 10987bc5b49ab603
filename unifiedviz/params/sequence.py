"""1-D sequences `[N, C, L]` for time-series models, with optional exponential smoothing."""
from __future__ import annotations

import torch

from ..errors import UnifiedVizError
from .base import PARAMS, Seed
from .pixel import PixelParam


@PARAMS.register("sequence", help="1-D sequences (pixel-like), optionally EMA-smoothed")
class SequenceParam(PixelParam):
    """A pixel parameterisation over `(length,)`, optionally smoothed along time.

    With `smoothing=alpha` in (0, 1], forward returns the exponential moving average
    `y[0] = x[0]`, `y[t] = alpha * x[t] + (1 - alpha) * y[t-1]` of the sigmoid output. It is a
    fixed lower-triangular matrix with rows summing to 1, so it is differentiable and keeps
    values in [0, 1]; smaller alpha means smoother sequences.
    """

    def __init__(
        self,
        n: int,
        channels: int,
        length: int,
        *,
        smoothing: float | None = None,
        init: torch.Tensor | None = None,
        sd: float = 0.01,
        seed: Seed = 0,
    ) -> None:
        super().__init__(n, channels, (length,), init=init, sd=sd, seed=seed)
        if smoothing is not None and not 0.0 < smoothing <= 1.0:
            raise UnifiedVizError(f"smoothing must be an alpha in (0, 1], got {smoothing}")
        smoother = None if smoothing is None else _ema_matrix(length, smoothing)
        self.register_buffer("smoother", smoother, persistent=False)

    @classmethod
    def from_spec(cls, n: int, spec, **options) -> "SequenceParam":
        size = tuple(spec.size)
        if len(size) != 1:
            raise UnifiedVizError(
                f"'sequence' needs a 1-D input (size (L,)), but this model takes size {size}; "
                "use 'pixel', 'fourier' or 'maco' for images"
            )
        return cls(n, spec.channels, size[0], **options)

    def forward(self) -> torch.Tensor:
        x = super().forward()
        return x if self.smoother is None else x @ self.smoother.T


def _ema_matrix(length: int, alpha: float) -> torch.Tensor:
    """W with y = W @ x the EMA above: W[t, s] = alpha (1-alpha)^(t-s) for s >= 1, (1-alpha)^t for s = 0."""
    t = torch.arange(length, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    weights = alpha * (1 - alpha) ** lag.clamp(min=0)
    weights[:, 0] = (1 - alpha) ** t
    return torch.tril(weights).float()


def smoothness_penalty(x: torch.Tensor) -> torch.Tensor:
    """Mean squared first difference along the last axis: 0 for a constant sequence, big for noise."""
    return x.diff(dim=-1).pow(2).mean()
