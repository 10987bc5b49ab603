"""Unit kinds: what the main selector of a unit address reads (`channel=`, `head=`, `class=`, ...).

A kind is a `UnitKind` in the `UNIT_KINDS` registry: its reader (canonical activation
`[B, ...]` -> one value per image `[B]`, written against the layout objects of
`adapters/layouts.py`, never against a kind string) and its grammar role. The address grammar
(`units.MAIN_KEYS`, parsing, formatting), `Adapter.resolve` (where to read, range checks) and
`objectives.read_unit` all read the registry.

Adding a kind is one file in this package (imported on the registry's first look-up, so no
import line anywhere) or one function in `builtin.py`:

    from unifiedviz.unit_kinds import unit_kind

    @unit_kind("peak", help="a feature's maximum over positions")
    def read_peak(r, t):
        return r.info.layout.feature_map(t, r.unit.index).flatten(1).max(1).values

plus one row in the contract table of tests/test_unit_kinds.py (a test fails until it is there).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..registry import Registry

if TYPE_CHECKING:
    import torch

    from ..adapters.core import Adapter, LayerInfo, ResolvedUnit
    from ..units import Unit

#: How a kind's value is written in an address.
VALUES = ("index", "token", "file")
#: What a kind's index ranges over, asked of the layout (`feature_width` / `head_count`).
INDEX_AXES = ("feature", "head", None)


@dataclass(frozen=True)
class UnitKind:
    """One main selector of the address grammar and how to read it."""

    #: `read(resolved, t)`: canonical activation `t` `[B, ...]` -> `[B]`
    read: Callable[["ResolvedUnit", "torch.Tensor"], "torch.Tensor"]
    #: "index" (`N`, `A:B[:S]`, `A,B`: one unit each, in `Unit.index`), "token" (a token position
    #: or `cls`, in `Unit.token`: alone it is the unit, next to another kind it refines that
    #: kind's position, `neuron=3:token=0`) or "file" (a path, in `Unit.direction`)
    value: str = "index"
    #: what the index ranges over: "feature" (channels / features), "head", or None (no index)
    index_axis: str | None = "feature"
    #: True: the layer may be left out, the unit then reads the model output (`class=3`)
    layerless: bool = False
    #: True: the unit reads a logit, so a `score="logprob"` objective log-softmaxes the layer first
    logit: bool = False
    #: `target(adapter, unit) -> (layer to capture, heads to split D into)` when that is not the
    #: unit's own layer (`head=` on an attention module reads its per-head outputs)
    target: Callable[["Adapter", "Unit"], tuple[str, int]] | None = None
    #: `prepare(unit, info) -> dict` of extra `ResolvedUnit` fields, checked once at resolve time
    prepare: Callable[["Unit", "LayerInfo"], dict[str, Any]] | None = None

    @property
    def position(self) -> bool:
        """True when the key also refines another kind's position (`token=`)."""
        return self.value == "token"

    def __post_init__(self) -> None:
        if self.value not in VALUES:
            raise ValueError(f"UnitKind value must be one of {VALUES}, not {self.value!r}")
        if self.index_axis not in INDEX_AXES:
            raise ValueError(f"UnitKind index_axis must be one of {INDEX_AXES}, not {self.index_axis!r}")


UNIT_KINDS: Registry[UnitKind] = Registry("unit kind", modules=["unifiedviz.unit_kinds"])


def unit_kind(name: str, *, help: str = "", **options) -> Callable:
    """Decorator: register the reader it decorates as unit kind `name` (`options`: `UnitKind` fields)."""

    def register(read: Callable) -> Callable:
        UNIT_KINDS.register(name, UnitKind(read=read, **options), help=help or _first_line(read))
        return read

    return register


def _first_line(fn) -> str:
    doc = (fn.__doc__ or "").strip()
    return doc.splitlines()[0].rstrip(".") if doc else ""


__all__ = ["UnitKind", "UNIT_KINDS", "unit_kind"]
