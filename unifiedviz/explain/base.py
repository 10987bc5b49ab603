"""What every explainer shares: the EXPLAINERS registry and a unit's score as a function of the input.

An explainer is a function `(adapter, unit, x, **options) -> map`: `x` is a batch of inputs in
[0, 1] (`[B, C, H, W]` images or `[B, F]` vectors), `unit` a unit address (any kind the unit
grammar reads: `class=3`, `conv2:channel=5`, `blocks.1:token=cls`), and the map has the input's
spatial shape: `[B, H, W]` for images, `[B, F]` for vectors. Larger means more important.
Explainers are registered by name (`@EXPLAINERS.register("gradcam")`), one file per method
family in this package; one that only runs the model forward sets `fn.gradient_free = True`,
so it is offered for models without a gradient (black boxes) and the others are refused there.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import torch

from ..adapters import Adapter, as_adapter
from ..errors import UnifiedVizError
from ..registry import Registry

#: Attribution methods by name: `EXPLAINERS.get("saliency")(adapter, "class=3", x)`.
EXPLAINERS: Registry[Callable[..., torch.Tensor]] = Registry("explainer", modules=["unifiedviz.explain"])


def spatial_shape(adapter: Adapter) -> tuple[int, ...]:
    """The map shape of one input: (H, W) for images, (F,) for vector models."""
    spec = adapter.model.spec
    return tuple(spec.size) if spec.size else (spec.channels,)


def is_vector(adapter: Adapter) -> bool:
    return not adapter.model.spec.size


@contextlib.contextmanager
def unit_scorer(model, unit: str | Sequence[str], *, extra: tuple[str, ...] = (), live: bool = False
                ) -> Iterator[Callable[[torch.Tensor], tuple[torch.Tensor, dict]]]:
    """Yield `score(x) -> (values [B], activations)` for `unit`; gradients flow back to `x`.

    `unit` may also be a list of addresses, one per input row (each image its own class, in
    one forward pass). `extra` layers are captured too (e.g. the CAM layer); `live=True` gives
    the network's own tensors so `torch.autograd.grad(values, acts[layer])` works.
    """
    from ..objectives import read_unit

    adapter = as_adapter(model)
    many = not isinstance(unit, str)
    resolved = [adapter.resolve(u) for u in (unit if many else [unit])]
    targets = list(dict.fromkeys([*(r.target for r in resolved), *extra]))
    with adapter.session(targets, live=live) as run:
        def score(x: torch.Tensor):
            if many and len(x) != len(resolved):
                raise UnifiedVizError(f"{len(resolved)} units for {len(x)} inputs: give one unit per input")
            acts = run(x)
            vals = []
            for r in resolved:
                t = acts[r.target]
                if isinstance(t, list):
                    raise UnifiedVizError(f"{r.target!r} sums several calls; explain one call of it instead")
                vals.append(t)
            if not many:
                return read_unit(resolved[0], vals[0]), acts
            return torch.cat([read_unit(r, t[i:i + 1]) for i, (r, t) in enumerate(zip(resolved, vals))]), acts

        yield score


def unit_values(model, unit: str, x: torch.Tensor, *, batch_size: int = 256) -> torch.Tensor:
    """The unit's value for each input, no gradients, in batches of `batch_size`: `[N]`."""
    out = []
    with unit_scorer(model, unit) as score, torch.no_grad():
        for i in range(0, len(x), batch_size):
            out.append(score(x[i:i + batch_size])[0].detach())
    return torch.cat(out) if out else x.new_zeros(0)


def input_gradient(model, unit: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(d unit / d x, unit values) for a batch; each image's gradient is its own score's."""
    with unit_scorer(model, unit) as score, torch.enable_grad():
        xx = x.detach().clone().requires_grad_(True)
        values, _ = score(xx)
        (grad,) = torch.autograd.grad(values.sum(), xx)
    return grad.detach(), values.detach()


def explainer(method: str, model) -> Callable[..., torch.Tensor]:
    """The registered method `method`, refused in one line when it needs a gradient `model` lacks."""
    from ..models.blackbox import has_gradient

    fn = EXPLAINERS.get(method)
    if not getattr(fn, "gradient_free", False) and not has_gradient(as_adapter(model).model):
        free = sorted(name for name in EXPLAINERS.names() if getattr(EXPLAINERS.get(name), "gradient_free", False))
        raise UnifiedVizError(f"{method} needs the model's gradient and this model has none: "
                              f"use --method {' or '.join(free)}")
    return fn


def explain(model, x: torch.Tensor, unit: str, method: str, **options) -> torch.Tensor:
    """Attribution map of `unit` for inputs `x` by the named method (see `EXPLAINERS`)."""
    adapter = as_adapter(model)
    if x.dim() == len(adapter.model.spec.shape):
        x = x.unsqueeze(0)
    return explainer(method, adapter)(adapter, unit, x, **options)


def per_channel_sum(t: torch.Tensor, adapter: Adapter) -> torch.Tensor:
    """Collapse the channel axis of an input-shaped tensor: `[B, C, H, W] -> [B, H, W]`; vectors stay."""
    return t if is_vector(adapter) else t.sum(1)
