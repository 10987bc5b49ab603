"""The planted-concept benchmark: scikit-learn digits with a pasted checkerboard patch (the
concept, with its mask) and a bright frame (the spurious feature), correlated in the training
split and in the probe's concept set, independent in the test split.

`planted_images(n, concept=..., spurious=..., seed=...)` draws images with a chosen concept /
spurious pattern; `train_planted_model(...)` trains a small CNN to say "patch present", seeing
the frame on 90% of positives and 10% of negatives, so the concept matters for its label.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

SIZE = 32
PATCH = 8  # checkerboard side in pixels (2-pixel cells)
FRAME = 2  # spurious frame width in pixels
FRAME_VALUE = 0.7


def _digits(split: str) -> torch.Tensor:
    from ..datasets import load_digits_images

    return load_digits_images(split, size=SIZE)[0]


def checkerboard(side: int = PATCH, cell: int = 2) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return (((yy // cell) + (xx // cell)) % 2).float()


def planted_images(n: int, *, concept, spurious, split: str = "train", seed: int = 0):
    """(images [n, 1, 32, 32] in [0, 1], masks [n, 32, 32], concept flags [n], spurious flags [n]).

    `concept` / `spurious`: a bool for all images, or a probability per image."""
    g = np.random.default_rng(seed)
    base = _digits(split)
    x = base[torch.as_tensor(g.integers(0, len(base), n))].clone()
    masks = torch.zeros(n, SIZE, SIZE)
    c = g.random(n) < (float(concept) if not isinstance(concept, bool) else (1.0 if concept else 0.0))
    s = g.random(n) < (float(spurious) if not isinstance(spurious, bool) else (1.0 if spurious else 0.0))
    patch = checkerboard()
    for i in range(n):
        if s[i]:
            x[i, 0, :FRAME, :] = FRAME_VALUE
            x[i, 0, -FRAME:, :] = FRAME_VALUE
            x[i, 0, :, :FRAME] = FRAME_VALUE
            x[i, 0, :, -FRAME:] = FRAME_VALUE
        if c[i]:
            lo, hi = FRAME + 1, SIZE - FRAME - 1 - PATCH
            y0, x0 = int(g.integers(lo, hi + 1)), int(g.integers(lo, hi + 1))
            x[i, 0, y0:y0 + PATCH, x0:x0 + PATCH] = patch
            masks[i, y0:y0 + PATCH, x0:x0 + PATCH] = 1
    return x, masks, torch.as_tensor(c), torch.as_tensor(s)


def planted_net() -> nn.Sequential:
    """A small CNN: 8 -> 16 -> 32 channels at 32, 16, 8 pixels, global average pool, 2 logits."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 8, 3, padding=1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(8, 16, 3, padding=1)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("conv3", nn.Conv2d(16, 32, 3, padding=1)), ("relu3", nn.ReLU()),
        ("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(32, 2)),
    ]))


def train_planted_model(*, n: int = 1200, epochs: int = 6, seed: int = 0):
    """A `VizModel` trained on the planted task (label: patch present); returns (model, test accuracy)."""
    from ..models.spec import InputSpec, VizModel

    torch.manual_seed(seed)
    half = n // 2
    xp, _, _, _ = planted_images(half, concept=True, spurious=0.9, split="train", seed=seed)
    xn, _, _, _ = planted_images(half, concept=False, spurious=0.1, split="train", seed=seed + 1)
    x = torch.cat([xp, xn])
    y = torch.cat([torch.ones(half), torch.zeros(half)]).long()
    net = planted_net()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            loss = nn.functional.cross_entropy(net((x[idx] - 0.3) / 0.3), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    model = VizModel(net, InputSpec(size=(SIZE, SIZE), channels=1, mean=(0.3,), std=(0.3,)),
                     source="planted", class_names=["no patch", "patch"])
    xt, _, ct, _ = planted_images(400, concept=0.5, spurious=0.5, split="test", seed=seed + 2)
    with torch.no_grad():
        acc = float((model(xt).argmax(1) == ct.long()).float().mean())
    return model, acc


__all__ = ["checkerboard", "planted_images", "planted_net", "train_planted_model"]
