"""Which units of a layer drive a class: the units an AM-driven attack should push.

`units_for_class` ranks a layer's channels (conv maps) or features (token/vector layers) by
gradient x activation of the class logit, summed over positions (token layers: over patch
tokens, or the CLS token alone, whichever carries more) and averaged over images:
the first-order share of the logit each unit carries on those images. High-ranked units are
the ones class visualisations light up; pushing one up moves the class, pushing a unit of the
true class down moves away from it.
"""
from __future__ import annotations

import torch

from unifiedviz.adapters import LOGITS, as_adapter
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models.spec import device_of


def units_for_class(model, layer: str, class_index: int, images: torch.Tensor, *, top: int = 5,
                    batch_size: int = 128) -> list[tuple[str, float]]:
    """The `top` units of `layer` with the largest mean contribution to `class_index`'s logit.

    Returns `[(address, score), ...]`, best first, e.g. `[("relu3:channel=1", 0.83), ...]`;
    units that never fire on `images` (zero contribution) are left out. `layer` may be an
    aggregate `name#*` (every call of a per-time-step module): contributions of all calls add up.
    """
    adapter = as_adapter(model)
    info = adapter.layer(layer)
    layout = info.layout
    if layout.unit_axes is None:
        raise UnifiedVizError(
            f"layer {layer!r} is a {layout.kind} layer: rank units of a conv, token or vector layer"
        )
    classes = adapter.layer(LOGITS).shape[0]
    if not 0 <= class_index < classes:
        raise UnifiedVizError(f"class {class_index} is out of range: the model has classes 0..{classes - 1}")
    device = device_of(adapter.model)
    total = None
    n = 0
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].to(device)
        contrib = adapter.gradient_x_activation(x, info.name, lambda logits: logits[:, class_index])
        per_unit = layout.unit_sums(contrib)  # [B, F]: summed over positions (tokens: patch tokens)
        if layout.prefix:  # a token layer: the CLS token's own column, read with token=cls
            per_unit = torch.stack([per_unit, layout.token_features(contrib, 0)], 1)  # [B, 2, F]
        total = per_unit.sum(0) if total is None else total + per_unit.sum(0)
        n += x.shape[0]
    if total is None:
        raise UnifiedVizError("no images to rank units on")
    score = (total / n).cpu()
    suffix = [""] * score.shape[-1]
    if layout.prefix:
        # A unit reads the mean over patch tokens, or the CLS token with token=cls: take the
        # reading that carries more of the logit (in a last block, only CLS reaches the head).
        patch, cls = score[0], score[1]
        suffix = [":token=cls" if cls[d] > patch[d] else "" for d in range(score.shape[-1])]
        score = torch.maximum(patch, cls)
    order = score.argsort(descending=True)
    key = layout.unit_key
    out = [(f"{info.name}:{key}={int(c)}{suffix[int(c)]}", float(score[c])) for c in order if score[c] > 0]
    return out[:top]


__all__ = ["units_for_class"]
