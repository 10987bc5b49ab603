"""The CAM family through the Adapter's hooks: Grad-CAM, Grad-CAM++, Score-CAM, and for ViTs
the gradient-weighted attention rollout.

The CAM layer is any conv layer (`[B, C, h, w]`, channels-last layers included: the Adapter
hands back the canonical layout) or token layer (`[B, T, D]`: the prefix tokens - CLS,
distillation, registers - are dropped and the patch tokens reshaped to their grid). The
target is any unit address; `class=k` is the usual choice. As in pytorch-grad-cam, a map is
ReLU'd, scaled to [0, 1] per image, resized (bilinear) to the input and scaled again, so
Grad-CAM equals pytorch-grad-cam's to float precision on the same model, layer and target.

On a ViT, Grad-CAM without a layer is its transformer form (`gradrollout`, Chefer et al.,
"Generic Attention-model Explainability", ICCV 2021): the attention maps are the activations,
weighted element-wise by their gradients, positive part, mean over heads, rolled out over the
blocks. Grad-CAM's own recipe - one weight per channel, the gradient averaged over positions -
assumes a channel means the same thing everywhere and the head pools all positions alike. A
ViT's classifier reads the CLS token, which attends to a few patch tokens: the gradient sits on
those tokens, the average throws that away, and what is left (mean gradient . token) follows
the token's content. On digits-vit that map prefers the ink-free background and deletes slower
than random maps (docs/explain.md); `--layer` a token layer still gives the classic recipe.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..adapters import (
    LOGITS,
    Adapter,
    AttentionLayout,
    ConvLayout,
    TokensLayout,
    VectorLayout,
)
from ..errors import UnifiedVizError
from .base import EXPLAINERS, is_vector, unit_scorer, unit_values


def _layers_up_to(adapter: Adapter, unit: str | list[str] | None):
    """The model's layers (one entry per module), cut after `unit`'s layer."""
    infos = adapter.layers(each_call=False)
    if unit is not None:
        target = adapter.resolve(unit if isinstance(unit, str) else unit[0]).target
        names = [i.name for i in infos]
        if target != LOGITS and target in names:
            infos = infos[:names.index(target) + 1]
    return infos


def default_cam_layer(adapter: Adapter, unit: str | None = None) -> str:
    """The last conv or token layer that fires (the usual Grad-CAM choice), at or before `unit`'s layer."""
    if is_vector(adapter):
        raise UnifiedVizError("CAM methods need an image model with conv or token layers")
    infos = _layers_up_to(adapter, unit)
    found = [i.name for i in infos
             if i.name != LOGITS and i.calls == 1 and isinstance(i.layout, (ConvLayout, TokensLayout))]
    if not found:
        raise UnifiedVizError("this model has no conv or token layer for CAM methods: give --layer")
    # A ViT's classifier reads only the CLS token after the last block, so patch tokens there
    # get no gradient: use the last block's first norm (pytorch-grad-cam's advice for ViTs).
    norm1 = [n for n in found if n.endswith(("norm1", "layernorm_before"))]
    return norm1[-1] if norm1 and isinstance(adapter.layer(found[-1]).layout, TokensLayout) else found[-1]


def _patch_grid(adapter: Adapter, where: str, patches: torch.Tensor) -> torch.Tensor:
    """`[B, C, n]` values of the n patch tokens (row-major, as patch embeddings flatten) -> `[B, C, h, w]`."""
    n = patches.shape[-1]
    hh, ww = adapter.model.spec.size
    rows = max(1, round(math.sqrt(n * hh / ww)))
    if n % rows:
        raise UnifiedVizError(f"{where}: {n} patch tokens do not form a grid for a {hh}x{ww} input")
    return patches.reshape(*patches.shape[:-1], rows, n // rows)


def to_grid(adapter: Adapter, layer: str, t: torch.Tensor) -> torch.Tensor:
    """A canonical activation of `layer` as `[B, C, h, w]`: conv as is, tokens without prefix on their grid."""
    info = adapter.layer(layer)
    if isinstance(info.layout, ConvLayout):
        return t
    if isinstance(info.layout, TokensLayout):
        return _patch_grid(adapter, info.where(), t[:, info.layout.prefix:].transpose(1, 2))
    raise UnifiedVizError(f"{info.where()} is not a conv or token layer: CAM methods need one")


def _scale(cam: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """pytorch-grad-cam's `scale_cam_image`: per image min to 0, max to 1, then resize."""
    flat = cam.flatten(1)
    cam = cam - flat.min(1).values.view(-1, 1, 1)
    cam = cam / (1e-7 + cam.flatten(1).max(1).values.view(-1, 1, 1))
    if size is not None and tuple(cam.shape[-2:]) != tuple(size):
        cam = F.interpolate(cam.unsqueeze(1), size=size, mode="bilinear", align_corners=False)[:, 0]
    return cam


def _finish(cam: torch.Tensor, adapter: Adapter) -> torch.Tensor:
    size = tuple(adapter.model.spec.size)
    return _scale(_scale(torch.relu(cam), size))


def _acts_and_grads(adapter: Adapter, unit: str, x: torch.Tensor, layer: str):
    info = adapter.layer(layer)
    if info.calls > 1:
        raise UnifiedVizError(f"{layer!r} sums several calls; give one call ({info.module}#0, ...) as the CAM layer")
    with unit_scorer(adapter, unit, extra=(info.name,), live=True) as score, torch.enable_grad():
        values, acts = score(x.detach().requires_grad_(True))
        a = acts[info.name]
        (g,) = torch.autograd.grad(values.sum(), a)
    return to_grid(adapter, info.name, a.detach()), to_grid(adapter, info.name, g.detach())


def attention_layers(adapter: Adapter, unit: str | list[str] | None = None) -> list[str]:
    """The attention-probability layers (`[B, heads, T, T]`) that fire once, at or before `unit`'s layer."""
    return [i.name for i in _layers_up_to(adapter, unit) if i.calls == 1 and isinstance(i.layout, AttentionLayout)]


def _reads_pooled(adapter: Adapter, unit: str | list[str]) -> bool:
    """Whether `unit` is read after the tokens are pooled (logits, a vector layer): then the CLS row counts."""
    target = adapter.resolve(unit if isinstance(unit, str) else unit[0]).target
    return target == LOGITS or isinstance(adapter.layer(target).layout, VectorLayout)


@EXPLAINERS.register("gradrollout", help="ViTs: gradient-weighted attention rolled out over the blocks (Chefer et al.)")
def gradrollout(adapter: Adapter, unit: str, x: torch.Tensor) -> torch.Tensor:
    """Chefer et al. 2021 (ICCV), eqs. 5-6: R = I; per block R += mean_heads((dU/dA * A)^+) @ R.

    Every attention layer at or before the unit's layer is rolled out. The map is the row of R of
    the token the unit reads: the CLS (first prefix) token for units read after pooling, else the
    mean of the patch tokens' rows; its patch columns on their grid.
    """
    names = attention_layers(adapter, unit)
    if not names:
        raise UnifiedVizError("gradrollout needs a model with attention layers (a ViT); use gradcam for CNNs")
    with unit_scorer(adapter, unit, extra=tuple(names), live=True) as score, torch.enable_grad():
        values, acts = score(x.detach().requires_grad_(True))
        grads = torch.autograd.grad(values.sum(), [acts[n] for n in names])
    tokens = acts[names[0]].shape[-1]
    rollout = torch.eye(tokens, dtype=x.dtype, device=x.device).expand(len(x), tokens, tokens)
    for n, g in zip(names, grads):
        rollout = rollout + (g * acts[n].detach()).clamp(min=0).mean(1) @ rollout
    prefix = adapter.layer(names[0]).layout.prefix
    rows = rollout[:, 0] if prefix and _reads_pooled(adapter, unit) else rollout[:, prefix:].mean(1)
    return _finish(_patch_grid(adapter, names[0], rows[:, None, prefix:])[:, 0], adapter)


@EXPLAINERS.register("gradcam", help="Grad-CAM at the last conv/token layer (or --layer); on ViTs gradrollout")
def gradcam(adapter: Adapter, unit: str, x: torch.Tensor, *, layer: str | None = None) -> torch.Tensor:
    if layer is None and attention_layers(adapter, unit) \
            and isinstance(adapter.layer(default_cam_layer(adapter, unit)).layout, TokensLayout):
        return gradrollout(adapter, unit, x)  # Grad-CAM's transformer form (module docstring)
    a, g = _acts_and_grads(adapter, unit, x, layer or default_cam_layer(adapter, unit))
    weights = g.mean((2, 3), keepdim=True)
    return _finish((weights * a).sum(1), adapter)


@EXPLAINERS.register("gradcam++", help="Grad-CAM++ (positive gradients weighted per position)")
def gradcam_pp(adapter: Adapter, unit: str, x: torch.Tensor, *, layer: str | None = None) -> torch.Tensor:
    a, g = _acts_and_grads(adapter, unit, x, layer or default_cam_layer(adapter, unit))
    g2 = g * g
    g3 = g2 * g
    denom = 2 * g2 + a.sum((2, 3), keepdim=True) * g3 + 1e-6  # eps as pytorch-grad-cam
    alpha = torch.where(g != 0, g2 / denom, torch.zeros_like(g))
    weights = (torch.relu(g) * alpha).sum((2, 3), keepdim=True)
    return _finish((weights * a).sum(1), adapter)


@EXPLAINERS.register("scorecam", help="Score-CAM: channels weighted by the unit on the input masked by them")
def scorecam(adapter: Adapter, unit: str, x: torch.Tensor, *, layer: str | None = None,
             batch_size: int = 128) -> torch.Tensor:
    name = adapter.layer(layer or default_cam_layer(adapter, unit)).name
    with unit_scorer(adapter, unit, extra=(name,)) as score, torch.no_grad():
        acts = score(x)[1][name]
    a = to_grid(adapter, name, acts)
    size = tuple(adapter.model.spec.size)
    up = F.interpolate(a, size=size, mode="bilinear", align_corners=False)
    lo = up.flatten(2).min(2).values[..., None, None]
    hi = up.flatten(2).max(2).values[..., None, None]
    masks = torch.where(hi > lo, (up - lo) / (hi - lo + 1e-12), torch.zeros_like(up))
    maps = []
    for i in range(len(x)):
        masked = x[i].unsqueeze(0) * masks[i].unsqueeze(1)  # [C_layer, C_in, H, W]
        weights = torch.softmax(unit_values(adapter, unit, masked, batch_size=batch_size), 0)
        maps.append((weights.view(-1, 1, 1) * a[i]).sum(0))
    return _finish(torch.stack(maps), adapter)
