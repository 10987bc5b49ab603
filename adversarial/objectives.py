"""Objectives that turn the AM engine into an attack (the engine maximises them).

Class terms read the model's logits (`ctx.acts[LOGITS]`) with one label per image, so a batch
can mix labels and targets:

    class_loss(labels)                       untargeted cross-entropy: push away from `labels`
    class_loss(targets, targeted=True)       log-probability of each image's target
    class_loss(labels, loss="cw")            Carlini-Wagner margin max_{j!=y} z_j - z_y
    feature_match(layer, target_features)    minus the relative squared distance to features

They are ordinary `Objective`s: they add, subtract and scale with unit objectives, e.g.
`unit(adapter, "conv3:channel=5") + 0.5 * class_loss(targets, targeted=True)`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from unifiedviz.adapters import LOGITS
from unifiedviz.errors import UnifiedVizError
from unifiedviz.objectives import Context, Objective

LOSSES = ("ce", "cw")


class ClassLoss(Objective):
    """Per-image class objective on the logits.

    Untargeted (`targeted=False`, `labels` are the classes to move away from):
      ce: cross-entropy of the label, `logsumexp(z) - z_y`;
      cw: margin `max_{j != y} z_j - z_y` (positive once the image is misclassified).
    Targeted (`labels` are the targets):
      ce: log-probability of the target, `z_t - logsumexp(z)`;
      cw: margin `z_t - max_{j != t} z_j` (positive once the target wins).
    `kappa` caps the score (`min(score, kappa)`): an image whose margin already exceeds
    `kappa` gets no gradient, i.e. stops moving (a per-image early stop; mostly for "cw").
    """

    layers = (LOGITS,)

    def __init__(self, labels: torch.Tensor, *, targeted: bool = False, loss: str = "ce",
                 kappa: float | None = None) -> None:
        if loss not in LOSSES:
            raise UnifiedVizError(f"unknown attack loss {loss!r}: use one of {', '.join(LOSSES)}")
        labels = torch.as_tensor(labels).long().flatten()
        self.labels = labels
        self.targeted = targeted
        self.loss = loss
        self.kappa = None if kappa is None or math.isinf(kappa) else float(kappa)
        what = "target" if targeted else "away from label"
        cap = "" if self.kappa is None else f", kappa={self.kappa:g}"
        self.name = f"{loss}({what}{cap})"

    def __call__(self, ctx: Context) -> torch.Tensor:
        logits = ctx.acts[LOGITS]
        if logits.shape[0] != self.labels.shape[0]:
            raise UnifiedVizError(
                f"the class objective holds {self.labels.shape[0]} labels but the batch has {logits.shape[0]} images"
            )
        y = self.labels.to(logits.device)
        z_y = logits.gather(1, y[:, None]).squeeze(1)
        if self.loss == "ce":
            lse = torch.logsumexp(logits, dim=1)
            score = z_y - lse if self.targeted else lse - z_y
        else:
            others = logits.masked_fill(F.one_hot(y, logits.shape[1]).bool(), float("-inf")).amax(1)
            score = z_y - others if self.targeted else others - z_y
        if self.kappa is not None:
            score = score.clamp(max=self.kappa)
        return score


def class_loss(labels, *, targeted: bool = False, loss: str = "ce", kappa: float | None = None) -> ClassLoss:
    """See `ClassLoss`."""
    return ClassLoss(labels, targeted=targeted, loss=loss, kappa=kappa)


class FeatureMatch(Objective):
    """Minus the relative squared distance between each image's features at `layer` and a target's.

    `target` is `[1, ...]` (one target for every image) or `[N, ...]` (one each), captured from
    the same canonical layout (e.g. `adapter.capture(target_images, [layer])[layer]`).
    The score is `-||f(x) - f_t||^2 / ||f_t||^2`: 0 means a perfect match, -1 the distance
    of an all-zero feature map.
    """

    def __init__(self, layer: str, target: torch.Tensor) -> None:
        self.layer = layer
        self.layers = (layer,)
        self.target = target.detach()
        self.scale = self.target.flatten(1).pow(2).sum(1).clamp(min=1e-12)
        self.name = f"feature_match({layer})"

    def __call__(self, ctx: Context) -> torch.Tensor:
        f = ctx.acts[self.layer]
        t = self.target.to(f.device)
        if t.shape[1:] != f.shape[1:] or t.shape[0] not in (1, f.shape[0]):
            raise UnifiedVizError(
                f"target features {tuple(t.shape)} do not fit the features {tuple(f.shape)} at {self.layer!r}"
            )
        return -(f - t).flatten(1).pow(2).sum(1) / self.scale.to(f.device)


def feature_match(layer: str, target: torch.Tensor) -> FeatureMatch:
    """See `FeatureMatch`."""
    return FeatureMatch(layer, target)


class WithLogits(Objective):
    """An objective that also has the engine capture the logits (for a per-step success check).

    Costs no extra pass: a class term reads the logits anyway, and an objective on an
    intermediate layer then simply runs the rest of the network.
    """

    def __init__(self, inner: Objective) -> None:
        self.inner = inner
        self.layers = tuple(dict.fromkeys((*inner.layers, LOGITS)))
        self.name = inner.name

    def __call__(self, ctx: Context) -> torch.Tensor:
        return self.inner(ctx)


__all__ = ["ClassLoss", "class_loss", "FeatureMatch", "feature_match", "WithLogits", "LOSSES"]
