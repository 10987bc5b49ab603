"""The strategies' arithmetic on tensors: uncertainty scores, BALD, k-centre greedy, MC dropout."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


def least_confidence(probs: torch.Tensor) -> torch.Tensor:
    """1 - the top class probability (the paper's strategy)."""
    return 1.0 - probs.max(dim=1).values


def margin(probs: torch.Tensor) -> torch.Tensor:
    """Minus the gap between the two most probable classes."""
    top2 = probs.topk(2, dim=1).values
    return top2[:, 1] - top2[:, 0]


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy of the predicted distribution (0 log 0 = 0)."""
    return -torch.special.xlogy(probs, probs).sum(dim=1)


def bald(mc_probs: torch.Tensor) -> torch.Tensor:
    """Mutual information between prediction and weights from [samples, N, K] MC-dropout probabilities."""
    return entropy(mc_probs.mean(0)) - torch.stack([entropy(p) for p in mc_probs]).mean(0)


def k_center_greedy(pool: torch.Tensor, labeled: torch.Tensor, k: int, *, chunk: int = 4096) -> np.ndarray:
    """Core-set selection (Sener & Savarese 2018): repeatedly take the pool point farthest from
    everything chosen so far (labelled points included)."""
    nearest = torch.full((len(pool),), torch.inf)
    for s in range(0, len(labeled), chunk):
        nearest = torch.minimum(nearest, torch.cdist(pool, labeled[s : s + chunk]).min(1).values)
    picks = []
    for _ in range(k):
        i = int(torch.argmax(nearest))  # first maximum: ties go to the lower position
        picks.append(i)
        nearest = torch.minimum(nearest, torch.cdist(pool, pool[i : i + 1])[:, 0])
        nearest[i] = -1.0  # never again
    return np.asarray(picks, dtype=np.int64)


@torch.no_grad()
def mc_dropout_probs(model: nn.Module, loader, samples: int, *, device, progress: bool = False) -> torch.Tensor:
    """[samples, N, K] softmax outputs with dropout active and everything else (BatchNorm) in eval mode."""
    modes = [(m, m.training) for m in model.modules()]
    model.to(device).eval()
    for m in model.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train()
    try:
        out = [
            torch.stack([model(x.to(device)).float().softmax(1).cpu() for _ in range(samples)])
            for x, _ in tqdm(loader, desc="bald", leave=False, disable=not progress)
        ]
    finally:
        for m, training in modes:
            m.training = training
    return torch.cat(out, dim=1)
