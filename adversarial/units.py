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

from unifiedviz.adapters import LOGITS, Adapter
from unifiedviz.adapters.layouts import first_tensor
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models.spec import device_of


def units_for_class(model, layer: str, class_index: int, images: torch.Tensor, *, top: int = 5,
                    batch_size: int = 128) -> list[tuple[str, float]]:
    """The `top` units of `layer` with the largest mean contribution to `class_index`'s logit.

    Returns `[(address, score), ...]`, best first, e.g. `[("relu3:channel=1", 0.83), ...]`;
    units that never fire on `images` (zero contribution) are left out.
    """
    adapter = model if isinstance(model, Adapter) else Adapter(model)
    info = adapter.layer(layer)
    kind = info.layout.kind
    if kind not in ("conv", "sequence", "tokens", "vector"):
        raise UnifiedVizError(f"layer {layer!r} is a {kind} layer: rank units of a conv, token or vector layer")
    classes = adapter.layer(LOGITS).shape[0]
    if not 0 <= class_index < classes:
        raise UnifiedVizError(f"class {class_index} is out of range: the model has classes 0..{classes - 1}")
    device = device_of(adapter.model)
    module_name, _, call = info.name.partition("#")
    module = adapter.modules[module_name]
    wanted = int(call or 0)
    seen: list[torch.Tensor] = []
    calls = [0]

    def hook(mod, inputs, output):  # keep the layer's own output (the adapter captures clones)
        if calls[0] == wanted:
            seen.append(first_tensor(output))
        calls[0] += 1

    total = None
    n = 0
    handle = module.register_forward_hook(hook)
    try:
        with adapter.session([LOGITS], stop_early=False) as run:  # eval mode, frozen weights
            for i in range(0, images.shape[0], batch_size):
                x = images[i:i + batch_size].to(device).requires_grad_(True)  # frozen weights: build a graph
                seen.clear()
                calls[0] = 0
                with torch.enable_grad():
                    logits = run(x)[LOGITS]
                    raw = seen[0]
                    (g,) = torch.autograd.grad(logits[:, class_index].sum(), raw)
                contrib = info.layout.canonical((g * raw).detach())
                if kind in ("conv", "sequence"):
                    per_unit = contrib.flatten(2).sum(2)  # [B, C]
                elif kind == "tokens":  # [B, 2, D]: patch tokens, CLS token
                    cls = contrib[:, 0] if info.layout.prefix else torch.zeros_like(contrib[:, 0])
                    per_unit = torch.stack([contrib[:, info.layout.prefix:].sum(1), cls], 1)
                else:
                    per_unit = contrib
                total = per_unit.sum(0) if total is None else total + per_unit.sum(0)
                n += x.shape[0]
    finally:
        handle.remove()
    if total is None:
        raise UnifiedVizError("no images to rank units on")
    score = (total / n).cpu()
    key = "neuron" if kind == "vector" else "channel"
    suffix = [""] * score.shape[-1]
    if kind == "tokens":
        # A unit reads the mean over patch tokens, or the CLS token with token=cls: take the
        # reading that carries more of the logit (in a last block, only CLS reaches the head).
        patch, cls = score[0], score[1]
        suffix = [":token=cls" if cls[d] > patch[d] else "" for d in range(score.shape[-1])]
        score = torch.maximum(patch, cls)
    order = score.argsort(descending=True)
    out = [(f"{info.name}:{key}={int(c)}{suffix[int(c)]}", float(score[c])) for c in order if score[c] > 0]
    return out[:top]


__all__ = ["units_for_class"]
