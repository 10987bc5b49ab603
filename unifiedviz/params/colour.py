"""Lucid's ImageNet colour decorrelation: optimise in a space where RGB channels are uncorrelated.

The matrix is the square root of ImageNet's RGB covariance (from an SVD), scaled so its
largest column has unit norm; `x_rgb = M @ x_decorrelated` per pixel.
"""
from __future__ import annotations

import torch

_SQRT_COLOUR_COV = torch.tensor(
    [[0.26, 0.09, 0.02],
     [0.27, 0.00, -0.05],
     [0.27, -0.09, 0.03]]
)
COLOUR_MATRIX = _SQRT_COLOUR_COV / _SQRT_COLOUR_COV.norm(dim=0).max()


def decorrelated_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """Mix the 3 channels of `[N, 3, *size]` from the decorrelated space into RGB."""
    # A batched matmul on the flattened image: no permute copies (the einsum made them, forward and backward).
    return (COLOUR_MATRIX.to(x) @ x.flatten(2)).view(x.shape)


def rgb_to_decorrelated(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `decorrelated_to_rgb`."""
    return torch.einsum("ij,nj...->ni...", torch.linalg.inv(COLOUR_MATRIX).to(x), x)
