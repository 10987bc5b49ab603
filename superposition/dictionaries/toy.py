"""A toy model of superposition (Elhage et al. 2022): n sparse features stored in d < n dimensions.

`ToyFeatures(n, d)` draws unit feature directions F [n, d] and streams rows x = s @ F with s
sparse and non-negative, the ground truth an SAE should recover and the neurons (the d axes)
cannot: the test and `bench/dictionary_toy.py` use it.
"""
from __future__ import annotations

import torch
from torch.utils.data import IterableDataset


class ToyFeatures(IterableDataset):
    def __init__(self, n_features: int = 32, dim: int = 16, *, density: float = 0.06, seed: int = 0,
                 batch: int = 256) -> None:
        g = torch.Generator().manual_seed(seed)
        f = torch.randn(n_features, dim, generator=g)
        self.features = f / f.norm(dim=1, keepdim=True)
        self.g, self.batch, self.density = g, batch, density

    def rows(self, m: int) -> torch.Tensor:
        n = self.features.shape[0]
        s = (torch.rand(m, n, generator=self.g) < self.density) * torch.rand(m, n, generator=self.g)
        return s @ self.features

    def __iter__(self):
        while True:
            yield self.rows(self.batch)

    def sample(self, n: int) -> torch.Tensor:
        return self.rows(n)


__all__ = ["ToyFeatures"]
