"""Local sensitivity of any unit to its input: gradient methods and occlusion.

Maps are per input position: `[B, H, W]` for images (channels combined as each method says),
`[B, F]` for vector models.

  saliency       |d unit / d x|, max over channels (Simonyan et al.)
  grad_x_input   (d unit / d x) * x, summed over channels (signed)
  smoothgrad     mean |gradient| over `samples` noisy copies (noise std `noise` * input range)
  integrated     integrated gradients from a baseline (0: black), `steps` midpoint-rule points;
                 the map sums to unit(x) - unit(baseline) up to the quadrature error
  occlusion      drop of the unit when a `window` square (stride `stride`) is set to `baseline`,
                 averaged over the windows covering each pixel
"""
from __future__ import annotations

import torch

from ..adapters import Adapter
from ..errors import UnifiedVizError
from .base import EXPLAINERS, input_gradient, is_vector, per_channel_sum, unit_values


def _channel_max(t: torch.Tensor, adapter: Adapter) -> torch.Tensor:
    return t if is_vector(adapter) else t.amax(1)


@EXPLAINERS.register("saliency", help="|gradient| of the unit, max over channels")
def saliency(adapter: Adapter, unit: str, x: torch.Tensor) -> torch.Tensor:
    grad, _ = input_gradient(adapter, unit, x)
    return _channel_max(grad.abs(), adapter)


@EXPLAINERS.register("grad_x_input", help="gradient x input, summed over channels")
def grad_x_input(adapter: Adapter, unit: str, x: torch.Tensor) -> torch.Tensor:
    grad, _ = input_gradient(adapter, unit, x)
    return per_channel_sum(grad * x, adapter)


@EXPLAINERS.register("smoothgrad", help="mean |gradient| over noisy copies of the input")
def smoothgrad(adapter: Adapter, unit: str, x: torch.Tensor, *, samples: int = 16, noise: float = 0.15,
               seed: int = 0) -> torch.Tensor:
    if samples < 1:
        raise UnifiedVizError(f"smoothgrad samples must be at least 1, got {samples}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    total = torch.zeros_like(x)
    for _ in range(samples):
        eps = torch.randn(x.shape, generator=gen).to(x.device) * noise
        grad, _ = input_gradient(adapter, unit, x + eps)
        total += grad.abs()
    return _channel_max(total / samples, adapter)


@EXPLAINERS.register("integrated", help="integrated gradients from a black (zero) baseline")
def integrated_gradients(adapter: Adapter, unit: str, x: torch.Tensor, *, steps: int = 32,
                         baseline: float | torch.Tensor = 0.0) -> torch.Tensor:
    if steps < 1:
        raise UnifiedVizError(f"integrated gradient steps must be at least 1, got {steps}")
    base = torch.as_tensor(baseline, dtype=x.dtype, device=x.device).expand_as(x)
    total = torch.zeros_like(x)
    for k in range(steps):
        alpha = (k + 0.5) / steps
        grad, _ = input_gradient(adapter, unit, base + alpha * (x - base))
        total += grad
    return per_channel_sum(total / steps * (x - base), adapter)


@EXPLAINERS.register("occlusion", help="drop of the unit when a square around each pixel is blanked")
def occlusion(adapter: Adapter, unit: str, x: torch.Tensor, *, window: int | None = None, stride: int | None = None,
              baseline: float = 0.0, batch_size: int = 256) -> torch.Tensor:
    if is_vector(adapter):  # one feature at a time
        b, nf = x.shape
        ref = unit_values(adapter, unit, x)
        occluded = x.unsqueeze(1).repeat(1, nf, 1)
        idx = torch.arange(nf)
        occluded[:, idx, idx] = baseline
        vals = unit_values(adapter, unit, occluded.view(b * nf, nf), batch_size=batch_size).view(b, nf)
        return ref.unsqueeze(1) - vals
    h, w = x.shape[-2:]
    window = window or max(1, min(h, w) // 8)
    stride = stride or max(1, window // 2)
    if window > min(h, w):
        raise UnifiedVizError(f"occlusion window {window} is larger than the {h}x{w} input")
    ys = list(range(0, h - window + 1, stride))
    xs = list(range(0, w - window + 1, stride))
    if ys[-1] != h - window:
        ys.append(h - window)
    if xs[-1] != w - window:
        xs.append(w - window)
    maps = []
    ref = unit_values(adapter, unit, x)
    for i, img in enumerate(x):
        batch = img.unsqueeze(0).repeat(len(ys) * len(xs), 1, 1, 1)
        boxes = [(y, xx) for y in ys for xx in xs]
        for j, (y, xx) in enumerate(boxes):
            batch[j, :, y:y + window, xx:xx + window] = baseline
        drop = ref[i] - unit_values(adapter, unit, batch, batch_size=batch_size)
        total = torch.zeros(h, w, dtype=x.dtype, device=x.device)
        count = torch.zeros(h, w, dtype=x.dtype, device=x.device)
        for j, (y, xx) in enumerate(boxes):
            total[y:y + window, xx:xx + window] += drop[j]
            count[y:y + window, xx:xx + window] += 1
        maps.append(total / count.clamp_min(1))
    return torch.stack(maps)


occlusion.gradient_free = True  # forward passes only
