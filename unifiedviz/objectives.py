"""Objectives: small named pieces that score each image of a batch; the engine maximises them.

Every objective maps a `Context` (captured activations + the images) to one score per image,
shape `[B]`. They compose with `+`, `-`, unary `-` and scalar `*`, and keep a readable name:

    obj = unit(adapter, "layer3:channel=5") - 0.05 * total_variation() + 0.1 * diversity("layer3")

Unit reductions are the unit kinds' readers (`unifiedviz/unit_kinds`), written against the
layout objects (`adapters/layouts.py`), so a mean over tokens always skips prefix tokens:
  conv / sequence  channel: spatial mean;   neuron: one position (`y=`/`x=`, default centre)
  tokens / heads   channel/neuron: mean over patch tokens (prefix excluded), or one `token=`;
                   token: mean square of that token's vector (how strongly it is written);
                   head: mean square of the head's output over patch tokens (or one `token=`)
  attention        head: how concentrated the head's attention is (mean over patch queries
                   of sum_k p^2), or one query `token=`
  vector           channel/neuron/class: that entry
  direction        projection onto the vector, then reduced like channel
Regularisers (`l1`, `l2`, `total_variation`, `blur`) return penalties: subtract them. They and
`diversity` are registered by name in `OBJECTIVES` (name -> factory), for configs and the CLI.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from .adapters import LOGITS, Adapter, ResolvedUnit
from .errors import UnifiedVizError
from .registry import Registry
from .unit_kinds import UNIT_KINDS
from .units import Unit

#: Named objective factories (`OBJECTIVES.get("total_variation")()`), for configs and the CLI.
#: Sequence Dreaming adds gaussian, realism and border (`unifiedviz/sequences/terms.py`), loaded on first look-up.
OBJECTIVES: Registry[Callable[..., "Objective"]] = Registry("objective", modules=["unifiedviz.sequences.terms"])


@dataclass
class Context:
    """What objectives read: activations by capture target, and the images (before transforms)."""

    acts: dict[str, torch.Tensor]
    images: torch.Tensor
    _rows: dict[str, tuple[torch.Tensor, ...]] = field(default_factory=dict, init=False, repr=False)

    def row(self, target: str, index: int) -> torch.Tensor:
        """Image `index`'s activation at `target`, `[1, ...]`.

        The capture is split once per step and every per-image objective takes its piece:
        the backward then assembles one full-size gradient, where B slices `t[i:i+1]` each
        fill a full-size zero tensor and add them up (O(B^2) in the batch size).
        """
        if target not in self._rows:
            self._rows[target] = self.acts[target].split(1)
        return self._rows[target][index]


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
        self._logprob = score == "logprob" and UNIT_KINDS.get(resolved.unit.kind).logit
        suffix = "" if batch is None else f"@{batch}"
        self.name = f"{resolved.unit.address()}{' (log-prob)' if self._logprob else ''}{suffix}"

    def __call__(self, ctx: Context) -> torch.Tensor:
        if self.batch is None:
            t = ctx.acts[self.resolved.target]
        else:
            t = ctx.row(self.resolved.target, self.batch)
        if self._logprob:
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
    """Reduce a canonical activation `t` (batch first) to one value per image for unit `r`.

    The unit kind's registered reader does it (see `unifiedviz/unit_kinds`).
    """
    return UNIT_KINDS.get(r.unit.kind).read(r, t)


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


@OBJECTIVES.register("diversity")
def diversity(layer: str) -> Diversity:
    """Lucid's diversity at `layer` (add it with a positive weight)."""
    return Diversity(layer)


class ImageTerm(Objective):
    """A function of the images alone (regularisers)."""

    def __init__(self, name: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.name = name
        self.fn = fn

    def __call__(self, ctx: Context) -> torch.Tensor:
        return self.fn(ctx.images)


@OBJECTIVES.register("l1")
def l1(constant: float = 0.5) -> ImageTerm:
    """Mean |x - constant| per image (penalty: subtract it)."""
    return ImageTerm(f"l1({constant:g})", lambda x: (x - constant).abs().flatten(1).mean(1))


@OBJECTIVES.register("l2")
def l2(constant: float = 0.5) -> ImageTerm:
    """Root mean square of x - constant per image (penalty: subtract it)."""
    return ImageTerm(f"l2({constant:g})", lambda x: (x - constant).pow(2).flatten(1).mean(1).sqrt())


@OBJECTIVES.register("total_variation")
def total_variation() -> ImageTerm:
    """Mean absolute difference of neighbouring pixels (samples for 1-D) per image (penalty)."""

    def tv(x: torch.Tensor) -> torch.Tensor:
        total = (x[..., 1:] - x[..., :-1]).abs().flatten(1).mean(1)
        if x.dim() == 4:
            total = total + (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
        return total

    return ImageTerm("total_variation", tv)


@OBJECTIVES.register("blur")
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
    "OBJECTIVES",
]
