"""Concept-alignment metrics. Each is a small pure function with a hand-checkable definition."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from ..errors import UnifiedVizError


def accuracy(pred, labels) -> float:
    """Fraction of `pred` equal to `labels` (probe accuracy on a held-out split)."""
    pred, labels = np.asarray(pred).ravel(), np.asarray(labels).ravel()
    if pred.shape != labels.shape or not len(pred):
        raise UnifiedVizError(f"accuracy needs as many predictions as labels, got {len(pred)} and {len(labels)}")
    return float((pred == labels).mean())


def hard_accuracy(pred_hard_pos, pred_hard_neg) -> float:
    """Accuracy on hard cases only: hard positives (concept without the spurious feature, label 1)
    and hard negatives (spurious feature without the concept, label 0), pooled."""
    p, n = np.asarray(pred_hard_pos).ravel(), np.asarray(pred_hard_neg).ravel()
    return accuracy(np.concatenate([p, n]), np.concatenate([np.ones(len(p)), np.zeros(len(n))]))


def _normalise(maps: torch.Tensor) -> torch.Tensor:
    """Per map, min-max to [0, 1] (a constant map becomes all zeros)."""
    flat = maps.flatten(1).double()
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).reshape(maps.shape)


def iou(maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> np.ndarray:
    """[N]: IoU of each map, min-max normalised and cut at `threshold`, with its binary mask."""
    a = _normalise(maps) >= threshold
    b = masks.reshape(a.shape) > 0.5
    inter = (a & b).flatten(1).sum(1).double()
    union = (a | b).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).numpy()


def pointing_game(maps: torch.Tensor, masks: torch.Tensor) -> np.ndarray:
    """[N]: 1 where the map's maximum lies inside the mask, else 0."""
    idx = maps.flatten(1).argmax(1)
    return (masks.reshape(len(maps), -1) > 0.5).gather(1, idx[:, None])[:, 0].double().numpy()


def segmentation_score(maps: torch.Tensor, masks: torch.Tensor, threshold: float = 0.5) -> dict:
    """Mean IoU at `threshold` and pointing-game hit rate of localisation maps against masks."""
    if maps.shape[-2:] != masks.shape[-2:]:
        raise UnifiedVizError(f"maps are {tuple(maps.shape[-2:])} but masks {tuple(masks.shape[-2:])}: "
                              "upsample the maps to the mask size first")
    return {"iou": float(iou(maps, masks, threshold).mean()), "threshold": threshold,
            "pointing_game": float(pointing_game(maps, masks).mean())}


def cosine(a, b) -> float:
    """Cosine similarity of two directions (Probes or vectors)."""
    a = np.asarray(getattr(a, "direction", a), dtype=np.float64).ravel()
    b = np.asarray(getattr(b, "direction", b), dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise UnifiedVizError(f"cosine of vectors of width {a.size} and {b.size}: compare CAVs of one layer")
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def hflip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return x.flip(-1)


def crop(x: torch.Tensor, g: torch.Generator, keep: float = 0.8) -> torch.Tensor:
    """A random crop of `keep` of each side, resized back."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ch, cw = max(1, round(h * keep)), max(1, round(w * keep))
    y0 = int(torch.randint(0, h - ch + 1, (1,), generator=g))
    x0 = int(torch.randint(0, w - cw + 1, (1,), generator=g))
    return F.interpolate(x[..., y0:y0 + ch, x0:x0 + cw], size=(h, w), mode="bilinear", align_corners=False)


def jitter(x: torch.Tensor, g: torch.Generator, strength: float = 0.2) -> torch.Tensor:
    """Brightness and contrast scaled by factors in [1 - strength, 1 + strength]."""
    b, c = (1 + strength * (2 * torch.rand(2, generator=g) - 1)).tolist()
    mean = x.mean((-3, -2, -1), keepdim=True)
    return ((x - mean) * c + mean * b).clamp(0, 1)


AUGMENTATIONS: dict[str, Callable] = {"flip": hflip, "crop": crop, "jitter": jitter}


def augmentation_robustness(predict: Callable[[torch.Tensor], np.ndarray], images: torch.Tensor, *,
                            augmentations=("flip", "crop", "jitter"), seed: int = 0) -> dict:
    """Per augmentation, the fraction of images whose probe prediction is unchanged by it, and their mean.

    `predict(images) -> [N] 0/1` runs the model and the probe."""
    base = np.asarray(predict(images))
    out = {}
    for name in augmentations:
        g = torch.Generator().manual_seed(seed)
        aug = torch.stack([AUGMENTATIONS[name](img[None], g)[0] for img in images])
        out[name] = float((np.asarray(predict(aug)) == base).mean())
    out["mean"] = float(np.mean([out[a] for a in augmentations]))
    return out


__all__ = [
    "AUGMENTATIONS",
    "accuracy",
    "augmentation_robustness",
    "cosine",
    "hard_accuracy",
    "iou",
    "pointing_game",
    "segmentation_score",
]
