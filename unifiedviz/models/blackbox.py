"""A model without gradients: any callable that scores a batch of images, as a `VizModel`.

    from unifiedviz.models import BlackBox
    model = BlackBox(lambda x: my_scores(x), input_size=32)        # x: [B, 3, 32, 32] in [0, 1]
    visualize(model, "class=3", optimizer="random-search", param="pixel")

The callable gets the batch (normalised with `mean`/`std` if given, else in [0, 1]) and returns
one score per image `[B]` or several `[B, K]` (a tensor, a NumPy array or nested lists); they
are the model's "logits", so `class=k` addresses score k. It runs under `torch.no_grad()`:
a living neuron, a simulator or a remote service has no gradient, and gradient-based
optimisers are refused with one line before any work (`check_optimizer`, called by the engine).
On the command line, return a `BlackBox` from a `py:FILE.py:FACTORY` factory.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..errors import UnifiedVizError
from .spec import InputSpec, VizModel

NO_GRADIENT = "this model has no gradient; use --optimizer random-search or protes"


class _Scores(nn.Module):
    """Calls the scoring function without autograd and checks what it returns."""

    def __init__(self, fn: Callable[[torch.Tensor], Any]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out = self.fn(x)
        try:
            scores = torch.as_tensor(out, dtype=torch.float32, device=x.device)
        except (TypeError, ValueError, RuntimeError):
            raise UnifiedVizError(f"the black box returned a {type(out).__name__}: return one score per image, "
                                  "a tensor or array of shape [B] or [B, K]") from None
        if scores.dim() not in (1, 2) or scores.shape[0] != x.shape[0]:
            raise UnifiedVizError(f"the black box returned scores of shape {tuple(scores.shape)} for {x.shape[0]} "
                                  f"images: return shape [{x.shape[0]}] or [{x.shape[0]}, K]")
        return scores.view(len(x), -1)


class BlackBox(VizModel):
    """`fn(images) -> scores` as a model: units `class=k` read score k; there is no gradient.

    `input_size` is an int (square) or (H, W) (or (L,) for 1-D inputs); `channels`, `mean`,
    `std` (per channel, default: no normalisation) and `class_names` as for `load_model`.
    """

    has_gradient = False

    def __init__(
        self,
        fn: Callable[[torch.Tensor], Any],
        input_size: int | Sequence[int],
        *,
        channels: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        class_names: Sequence[str] | None = None,
        source: str = "module",
    ) -> None:
        if not callable(fn):
            raise UnifiedVizError(f"BlackBox needs a callable that scores a batch, not a {type(fn).__name__}")
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(int(s) for s in input_size)
        spec = InputSpec(size, channels, tuple(mean or (0.0,) * channels), tuple(std or (1.0,) * channels))
        super().__init__(_Scores(fn), spec, source=source, class_names=class_names)


def has_gradient(model: nn.Module) -> bool:
    """False for a model that says it has none: a `BlackBox`, or a module (or the net a `VizModel`
    wraps) with `has_gradient = False`."""
    return all(getattr(m, "has_gradient", True) is not False for m in (model, getattr(model, "net", None)))


def check_optimizer(model: nn.Module, optimizer) -> None:
    """Refuse a gradient-based optimiser for a model without gradients, in one line."""
    if optimizer.needs_grad and not has_gradient(model):
        raise UnifiedVizError(NO_GRADIENT)
