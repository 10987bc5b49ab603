"""One canonical view of every activation, and what each view means for a unit.

A layout is an object: it turns a module's output into the canonical tensor, says how many
features a `channel=`/`neuron=` index ranges over, which positions (`token=`, `y=`, `x=`) it
has, how a unit reduces over them and which addresses are in range. Every reader (unit kinds,
superposition features, adversarial unit ranking) asks the layout, so a reduction such as
"a token feature's mean" has one meaning everywhere: the mean over PATCH tokens, prefix
(CLS/distillation/register) tokens excluded.

    conv       [B, C, H, W]   (channels-last maps from Swin/ConvNeXt are transposed here)
    tokens     [B, T, D]      (the first `prefix` tokens are CLS/distillation/register tokens)
    heads      [B, T, heads, D/heads]  per-head attention outputs (TransformerLens hook_z)
    attention  [B, heads, T, T]        attention probabilities
    sequence   [B, C, L]      1-D conv maps (time series)
    vector     [B, D]         pooled features, logits
    other      as produced    capturable, but no unit reads it

Call-index names live here too: a module called several times per forward pass has one layer
per call, `name` (call 0), `name#1`, ..., and, when every call has one shape, `name#*` for
every call summed and `name#mean` for their mean (a recurrent or spiking module that fires
once per time step: its spike count and its rate). `split_call` / `call_name` /
`aggregate_of` are the only places that read or write the `#` suffix.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

from ..errors import UnifiedVizError
from ..registry import Registry

if TYPE_CHECKING:
    from ..units import Unit

# ---------------------------------------------------------------- call-index names
#: The call suffix that names every call of a module, summed (`spiking0#*`: a spike count).
AGGREGATE = "*"
#: The call suffix that names the mean over every call (`spiking0#mean`: a spike rate).
AGGREGATE_MEAN = "mean"
#: suffix -> how the calls are reduced
_AGGREGATES = {AGGREGATE: "sum", AGGREGATE_MEAN: "mean"}


def split_call(name: str) -> tuple[str, int | None]:
    """`"relu#1"` -> `("relu", 1)`; `"relu"` -> `("relu", 0)`; `"relu#*"`, `"relu#mean"` -> `("relu", None)` (every call)."""
    module, sep, suffix = name.rpartition("#")
    if sep and module:
        if suffix in _AGGREGATES:
            return module, None
        if suffix.isdigit():
            return module, int(suffix)
    return name, 0


def aggregate_of(name: str) -> str | None:
    """How a layer name reduces its module's calls: `"sum"` (`#*`), `"mean"` (`#mean`), None (one call)."""
    module, sep, suffix = name.rpartition("#")
    return _AGGREGATES.get(suffix) if sep and module else None


def call_name(module: str, k: int | None, reduce: str = "sum") -> str:
    """The layer name of call `k` of `module` (0: the bare name; None: every call, `reduce` "sum" or "mean")."""
    if k is None:
        return f"{module}#{AGGREGATE if reduce == 'sum' else AGGREGATE_MEAN}"
    return module if k == 0 else f"{module}#{k}"


# ---------------------------------------------------------------- layouts
#: kind name -> layout class; `Layout("conv", ...)` and `layout_for` read it.
LAYOUTS: Registry[type] = Registry("layout")

# TransformerLens hook names whose 4-D tensors are not conv maps.
_TL_HEADS = ("hook_q", "hook_k", "hook_v", "hook_z", "hook_result")
_TL_ATTENTION = ("hook_pattern", "hook_attn_scores")
# Modules that act on the last dim: a 4-D output from them is channels-last.
_LAST_DIM_MODULES = (nn.Linear, nn.LayerNorm)


class _LayoutMeta(type):
    """`Layout("conv", channels_last=True)` (the former string-kind constructor) builds `ConvLayout`."""

    def __call__(cls, *args, **kwargs):
        if cls is Layout:
            kind = args[0] if args else kwargs.pop("kind", "other")
            return LAYOUTS.get(kind)(*args[1:], **kwargs)
        return super().__call__(*args, **kwargs)


@dataclass(frozen=True)
class Layout(metaclass=_LayoutMeta):
    """Base class; also the layout of tensors no unit reads (`kind == "other"`).

    Subclasses set the class attributes and override the readers that apply to them.
    A feature map `m` is one value per position, `[B, *positions]` (conv `[B, H, W]`,
    tokens `[B, T]`, vector `[B]`); `reduce_positions` turns it into one value per image.
    """

    #: the name readers and messages use (`layout.kind == "tokens"`)
    kind: ClassVar[str] = "other"
    #: canonical axes after the batch, for docs and messages
    axes: ClassVar[str] = "as produced"
    #: whether any unit reads this layout
    readable: ClassVar[bool] = False
    #: canonical axes (batch = 0) a unit's mean runs over; None: no per-unit features
    unit_axes: ClassVar[tuple[int, ...] | None] = None
    #: the selector that names one feature of this layout in an address
    unit_key: ClassVar[str] = "channel"

    channels_last: bool = False  # a [B,H,W,C] map, transposed to [B,C,H,W]
    prefix: int = 0  # for token-like kinds: number of prefix tokens

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            LAYOUTS.register(cls.kind, cls, help=cls.axes)

    # ------------------------------------------------------------ the canonical tensor
    def canonical(self, t: torch.Tensor) -> torch.Tensor:
        """The module's output in this layout's canonical axes (a view, no copy)."""
        return t

    def restore(self, c: torch.Tensor) -> torch.Tensor:
        """Inverse of `canonical`: the module's own axes back from a canonical tensor."""
        return c

    # ------------------------------------------------------------ features and positions
    def feature_width(self, shape: tuple[int, ...]) -> int | None:
        """How many features a `channel=`/`neuron=`/direction index ranges over (None: none)."""
        return None

    def position_sizes(self, shape: tuple[int, ...]) -> dict[str, int]:
        """Position selectors this layout has (`token`, `y`, `x`) and their sizes."""
        return {}

    def head_count(self, shape: tuple[int, ...], heads: int) -> int | None:
        """How many heads a `head=` index ranges over (`heads`: the split the adapter found)."""
        return None

    def feature_map(self, t: torch.Tensor, index: int) -> torch.Tensor:
        """Feature `index` at every position, `[B, *positions]`."""
        raise self._unreadable("a feature")

    def project(self, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The projection of every position's features on `v`, `[B, *positions]`."""
        raise self._unreadable("a direction")

    def token_features(self, t: torch.Tensor, token: int) -> torch.Tensor:
        """Everything at one token position, `[B, F]`."""
        raise self._unreadable("a token")

    def head_map(self, t: torch.Tensor, head: int, heads: int) -> torch.Tensor:
        """How strongly head `head` acts at every position, `[B, *positions]`."""
        raise self._unreadable("a head")

    def reduce_positions(self, m: torch.Tensor, unit: "Unit", *, mean: bool = True) -> torch.Tensor:
        """`[B, *positions]` -> `[B]`: the unit's position if it names one, else the mean (`mean`)
        or the centre (`mean=False`, where a layout has a centre)."""
        return m

    # ------------------------------------------------------------ per-unit reductions
    def unit_means(self, t: torch.Tensor) -> torch.Tensor:
        """`[B, ...]` -> `[B, features]`: each feature's mean over positions (what `channel=` reads)."""
        return self._reduce_units(t, "mean")

    def unit_sums(self, t: torch.Tensor) -> torch.Tensor:
        """`[B, ...]` -> `[B, features]`: each feature summed over the positions `unit_means` averages."""
        return self._reduce_units(t, "sum")

    def _reduce_units(self, t: torch.Tensor, how: str) -> torch.Tensor:
        if self.unit_axes is None:
            raise UnifiedVizError(
                f"a {self.kind} layout has no per-unit features: use a conv, token or vector layer instead"
            )
        if not self.unit_axes:
            return t
        return getattr(t, how)(dim=self.unit_axes)

    # ------------------------------------------------------------ range checks
    def check_unit(self, unit: "Unit", shape: tuple[int, ...], *, index_axis: str | None, heads: int = 0,
                   where: str) -> None:
        """Raise a one-line `UnifiedVizError` unless `unit` can be read from this layout.

        `index_axis` is what the unit's index ranges over (`"feature"`, `"head"`, or None);
        `where` names the layer in messages.
        """
        if not self.readable:
            raise UnifiedVizError(
                f"no unit reads {where}: its layout is not a conv map, token sequence or vector; "
                "capture it raw with Adapter.capture or pick a neighbouring layer"
            )
        if index_axis is not None and unit.index is not None:
            size = self.feature_width(shape) if index_axis == "feature" else self.head_count(shape, heads)
            if size is None:
                hint = "use head= for attention layers" if index_axis == "feature" else "use channel= or neuron="
                raise UnifiedVizError(f"{unit.kind}= does not apply to {where}: {hint}")
            _check_index(unit.kind, unit.index, size, where)
        sizes = self.position_sizes(shape)
        if unit.token is not None:
            if "token" not in sizes:
                raise UnifiedVizError(
                    f"token= needs a token layer, but {where} is not one: drop token= or pick a ViT layer"
                )
            if unit.token == "cls":
                if not self.prefix:
                    raise UnifiedVizError(f"token=cls: {where} has no CLS/prefix token; give a token index instead")
            else:
                _check_index("token", int(unit.token), sizes["token"], where)
        for key in ("y", "x"):
            value = getattr(unit, key)
            if value is None:
                continue
            if key not in sizes:
                if "x" not in sizes:
                    raise UnifiedVizError(
                        f"y=/x= positions need a conv layer, but {where} is {self.kind}; use token= for ViTs"
                    )
                raise UnifiedVizError(f"{key}= does not apply to {where}: a 1-D map has x= positions only")
            _check_index(key, value, sizes[key], where)

    def describe(self) -> str:
        extra = ", channels-last" if self.channels_last else ""
        extra += f", {self.prefix} prefix" if self.prefix else ""
        return f"{self.kind}{extra}"

    def _unreadable(self, what: str) -> UnifiedVizError:
        return UnifiedVizError(f"cannot read {what} from a {self.kind} layer")


@dataclass(frozen=True)
class OtherLayout(Layout):
    """Anything else (e.g. per-head queries, Swin windows folded into the batch): captured raw."""

    kind: ClassVar[str] = "other"


@dataclass(frozen=True)
class ConvLayout(Layout):
    """`[B, C, H, W]` maps; a unit's mean is spatial, `y=`/`x=` pick one position (default centre)."""

    kind: ClassVar[str] = "conv"
    axes: ClassVar[str] = "C H W"
    readable: ClassVar[bool] = True
    unit_axes: ClassVar[tuple[int, ...]] = (2, 3)

    def canonical(self, t):
        return t.permute(0, 3, 1, 2) if self.channels_last else t

    def restore(self, c):
        return c.permute(0, 2, 3, 1) if self.channels_last else c

    def feature_width(self, shape):
        return shape[0]

    def position_sizes(self, shape):
        return {"y": shape[1], "x": shape[2]}

    def feature_map(self, t, index):
        return t[:, index]

    def project(self, t, v):
        return torch.einsum("bchw,c->bhw", t, v)

    def reduce_positions(self, m, unit, *, mean=True):
        if mean and unit.y is None and unit.x is None:
            return m.mean((-2, -1))
        y = m.shape[-2] // 2 if unit.y is None else unit.y
        x = m.shape[-1] // 2 if unit.x is None else unit.x
        return m[:, y, x]


@dataclass(frozen=True)
class SequenceLayout(Layout):
    """`[B, C, L]` 1-D maps; a unit's mean runs over L, `x=` picks one position (default centre)."""

    kind: ClassVar[str] = "sequence"
    axes: ClassVar[str] = "C L"
    readable: ClassVar[bool] = True
    unit_axes: ClassVar[tuple[int, ...]] = (2,)

    def feature_width(self, shape):
        return shape[0]

    def position_sizes(self, shape):
        return {"x": shape[1]}

    def feature_map(self, t, index):
        return t[:, index]

    def project(self, t, v):
        return torch.einsum("bcl,c->bl", t, v)

    def reduce_positions(self, m, unit, *, mean=True):
        if mean and unit.x is None:
            return m.mean(-1)
        return m[:, m.shape[-1] // 2 if unit.x is None else unit.x]


@dataclass(frozen=True)
class _TokenAxis(Layout):
    """Layouts whose positions are tokens (axis 1): a mean over positions skips the prefix tokens."""

    readable: ClassVar[bool] = True

    def reduce_positions(self, m, unit, *, mean=True):
        # No centre token: without token= the unit always reads the mean over patch tokens.
        if unit.token is not None:
            return m[:, token_index(unit.token)]
        return m[:, self.prefix:].mean(1)

    def _reduce_units(self, t, how):
        if self.unit_axes is None:
            return super()._reduce_units(t, how)
        return getattr(t[:, self.prefix:], how)(dim=1).flatten(1)


@dataclass(frozen=True)
class TokensLayout(_TokenAxis):
    """`[B, T, D]` token sequences; prefix tokens (CLS, ...) come first."""

    kind: ClassVar[str] = "tokens"
    axes: ClassVar[str] = "T D"
    unit_axes: ClassVar[tuple[int, ...]] = (1,)

    def feature_width(self, shape):
        return shape[-1]

    def position_sizes(self, shape):
        return {"token": shape[0]}

    def head_count(self, shape, heads):
        return heads or None  # heads concatenated along D: the adapter supplies the split

    def feature_map(self, t, index):
        return t[..., index]

    def project(self, t, v):
        return t @ v

    def token_features(self, t, token):
        return t[:, token]

    def head_map(self, t, head, heads):
        b, n, d = t.shape
        return HeadsLayout(prefix=self.prefix).head_map(t.reshape(b, n, heads, d // heads), head, heads)


@dataclass(frozen=True)
class HeadsLayout(_TokenAxis):
    """`[B, T, heads, d]` per-head outputs; features are the heads' outputs flattened (`heads * d`)."""

    kind: ClassVar[str] = "heads"
    axes: ClassVar[str] = "T heads d"
    unit_axes: ClassVar[tuple[int, ...]] = (1,)

    def feature_width(self, shape):
        return shape[1] * shape[2]

    def position_sizes(self, shape):
        return {"token": shape[0]}

    def head_count(self, shape, heads):
        return shape[1]

    def feature_map(self, t, index):
        return t.flatten(2)[..., index]

    def project(self, t, v):
        return t.flatten(2) @ v

    def token_features(self, t, token):
        return t[:, token].flatten(1)

    def head_map(self, t, head, heads):
        return t[:, :, head].pow(2).mean(-1)  # mean square of the head's output per token


@dataclass(frozen=True)
class AttentionLayout(_TokenAxis):
    """`[B, heads, T, T]` probabilities; positions are queries. No per-unit features: read heads."""

    kind: ClassVar[str] = "attention"
    axes: ClassVar[str] = "heads T T"

    def position_sizes(self, shape):
        return {"token": shape[1]}

    def head_count(self, shape, heads):
        return shape[0]

    def token_features(self, t, token):
        return t[:, :, token].flatten(1)  # the query's attention rows, all heads

    def head_map(self, t, head, heads):
        return t[:, head].pow(2).sum(-1)  # concentration per query: 1/T uniform, 1 one-hot


@dataclass(frozen=True)
class VectorLayout(Layout):
    """`[B, D]` pooled features and logits: a unit is one entry."""

    kind: ClassVar[str] = "vector"
    axes: ClassVar[str] = "D"
    readable: ClassVar[bool] = True
    unit_axes: ClassVar[tuple[int, ...]] = ()
    unit_key: ClassVar[str] = "neuron"

    def feature_width(self, shape):
        return shape[-1]

    def feature_map(self, t, index):
        return t[:, index]

    def project(self, t, v):
        return t @ v


def layout_for(kind: str, **fields) -> Layout:
    """The layout object for a kind name (`layout_for("tokens", prefix=1)`)."""
    return LAYOUTS.get(kind)(**fields)


def token_index(token: int | str) -> int:
    """A `token=` value as a position: `cls` is position 0."""
    return 0 if token == "cls" else int(token)


def _check_index(what: str, value: int, size: int, where: str) -> None:
    if not 0 <= value < size:
        plural = "classes" if what == "class" else f"{what}s"
        raise UnifiedVizError(f"{what} {value} is out of range for {where}: valid {plural} are 0..{size - 1}")


# ---------------------------------------------------------------- inference
def first_tensor(out) -> torch.Tensor | None:
    """The activation a module produced: its tensor, or the first tensor of a tuple/ModelOutput."""
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        for item in out:
            if isinstance(item, torch.Tensor):
                return item
    return None


def replace_first_tensor(out, new: torch.Tensor):
    """`out` with the tensor `first_tensor(out)` returns replaced by `new` (for a forward hook to return)."""
    if isinstance(out, torch.Tensor):
        return new
    if isinstance(out, (tuple, list)) and not isinstance(out, dict):
        items = list(out)
        for i, item in enumerate(items):
            if isinstance(item, torch.Tensor):
                items[i] = new
                return type(out)(items) if not hasattr(out, "_fields") else type(out)(*items)
    raise UnifiedVizError(f"cannot replace the activation inside a {type(out).__name__} output")


def infer_layout(
    name: str, module: nn.Module, t: torch.Tensor, *, spatial_dims: int, square_input: bool, prefix_tokens: int
) -> Layout:
    """Decide the layout from the tensor's rank, the module's type and family conventions."""
    leaf = name.rsplit(".", 1)[-1]
    if t.dim() == 2:
        return VectorLayout()
    if t.dim() == 3:
        if spatial_dims == 1:
            return SequenceLayout()
        return TokensLayout(prefix=_prefix_for(t.shape[1], prefix_tokens))
    if t.dim() == 4:
        # timm passes softmax(QK^T) through `attn_drop` when fused attention is off.
        if leaf in _TL_ATTENTION or leaf == "attn_drop":
            return AttentionLayout(prefix=_prefix_for(t.shape[-1], prefix_tokens))
        if leaf in _TL_HEADS:
            return HeadsLayout(prefix=_prefix_for(t.shape[1], prefix_tokens))
        _, d1, d2, d3 = t.shape
        if d2 == d3 and not (d1 == d2 and isinstance(module, _LAST_DIM_MODULES)):
            return ConvLayout()
        if d1 == d2 or isinstance(module, _LAST_DIM_MODULES):
            return ConvLayout(channels_last=True)
        if not square_input:
            return ConvLayout()
    # e.g. per-head queries [B, heads, T, d]: capturable, but no unit reads them
    return OtherLayout()


def _prefix_for(tokens: int, prefix_tokens: int) -> int:
    """Prefix tokens are present when removing them leaves a square patch grid."""
    if prefix_tokens and _is_square(tokens - prefix_tokens):
        return prefix_tokens
    if _is_square(tokens):
        return 0
    return prefix_tokens


def _is_square(n: int) -> bool:
    return n > 0 and math.isqrt(n) ** 2 == n


__all__ = [
    "Layout", "OtherLayout", "ConvLayout", "SequenceLayout", "TokensLayout", "HeadsLayout", "AttentionLayout",
    "VectorLayout", "LAYOUTS", "layout_for", "token_index", "first_tensor", "replace_first_tensor",
    "infer_layout", "split_call", "call_name", "aggregate_of", "AGGREGATE", "AGGREGATE_MEAN",
]
