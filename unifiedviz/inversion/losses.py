"""The network-inversion losses (Suhail, "Network Inversion and Its Applications"), each a small
pure function of a batch: logits or features [B, ...] or images [B, C, H, W] -> a scalar."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the classifier's logits to the conditioning labels (mean over the batch)."""
    return F.cross_entropy(logits, labels)


def _unit_rows(features: torch.Tensor) -> torch.Tensor:
    return F.normalize(features.flatten(1).float(), dim=1, eps=1e-8)


def cosine_diversity(features: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cosine similarity between the features of distinct samples of the batch (lower = more
    diverse); with `labels`, only pairs that share a label count. 0 when there is no such pair."""
    f = _unit_rows(features)
    sim = f @ f.T
    b = f.shape[0]
    mask = ~torch.eye(b, dtype=torch.bool, device=f.device)
    if labels is not None:
        mask &= labels[:, None] == labels[None, :]
    if not mask.any():
        return sim.sum() * 0.0
    return sim[mask].mean()


def orthogonality(features: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between the Gram matrix of the L2-normalised features and the
    identity: 0 when the samples' features are mutually orthogonal."""
    f = _unit_rows(features)
    gram = f @ f.T
    eye = torch.eye(f.shape[0], dtype=gram.dtype, device=gram.device)
    return ((gram - eye) ** 2).mean()


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of vertical neighbours plus that of horizontal neighbours."""
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def pixel_range(x: torch.Tensor, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Mean squared distance of each pixel to the interval [low, high] (0 inside it)."""
    return (F.relu(x - high) ** 2 + F.relu(low - x) ** 2).mean()
