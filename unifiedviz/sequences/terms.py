"""Named objective terms for Sequence Dreaming, registered in `OBJECTIVES` next to l1, l2, tv, blur.

    gaussian(sigma)                 penalty: squared distance to a Gaussian-filtered copy (detached)
    realism(real, labels, classes)  penalty: RMS distance of each sequence to its class's k nearest real ones
    border(adapter, targets)        score: minus KL(target || softmax), 0 when the class
                                    probabilities equal the targets (e.g. 0.5 / 0.5 between two classes)

Penalties are subtracted (`score - 0.5 * gaussian(2)`), like the other regularisers. The L2
(`l2`), total-variation (`total_variation`) terms are the shared ones; exponential smoothing
is the `sequence` parameterisation's `smoothing` option.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..adapters import LOGITS
from ..errors import UnifiedVizError
from ..objectives import OBJECTIVES, Context, ImageTerm, Objective


def gaussian_filter1d(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Filter `[N, C, L]` along L with a Gaussian of `sigma` steps (reflect padding, kernel +-3 sigma)."""
    if sigma <= 0:
        raise UnifiedVizError(f"gaussian sigma must be > 0 steps, got {sigma}")
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = (kernel / kernel.sum()).view(1, 1, -1).expand(x.shape[1], 1, -1)
    return F.conv1d(F.pad(x, (radius, radius), mode="reflect"), kernel, groups=x.shape[1])


@OBJECTIVES.register("gaussian")
def gaussian(sigma: float = 2.0) -> ImageTerm:
    """Sequence Dreaming's Gaussian filtering as a loss: sum of (x - G_sigma * x)^2 per sequence (penalty)."""
    gaussian_filter1d(torch.zeros(1, 1, 4), sigma)  # check sigma now, not on the first step

    def penalty(x: torch.Tensor) -> torch.Tensor:
        return (x - gaussian_filter1d(x, sigma).detach()).pow(2).flatten(1).sum(1)

    return ImageTerm(f"gaussian({sigma:g})", penalty)


class Realism(Objective):
    """Per sequence: RMS distance to the `k` nearest real sequences of its own class (penalty: subtract it).

    `real` `[M, C, L]` in the model's [0, 1] input space with `labels` `[M]`; `classes[i]` is the
    class of image i of the batch (None: all real sequences).
    """

    def __init__(self, real: torch.Tensor, labels: torch.Tensor, classes: Sequence[int | None], k: int = 1) -> None:
        if k < 1:
            raise UnifiedVizError(f"realism k must be at least 1, got {k}")
        self.real, self.labels, self.classes, self.k = real.float(), labels, list(classes), k
        for c in set(self.classes) - {None}:
            if int((labels == c).sum()) < k:
                raise UnifiedVizError(f"realism needs at least k={k} real sequences of class {c}; give more data or lower k")
        self.name = f"realism(k={k})"

    def __call__(self, ctx: Context) -> torch.Tensor:
        x = ctx.images
        if x.shape[0] != len(self.classes):
            raise UnifiedVizError(f"realism was built for {len(self.classes)} sequences, the batch has {x.shape[0]}")
        real = self.real.to(x.device)
        d = torch.cdist(x.flatten(1), real.flatten(1)) / math.sqrt(x[0].numel())  # RMS distance [B, M]
        out = []
        for i, c in enumerate(self.classes):
            row = d[i] if c is None else d[i][self.labels.to(x.device) == c]
            out.append(row.topk(self.k, largest=False).values.mean())
        return torch.stack(out)


@OBJECTIVES.register("realism")
def realism(real: torch.Tensor, labels: torch.Tensor, classes: Sequence[int | None], k: int = 1) -> Realism:
    """Distance of each sequence to its class's k nearest real sequences (subtract it)."""
    return Realism(real, labels, classes, k)


class Border(Objective):
    """Reach given class probabilities: minus KL(target || softmax(logits)) per image; 0 at the target.

    `targets` `[B, K]`, rows summing to 1 (e.g. 0.5 on two classes, 0 elsewhere).
    """

    layers = (LOGITS,)

    def __init__(self, targets: torch.Tensor) -> None:
        targets = torch.as_tensor(targets, dtype=torch.float32)
        if targets.dim() != 2 or (targets < 0).any() or not torch.allclose(targets.sum(1), torch.ones(len(targets)), atol=1e-4):
            raise UnifiedVizError("border targets must be rows of probabilities [B, K] that sum to 1")
        self.targets = targets
        self.name = "border(" + "; ".join("/".join(f"{p:g}" for p in row.tolist()) for row in targets[:2]) + \
            (", ...)" if len(targets) > 2 else ")")

    def __call__(self, ctx: Context) -> torch.Tensor:
        logits = ctx.acts[LOGITS]
        t = self.targets.to(logits.device)
        if t.shape != logits.shape:
            raise UnifiedVizError(f"border targets have shape {tuple(t.shape)}, the logits {tuple(logits.shape)}")
        logp = F.log_softmax(logits, dim=-1)
        safe = torch.where(t > 0, t, torch.ones_like(t))
        return -(t * (safe.log() - logp)).sum(-1)


@OBJECTIVES.register("border")
def border(targets) -> Border:
    """Class probabilities close to `targets` [B, K] (add it: 0 at the target, negative elsewhere)."""
    return Border(targets)


__all__ = ["Border", "Realism", "border", "gaussian", "gaussian_filter1d", "realism"]
