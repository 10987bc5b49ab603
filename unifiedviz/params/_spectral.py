"""Frequency-domain helpers shared by the Fourier and MACO parameterisations.

Spectra use `torch.fft.rfftn` layout over the spatial axes (the last axis is halved) and the
orthonormal norm, so a white-noise spectrum gives white noise of the same scale in space.
"""
from __future__ import annotations

import torch


def rfft_shape(size: tuple[int, ...]) -> tuple[int, ...]:
    return (*size[:-1], size[-1] // 2 + 1)


def spatial_dims(size: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of `[N, C, *size]` that hold space/time."""
    return tuple(range(-len(size), 0))


def radial_frequency(size: tuple[int, ...]) -> torch.Tensor:
    """|f| in cycles per pixel for every rfft bin."""
    axes = [torch.fft.fftfreq(s) for s in size[:-1]] + [torch.fft.rfftfreq(size[-1])]
    grids = torch.meshgrid(*axes, indexing="ij")
    return torch.sqrt(sum(g**2 for g in grids))


def power_law(size: tuple[int, ...], decay_power: float) -> torch.Tensor:
    """1/|f|^decay_power, capped at the lowest non-zero frequency so DC stays finite (Lucid)."""
    return radial_frequency(size).clamp(min=1.0 / max(size)) ** -decay_power


def hermitian_consistent(t: torch.Tensor, size: tuple[int, ...], *, odd: bool) -> torch.Tensor:
    """Make an rfft-layout tensor agree with a real signal where rfft stores a bin twice.

    On the last axis, bin 0 (and L/2 for even L) is its own mirror, so there a real signal's
    spectrum satisfies X[k] = conj(X[-k]) along the other axes: magnitudes are even
    (`odd=False`), phases odd (`odd=True`). Elsewhere `t` is returned unchanged. Without
    this, `irfftn` silently averages the mismatch away and the magnitude would drift.
    """
    lead = tuple(range(t.dim() - len(size), t.dim() - 1))
    mirror = t.flip(lead).roll((1,) * len(lead), lead) if lead else t  # mirror[k] = t[-k]
    paired = (t - mirror) / 2 if odd else (t + mirror) / 2
    self_mirrored = torch.zeros(t.shape[-1], dtype=torch.bool, device=t.device)
    self_mirrored[0] = True
    if size[-1] % 2 == 0:
        self_mirrored[-1] = True
    return torch.where(self_mirrored, paired, t)


def to_spatial(spectrum: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    return torch.fft.irfftn(spectrum, s=size, dim=spatial_dims(size), norm="ortho")


def amplitude(x: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    """|rfftn(x)| over the spatial axes, in the same layout and norm as `to_spatial` expects."""
    return torch.fft.rfftn(x, dim=spatial_dims(size), norm="ortho").abs()
