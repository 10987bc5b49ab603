"""Objectives: small named pieces that score each image of a batch; the engine maximises them.

Every objective maps a `Context` (captured activations + the images) to one score per image,
shape `[B]`. They compose with `+`, `-`, unary `-` and scalar `*`, and keep a readable name:

    obj = unit(adapter, "layer3:channel=5") - 0.05 * total_variation() + 0.1 * diversity("layer3")

Unit reductions (canonical layouts, see adapters/layouts.py):
  conv / sequence  channel: spatial mean;   neuron: one position (`y=`/`x=`, default centre)
  tokens           channel/neuron: mean over patch tokens (prefix excluded), or one `token=`;
                   token: mean square of that token's vector (how strongly it is written)
  heads            head: mean square of the head's output over patch tokens (or one `token=`)
  attention        head: how concentrated the head's attention is (mean over queries of
                   sum_k p^2), or one query `token=`
  vector           channel/neuron/class: that entry
  direction        projection onto the vector, then reduced like channel
Regularisers (`l1`, `l2`, `total_variation`, `blur`) return penalties: subtract them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .adapters import LOGITS, Adapter, ResolvedUnit
from .errors import UnifiedVizError
from .units import Unit


@dataclass
class Context:
    """What objectives read: activations by capture target, and the images (before transforms)."""

    acts: dict[str, torch.Tensor]
    images: torch.Tensor


class Objective:
    """Base class: `layers` are the capture targets it needs; `__call__` gives scores `[B]`."""

    name: str = "objective"
    layers: tuple[str, ...] = ()

    def __call__(self, ctx: Context) -> torch.Tensor:
        raise NotImplementedError

    def __add__(self, other: "Objective") -> "Objective":
        return Sum([(1.0, self), (1.0, _as_objective(other))])

    def __sub__(self, other: "Objective") -> "Objective":
        return Sum([(1.0, self), (-1.0, _as_objective(other))])

    def __neg__(self) -> "Objective":
        return Sum([(-1.0, self)])

    def __mul__(self, scale: float) -> "Objective":
        if not isinstance(scale, (int, float)):
            return NotImplemented
        return Sum([(float(scale), self)])

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"<Objective {self.name}>"


class Sum(Objective):
    def __init__(self, terms: Sequence[tuple[float, Objective]]) -> None:
        flat: list[tuple[float, Objective]] = []
        for w, obj in terms:  # keep the tree flat so names stay readable
            flat.extend((w * w2, o2) for w2, o2 in obj.terms) if isinstance(obj, Sum) else flat.append((w, obj))
        self.terms = flat
        self.layers = tuple(dict.fromkeys(layer for _, o in flat for layer in o.layers))
        self.name = _sum_name(flat)

    def __call__(self, ctx: Context) -> torch.Tensor:
        total = None
        for w, obj in self.terms:
            value = w * obj(ctx)
            total = value if total is None else total + value
        return total


class UnitObjective(Objective):
    """One unit's activation; with `batch` set, only that image of the batch is scored."""

    def __init__(self, resolved: ResolvedUnit, *, batch: int | None = None, score: str = "logit") -> None:
        if score not in ("logit", "logprob"):
            raise UnifiedVizError(f"unknown class score {score!r}: use 'logit' or 'logprob'")
        self.resolved = resolved
        self.batch = batch
        self.score = score
        self.layers = (resolved.target,)
        suffix = "" if batch is None else f"@{batch}"
        self.name = f"{resolved.unit.address()}{' (log-prob)' if score == 'logprob' and resolved.unit.kind == 'class' else ''}{suffix}"

    def __call__(self, ctx: Context) -> torch.Tensor:
        t = ctx.acts[self.resolved.target]
        if self.batch is not None:
            t = t[self.batch : self.batch + 1]
        if self.score == "logprob" and self.resolved.unit.kind == "class":
            t = F.log_softmax(t, dim=-1)
        return read_unit(self.resolved, t)


def unit(adapter: Adapter, address: str | Unit, *, batch: int | None = None, score: str = "logit") -> UnitObjective:
    """The objective for one unit address (validated against the adapter's model)."""
    return UnitObjective(adapter.resolve(address), batch=batch, score=score)


class OnePerImage(Objective):
    """Image i of the batch maximises objective i: many units render in one batch."""

    def __init__(self, objectives: Sequence[Objective]) -> None:
        self.objectives = list(objectives)
        self.layers = tuple(dict.fromkeys(layer for o in self.objectives for layer in o.layers))
        self.name = f"one per image: {', '.join(o.name for o in self.objectives[:4])}" + (
            ", ..." if len(self.objectives) > 4 else ""
        )

    def __call__(self, ctx: Context) -> torch.Tensor:
        return torch.cat([o(ctx) for o in self.objectives])


def read_unit(r: ResolvedUnit, t: torch.Tensor) -> torch.Tensor:
    """Reduce a canonical activation `t` (batch first) to one value per image for unit `r`."""
    u, layout = r.unit, r.info.layout
    kind = layout.kind
    if u.kind == "direction":
        assert r.direction is not None
        v = r.direction.to(t)
        if kind == "vector":
            return t @ v
        if kind in ("conv", "sequence"):
            t = torch.einsum("bc...,c->b...", t, v).unsqueeze(1)  # [B, 1, ...] reduced like channel 0
        else:
            t = (t @ v).unsqueeze(-1)
        return _reduce_feature(t, 0, u, layout.prefix, kind, mean_over_space=True)
    if kind == "vector":
        return t[:, u.index]
    if u.kind == "token":
        return t[:, _token(u, layout.prefix)].pow(2).mean(-1)
    if u.kind == "head":
        return _head(r, t)
    return _reduce_feature(t, u.index, u, layout.prefix, kind, mean_over_space=u.kind == "channel")


def _reduce_feature(t, index, u: Unit, prefix: int, kind: str, *, mean_over_space: bool) -> torch.Tensor:
    if kind == "conv":
        fmap = t[:, index]
        if mean_over_space and u.y is None and u.x is None:
            return fmap.mean((-2, -1))
        y = fmap.shape[-2] // 2 if u.y is None else u.y
        x = fmap.shape[-1] // 2 if u.x is None else u.x
        return fmap[:, y, x]
    if kind == "sequence":
        seq = t[:, index]
        if mean_over_space and u.x is None:
            return seq.mean(-1)
        return seq[:, seq.shape[-1] // 2 if u.x is None else u.x]
    if kind in ("tokens", "heads"):
        feats = t[..., index] if kind == "tokens" else t[:, :, index]
        if u.token is not None:
            return feats[:, _token(u, prefix)] if kind == "tokens" else feats[:, _token(u, prefix)].pow(2).mean(-1)
        return feats[:, prefix:].mean(1) if kind == "tokens" else feats[:, prefix:].pow(2).mean((1, 2))
    raise UnifiedVizError(f"cannot read unit {u.address()!r} from a {kind} layer")


def _head(r: ResolvedUnit, t: torch.Tensor) -> torch.Tensor:
    u, layout = r.unit, r.info.layout
    if layout.kind == "attention":  # [B, heads, T, T] probabilities
        probs = t[:, u.index]
        conc = probs.pow(2).sum(-1)  # 1/T for uniform attention, 1 for one-hot
        return conc[:, _token(u, layout.prefix)] if u.token is not None else conc.mean(-1)
    if layout.kind == "tokens":  # heads concatenated along D: split them
        b, n, d = t.shape
        t = t.reshape(b, n, r.heads, d // r.heads)
    return _reduce_feature(t, u.index, u, layout.prefix, "heads", mean_over_space=True)


def _token(u: Unit, prefix: int) -> int:
    return 0 if u.token == "cls" else int(u.token)


# ---------------------------------------------------------------- batch-level objectives
class Diversity(Objective):
    """Lucid's diversity: minus the mean cosine similarity of each image's Gram matrix to the others'.

    Add it with a positive weight to push the images of a batch apart (in style at `layer`).
    """

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.layers = (layer,)
        self.name = f"diversity({layer})"

    def __call__(self, ctx: Context) -> torch.Tensor:
        t = ctx.acts[self.layer]
        b = t.shape[0]
        if b < 2:
            return t.new_zeros(b)
        feats = t.flatten(2) if t.dim() > 3 else t.transpose(1, 2) if t.dim() == 3 else t.unsqueeze(-1)
        gram = feats @ feats.transpose(1, 2) / feats.shape[-1]
        g = F.normalize(gram.flatten(1), dim=1)
        sims = g @ g.T
        off_diag = sims.sum(1) - sims.diagonal()
        return -off_diag / (b - 1)


def diversity(layer: str) -> Diversity:
    return Diversity(layer)


class ImageTerm(Objective):
    """A function of the images alone (regularisers)."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.name = name
        self.fn = fn

    def __call__(self, ctx: Context) -> torch.Tensor:
        return self.fn(ctx.images)


def l1(constant: float = 0.5) -> ImageTerm:
    """Mean |x - constant| per image (penalty: subtract it)."""
    return ImageTerm(f"l1({constant:g})", lambda x: (x - constant).abs().flatten(1).mean(1))


def l2(constant: float = 0.5) -> ImageTerm:
    """Root mean square of x - constant per image (penalty: subtract it)."""
    return ImageTerm(f"l2({constant:g})", lambda x: (x - constant).pow(2).flatten(1).mean(1).sqrt())


def total_variation() -> ImageTerm:
    """Mean absolute difference of neighbouring pixels (samples for 1-D) per image (penalty)."""

    def tv(x: torch.Tensor) -> torch.Tensor:
        total = (x[..., 1:] - x[..., :-1]).abs().flatten(1).mean(1)
        if x.dim() == 4:
            total = total + (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
        return total

    return ImageTerm("total_variation", tv)


def blur(kernel: int = 3) -> ImageTerm:
    """Lucid's blur_input_each_step: distance to a blurred copy of itself (penalty: subtract it)."""

    def penalty(x: torch.Tensor) -> torch.Tensor:
        pool = F.avg_pool2d if x.dim() == 4 else F.avg_pool1d
        blurred = pool(x, kernel, stride=1, padding=kernel // 2, count_include_pad=False).detach()
        return 0.5 * (x - blurred).pow(2).flatten(1).sum(1)

    return ImageTerm(f"blur({kernel})", penalty)


def _as_objective(obj) -> Objective:
    if not isinstance(obj, Objective):
        raise TypeError(f"cannot combine an objective with {type(obj).__name__}")
    return obj


def _sum_name(terms: Sequence[tuple[float, Objective]]) -> str:
    parts = []
    for i, (w, obj) in enumerate(terms):
        sign = "-" if w < 0 else ("+" if i else "")
        mag = abs(w)
        text = obj.name if mag == 1 else f"{mag:g}*{obj.name}"
        parts.append(f"{sign} {text}".strip() if i else f"{sign}{text}")
    return " ".join(parts)


__all__ = [
    "Context",
    "Objective",
    "Sum",
    "UnitObjective",
    "OnePerImage",
    "Diversity",
    "ImageTerm",
    "unit",
    "read_unit",
    "diversity",
    "l1",
    "l2",
    "total_variation",
    "blur",
    "LOGITS",
]
