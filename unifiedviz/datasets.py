"""Small image data that ships offline: scikit-learn's 8x8 handwritten digits.

Everyone in the toolkit (built-in models, attacks, superposition, tests) uses the same fixed
train/test split, so accuracies measured anywhere are comparable.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from .errors import UnifiedVizError

DIGITS_CLASSES = [str(d) for d in range(10)]
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
_SPLITS = ("train", "test", "all")


@lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (bunch.images / 16.0).astype(np.float32)  # pixel counts 0..16 -> [0, 1]
    labels = bunch.target.astype(np.int64)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def digits_split() -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train_indices, test_indices) into the 1797 digits: stratified, 20% test, seed 0.

    Uses numpy's legacy `RandomState`, whose stream is frozen across numpy versions, so the
    split never changes under anyone's feet.
    """
    train_idx, test_idx = _digits_split()
    return train_idx.copy(), test_idx.copy()


@lru_cache(maxsize=1)
def _digits_split() -> tuple[np.ndarray, np.ndarray]:
    _, labels = _digits_arrays()
    rng = np.random.RandomState(DIGITS_SPLIT_SEED)
    test = []
    for c in range(len(DIGITS_CLASSES)):
        members = np.flatnonzero(labels == c)
        n_test = int(round(DIGITS_TEST_FRACTION * len(members)))
        test.append(rng.permutation(members)[:n_test])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    test_idx.flags.writeable = False
    train_idx.flags.writeable = False
    return train_idx, test_idx


def load_digits_images(split: str = "test", size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Digits as (images float32 [N, 1, size, size] in [0, 1], labels int64 [N]).

    The 8x8 originals are upsampled bilinearly to `size` (a convex combination of pixels,
    so values stay in [0, 1]).
    """
    if split not in _SPLITS:
        raise UnifiedVizError(f"unknown digits split {split!r}; use one of {', '.join(_SPLITS)}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise UnifiedVizError(f"digits image size must be a positive integer, got {size!r}")
    images, labels = _digits_arrays()
    if split != "all":
        train_idx, test_idx = _digits_split()
        idx = train_idx if split == "train" else test_idx
        images, labels = images[idx], labels[idx]
    x = torch.tensor(images).unsqueeze(1)
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.clamp_(0.0, 1.0), torch.tensor(labels)  # clamp only guards float rounding
