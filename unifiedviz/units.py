"""The unit-address grammar shared by the Python API, the CLI and configs.

    ADDRESS  := [LAYER] (":" KEY "=" VALUE)*
    KEY      := a unit kind (channel | neuron | head | class | direction | token, see
                unifiedviz/unit_kinds) | y | x
    VALUE    := INT | INT ":" INT [":" STEP] (half-open range) | INT "," INT ... (list) | cls | FILE.npy

Examples: ``layer3.1:channel=17``, ``blocks.6.mlp.fc1:neuron=0:64``, ``blocks.4.attn:head=2``,
``blocks.9:token=cls``, ``head:class=281``, ``class=3`` (the model's output logits),
``layer4:direction=cav.npy``, ``conv2:neuron=5:y=3:x=4``, ``layer4:channel=0:512:32`` (every 32nd channel).

A range or list on the main selector expands into one `Unit` per index, so one address can
name 64 units that render in one batch. Every `Unit` formats back to an address that parses
to the same unit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable

from .errors import UnifiedVizError
from .unit_kinds import UNIT_KINDS, UnitKind

#: Selectors that refine where a unit reads besides the position unit kinds (`token`).
SPATIAL_KEYS = ("y", "x")


def main_keys() -> tuple[str, ...]:
    """Selectors that pick what a unit is (the registered unit kinds); exactly one per address."""
    return tuple(UNIT_KINDS.names())


def position_keys() -> tuple[str, ...]:
    """Selectors that refine where: unit kinds that double as positions (`token`), then `y`, `x`."""
    return tuple(e.name for e in UNIT_KINDS.entries() if e.obj.position) + SPATIAL_KEYS


def __getattr__(name: str):
    # MAIN_KEYS / POSITION_KEYS are read from the unit-kind registry when first asked for.
    if name == "MAIN_KEYS":
        return main_keys()
    if name == "POSITION_KEYS":
        return position_keys()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_INT_RANGE = re.compile(r"^(-?\d+):(-?\d+)(?::(\d+))?$")


@dataclass(frozen=True)
class Unit:
    """One unit: `kind` a registered unit kind; `layer` None means the model output (class logits).

    `layer` may name one call of a module (`relu#1`) or all of them summed (`spiking0#*`).
    """

    layer: str | None
    kind: str
    index: int | None = None
    token: int | str | None = None  # int position or "cls"
    y: int | None = None
    x: int | None = None
    direction: str | None = None  # path to a .npy vector

    def address(self) -> str:
        spec = UNIT_KINDS.get(self.kind)
        value = {"file": self.direction, "token": self.token}.get(spec.value, self.index)
        parts = [self.layer or "", f"{self.kind}={value}"]
        if not spec.position and self.token is not None:
            parts.append(f"token={self.token}")
        if self.y is not None:
            parts.append(f"y={self.y}")
        if self.x is not None:
            parts.append(f"x={self.x}")
        text = ":".join(parts)
        return text[1:] if text.startswith(":") else text

    def __str__(self) -> str:
        return self.address()


def parse_units(addresses: str | Iterable[str]) -> list[Unit]:
    """Parse one address or many (several strings, or one string split on whitespace/';')."""
    if isinstance(addresses, str):
        addresses = [a for a in re.split(r"[;\s]+", addresses) if a]
    units: list[Unit] = []
    for text in addresses:
        units.extend(parse_address(text))
    if not units:
        raise UnifiedVizError("no unit address given: pass e.g. 'layer3:channel=0:8' or 'class=3'")
    return units


def parse_address(text: str) -> list[Unit]:
    """Parse one address into the units it names (ranges and lists expand)."""
    layer, selectors = _split(text)
    kinds = {k: UNIT_KINDS.get(k) for k in selectors if k in UNIT_KINDS}
    main = [k for k, spec in kinds.items() if not spec.position]
    if len(main) > 1:
        raise UnifiedVizError(f"unit address {text!r} names {' and '.join(main)}: give one of them")
    if not main and not kinds:
        raise UnifiedVizError(
            f"unit address {text!r} has no selector: add one of "
            + ", ".join(f"':{k}=...'" for k in main_keys())
        )
    kind = main[0] if main else next(iter(kinds))
    spec: UnitKind = kinds[kind]
    if layer is None and not spec.layerless:
        raise UnifiedVizError(f"unit address {text!r} has no layer: write LAYER:{kind}=..., e.g. 'layer3:{kind}=0'")

    y = _single_int(text, selectors, "y")
    x = _single_int(text, selectors, "x")
    if spec.position:  # the kind is itself the position: one unit per position
        return [Unit(layer, kind, token=t, y=y, x=x) for t in _token_values(text, selectors[kind])]
    positions = [k for k, other in kinds.items() if other.position]
    token = _token_values(text, selectors[positions[0]], single=True)[0] if positions else None
    if spec.value == "file":
        return [Unit(layer, kind, token=token, y=y, x=x, direction=selectors[kind])]
    return [Unit(layer, kind, index=i, token=token, y=y, x=x) for i in _index_values(text, kind, selectors[kind])]


def format_units(units: Iterable[Unit]) -> list[str]:
    return [u.address() for u in units]


def with_layer(unit: Unit, layer: str | None) -> Unit:
    return replace(unit, layer=layer)


def _split(text: str) -> tuple[str | None, dict[str, str]]:
    if not isinstance(text, str) or not text.strip():
        raise UnifiedVizError("empty unit address: write e.g. 'layer3:channel=5'")
    parts = text.strip().split(":")
    layer: str | None = None
    if "=" not in parts[0]:
        layer = parts.pop(0) or None
    selectors: dict[str, str] = {}
    last: str | None = None
    for part in parts:
        if "=" in part:
            key, _, value = part.partition("=")
            key = key.strip()
            if key not in UNIT_KINDS and key not in SPATIAL_KEYS:
                raise UnifiedVizError(
                    f"unknown selector {key!r} in unit address {text!r}: use one of "
                    + ", ".join(main_keys() + SPATIAL_KEYS)
                )
            if key in selectors:
                raise UnifiedVizError(f"selector {key!r} appears twice in unit address {text!r}")
            selectors[key] = value.strip()
            last = key
        elif last is not None and part.strip():
            selectors[last] += ":" + part.strip()  # the second half of a range such as 0:64
        else:
            raise UnifiedVizError(f"cannot read {part!r} in unit address {text!r}: write KEY=VALUE after ':'")
    for key, value in selectors.items():
        if not value:
            raise UnifiedVizError(f"selector {key!r} in unit address {text!r} has no value: write {key}=N")
    return layer, selectors


def _index_values(text: str, key: str, value: str) -> list[int]:
    """'5' -> [5]; '0:4' -> [0,1,2,3]; '0:8:4' -> [0,4]; '1,5,9' -> [1,5,9]."""
    values: list[int] = []
    for item in value.split(","):
        item = item.strip()
        match = _INT_RANGE.match(item)
        if match:  # the regex guarantees both ends are integers
            start, stop, step = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1)
            if step < 1:
                raise UnifiedVizError(f"step 0 in range {item!r} for {key} in {text!r}: use a step of 1 or more")
            if stop <= start:
                raise UnifiedVizError(
                    f"empty range {item!r} for {key} in {text!r}: the stop must exceed the start (0:8 means 0..7)"
                )
            values.extend(range(start, stop, step))
            continue
        try:
            values.append(int(item))
        except ValueError:
            raise UnifiedVizError(
                f"{key}={value!r} in {text!r} is not an index: use N, A:B, A:B:STEP or A,B,C"
            ) from None
    if any(v < 0 for v in values):
        raise UnifiedVizError(f"negative index in {key}={value!r} ({text!r}): indices start at 0")
    return values


def _token_values(text: str, value: str, single: bool = False) -> list[int | str]:
    tokens: list[int | str] = ["cls"] if value == "cls" else _index_values(text, "token", value)
    if single and len(tokens) != 1:
        raise UnifiedVizError(f"token={value!r} in {text!r} must name one token here (a position), not several")
    return tokens


def _single_int(text: str, selectors: dict[str, str], key: str) -> int | None:
    if key not in selectors:
        return None
    values = _index_values(text, key, selectors[key])
    if len(values) != 1:
        raise UnifiedVizError(f"{key}={selectors[key]!r} in {text!r} must be one position, not a range")
    return values[0]
