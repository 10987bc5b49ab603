"""Concept localisation by spatial linear attribution: the CAV's contribution at each position.

For a conv layer the map at (y, x) is `a[:, y, x] . w`, the share of the probe's pooled score
each position carries (the pooled score is their mean plus the bias); for a token layer the
same per patch token, laid out on the patch grid. Maps are upsampled bilinearly to the input.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .cav import Acts


def localisation_maps(acts: Acts, direction, size: tuple[int, int]) -> torch.Tensor:
    """[N, H, W] at the input `size`: every position's features projected on `direction`."""
    v = torch.as_tensor(getattr(direction, "direction", direction), dtype=torch.float64)
    m = acts.position_map(v).float()  # [N, h, w]
    return F.interpolate(m[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


__all__ = ["localisation_maps"]
