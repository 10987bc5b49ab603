"""`diabetes-mlp`: a small MLP on scikit-learn's diabetes data (442 patients, 10 features).

A model that takes `[B, F]` vectors: input i is feature i min-max scaled to [0, 1] over the
whole data set (`DIABETES_MIN` / `DIABETES_MAX`; the model standardises them itself with the
spec's per-feature mean/std), output `[B, 1]` the predicted disease progression one year
later, in standard deviations of the train split (`class=0`, or `out:neuron=0`). Trained
offline by scripts/train_diabetes.py (test R^2 in the weights' metadata).
"""
from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from ..spec import InputSpec, VizModel
from ._weights import load_builtin_weights

NAME = "diabetes-mlp"
FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
TEST_FRACTION = 0.2
SPLIT_SEED = 0


@lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes()
    x = bunch.data.astype(np.float64)
    lo, hi = x.min(0), x.max(0)
    return ((x - lo) / (hi - lo)).astype(np.float32), bunch.target.astype(np.float32)


def diabetes_split() -> tuple[np.ndarray, np.ndarray]:
    """(train_indices, test_indices): 20% test, numpy's frozen legacy RandomState(0)."""
    n = len(_arrays()[1])
    perm = np.random.RandomState(SPLIT_SEED).permutation(n)
    k = int(round(n * TEST_FRACTION))
    return np.sort(perm[k:]), np.sort(perm[:k])


def load_diabetes_data(split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """Features in [0, 1] `[N, 10]` and the target standardised with the train split's mean/std `[N]`."""
    x, y = _arrays()
    train, test = diabetes_split()
    mu, sd = y[train].mean(), y[train].std()
    idx = {"train": train, "test": test, "all": np.arange(len(y))}[split]
    return torch.from_numpy(x[idx].copy()), torch.from_numpy(((y[idx] - mu) / sd).astype(np.float32))


def _spec() -> InputSpec:
    x, _ = _arrays()
    train, _ = diabetes_split()
    return InputSpec(size=(), channels=len(FEATURES), mean=tuple(float(v) for v in x[train].mean(0)),
                     std=tuple(float(v) for v in x[train].std(0)))


def diabetes_mlp_net(features: int = len(FEATURES), hidden: int = 8) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("fc1", nn.Linear(features, hidden)),
        ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(hidden, hidden)),
        ("relu2", nn.ReLU()),
        ("out", nn.Linear(hidden, 1)),
    ]))


def diabetes_mlp(*, load_weights: bool = True) -> VizModel:
    """The diabetes MLP in eval mode; with `load_weights`, the shipped trained weights."""
    net = diabetes_mlp_net()
    if load_weights:
        load_builtin_weights(net, NAME)
    return VizModel(net, _spec(), source=f"builtin:{NAME}", class_names=["progression"]).eval()


def r2_score(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float(1 - ((pred - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())
