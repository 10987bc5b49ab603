"""Measures of dreamed sequences: class probability, high-frequency energy, nearest-real distances.

All distances are computed on the data's own values (z-normalised for UCR sets), on whatever
tensors are passed: callers convert model inputs with `from_unit_range` first.
"""
from __future__ import annotations

import math

import torch

#: Default cut-off for `hf_energy`, in cycles per time step (Nyquist is 0.5): periods under 10 steps.
HF_CUTOFF = 0.1


@torch.no_grad()
def class_probabilities(model, x: torch.Tensor) -> torch.Tensor:
    """Softmax of the model's logits for `[N, C, L]` inputs in [0, 1], `[N, K]`."""
    return torch.softmax(model(x), dim=-1).cpu()


def hf_energy(x: torch.Tensor, cutoff: float = HF_CUTOFF) -> torch.Tensor:
    """Share of each sequence's spectral power (DC removed) above `cutoff` cycles/step, `[N]`, in [0, 1].

    Channels are pooled. 0 for a sequence with power only below the cut-off; white noise gives
    about `1 - 2 * cutoff`.
    """
    x = x.detach().double()
    x = x - x.mean(-1, keepdim=True)
    power = torch.fft.rfft(x, dim=-1).abs().pow(2)
    freqs = torch.fft.rfftfreq(x.shape[-1])
    total = power.sum((-2, -1)).clamp(min=1e-30)
    return (power[..., freqs > cutoff].sum((-2, -1)) / total).float()


def dtw(a: torch.Tensor, b: torch.Tensor, window: int | None = None) -> torch.Tensor:
    """Dynamic-time-warping distance between each `a[i]` and `b[i]` (`[P, C, L]` each), `[P]`.

    Squared Euclidean local cost over channels, the steps (1,0), (0,1), (1,1), optional
    Sakoe-Chiba `window`; returns the square root of the cheapest path's cost (so equal
    sequences give 0 and DTW <= Euclidean distance).
    """
    a, b = a.double(), b.double()
    p, la, lb = a.shape[0], a.shape[-1], b.shape[-1]
    cost = (a.unsqueeze(-1) - b.unsqueeze(-2)).pow(2).sum(1)  # [P, La, Lb]
    if window is not None:
        i, j = torch.meshgrid(torch.arange(la), torch.arange(lb), indexing="ij")
        cost = cost.masked_fill((i - j).abs() > max(window, abs(la - lb)), math.inf)
    d = torch.full((p, la + 1, lb + 1), math.inf, dtype=torch.float64)
    d[:, 0, 0] = 0.0
    for s in range(2, la + lb + 1):  # anti-diagonals i + j = s, 1-based
        i = torch.arange(max(1, s - lb), min(la, s - 1) + 1)
        j = s - i
        best = torch.minimum(torch.minimum(d[:, i - 1, j], d[:, i, j - 1]), d[:, i - 1, j - 1])
        d[:, i, j] = cost[:, i - 1, j - 1] + best
    return d[:, la, lb].sqrt().float()


def pairwise(x: torch.Tensor, real: torch.Tensor, metric: str = "euclidean", window: int | None = None) -> torch.Tensor:
    """Distances `[N, M]` between sequences `x` `[N, C, L]` and `real` `[M, C, L]`."""
    if metric == "euclidean":
        return torch.cdist(x.double().flatten(1), real.double().flatten(1)).float()
    if metric == "dtw":
        n, m = len(x), len(real)
        i, j = torch.meshgrid(torch.arange(n), torch.arange(m), indexing="ij")
        return dtw_pairs(x, real, i.flatten(), j.flatten(), window).view(n, m)
    from ..errors import UnifiedVizError

    raise UnifiedVizError(f"unknown distance {metric!r}: use 'euclidean' or 'dtw'")


def nearest_real(x: torch.Tensor, real: torch.Tensor, labels: torch.Tensor, classes, metric: str = "euclidean",
                 window: int | None = None) -> torch.Tensor:
    """Each `x[i]`'s distance to the nearest real sequence of class `classes[i]` (None: any class), `[N]`."""
    d = pairwise(x, real, metric, window)
    out = []
    for i, c in enumerate(classes):
        row = d[i] if c is None else d[i][labels == c]
        out.append(row.min())
    return torch.stack(out)


def real_to_real(real: torch.Tensor, labels: torch.Tensor, metric: str = "euclidean",
                 window: int | None = None) -> torch.Tensor:
    """Each real sequence's distance to the nearest *other* real sequence of its class, `[M]` (the baseline)."""
    same = labels[:, None] == labels[None, :]
    same.fill_diagonal_(False)
    if metric == "dtw":  # only same-class pairs, each once
        i, j = torch.nonzero(torch.triu(same, 1), as_tuple=True)
        d = torch.full(same.shape, math.inf)
        d[i, j] = d[j, i] = dtw_pairs(real, real, i, j, window)
    else:
        d = pairwise(real, real, metric, window)
    return d.masked_fill(~same, math.inf).min(1).values


def dtw_pairs(a: torch.Tensor, b: torch.Tensor, i: torch.Tensor, j: torch.Tensor, window: int | None = None,
              chunk: int = 256) -> torch.Tensor:
    """DTW between `a[i[p]]` and `b[j[p]]` for every p, `chunk` pairs at a time (memory: chunk * L^2 doubles)."""
    return torch.cat([dtw(a[i[s:s + chunk]], b[j[s:s + chunk]], window) for s in range(0, len(i), chunk)]) \
        if len(i) else torch.zeros(0)


__all__ = ["HF_CUTOFF", "class_probabilities", "dtw", "dtw_pairs", "hf_energy", "nearest_real", "pairwise", "real_to_real"]
