"""The input contract as arguments: `load_model(..., input_size=, channels=, mean=, std=, spec=)`.

`parse_contract` checks the arguments on their own (before any model is built);
`merge_contract` lays them over the contract a model already carries and checks the result
(one mean/std value per channel, std > 0). Every problem is a one-line UnifiedVizError.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from typing import Sequence

from ..errors import UnifiedVizError
from .spec import InputSpec

_FIELDS = ("input_size", "channels", "mean", "std")


@dataclass(frozen=True)
class ContractArgs:
    """What the caller gave; None for what they left to the model."""

    size: tuple[int, ...] | None = None
    channels: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    spec: InputSpec | None = None


def parse_contract(
    *,
    input_size=None,
    channels=None,
    mean=None,
    std=None,
    spec: InputSpec | None = None,
) -> ContractArgs | None:
    """The contract arguments, checked; None when none was given."""
    given = [n for n, v in zip(_FIELDS, (input_size, channels, mean, std)) if v is not None]
    if spec is not None:
        if given:
            raise UnifiedVizError(
                f"give the input contract either as spec=InputSpec(...) or as input_size/channels/mean/std, "
                f"not both (got spec and {', '.join(given)})"
            )
        if not isinstance(spec, InputSpec):
            raise UnifiedVizError(
                f"spec must be an InputSpec, not {type(spec).__name__}: spec=InputSpec(size=(32, 32), channels=3)"
            )
        return ContractArgs(spec=check_spec(spec))
    if not given:
        return None
    return ContractArgs(
        size=None if input_size is None else _size(input_size),
        channels=None if channels is None else _positive_int("channels", channels, "channels=3"),
        mean=None if mean is None else _floats("mean", mean),
        std=None if std is None else _floats("std", std, positive=True),
    )


def merge_contract(base: InputSpec, args: ContractArgs) -> InputSpec:
    """`base` with the given fields replaced; mean/std broadcast and checked against the channels."""
    if args.spec is not None:
        return args.spec
    channels = args.channels if args.channels is not None else base.channels
    size = args.size if args.size is not None else base.size
    mean = _per_channel("mean", args.mean, base.mean, channels)
    std = _per_channel("std", args.std, base.std, channels)
    return replace(base, size=size, channels=channels, mean=mean, std=std)


def check_spec(spec: InputSpec) -> InputSpec:
    """`spec` with its fields checked (sizes positive ints, one mean/std per channel, std > 0)."""
    size = _size(spec.size)
    channels = _positive_int("spec.channels", spec.channels, "InputSpec(..., channels=3)")
    mean = _per_channel("mean", _floats("spec.mean", spec.mean), None, channels)
    std = _per_channel("std", _floats("spec.std", spec.std, positive=True), None, channels)
    value_range = _floats("spec.value_range", spec.value_range)
    if len(value_range) != 2 or not value_range[0] < value_range[1]:
        raise UnifiedVizError(f"spec.value_range must be (low, high) with low < high, not {spec.value_range!r}")
    return replace(spec, size=size, channels=channels, mean=mean, std=std, value_range=value_range)


def _size(value) -> tuple[int, ...]:
    hint = "e.g. input_size=32, input_size=(32, 32) or input_size=(128,) for 1-D inputs"
    if _is_int(value):
        return (_positive_int("input_size", value, hint),) * 2
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise UnifiedVizError(f"input_size must be an int, (H, W) or (L,), not {value!r}: {hint}")
    if len(value) == 3:
        raise UnifiedVizError(
            f"input_size={tuple(value)!r} has 3 numbers: give (H, W) (or (L,)) and the channels separately, "
            f"e.g. input_size={tuple(value[1:])!r}, channels={value[0]!r}"
        )
    if len(value) not in (1, 2):
        raise UnifiedVizError(f"input_size must be an int, (H, W) or (L,), not {value!r}: {hint}")
    return tuple(_positive_int("each input_size entry", v, hint) for v in value)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _positive_int(name: str, value, hint: str) -> int:
    if not _is_int(value) or value <= 0:
        raise UnifiedVizError(f"{name} must be a positive integer, not {value!r}: {hint}")
    return int(value)


def _floats(name: str, value, *, positive: bool = False) -> tuple[float, ...]:
    hint = f"e.g. {name}=0.5 or {name}=(0.485, 0.456, 0.406), one value per channel"
    items = (value,) if isinstance(value, numbers.Real) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or not items or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in items
    ):
        raise UnifiedVizError(f"{name} must be a finite number or a sequence of them, not {value!r}: {hint}")
    if positive:
        bad = next((i for i, v in enumerate(items) if v <= 0), None)
        if bad is not None:
            raise UnifiedVizError(
                f"{name} must be > 0 (got {items[bad]!r} at channel {bad}): it divides the input; "
                "use 1.0 for no scaling"
            )
    return tuple(float(v) for v in items)


def _per_channel(name: str, given, base, channels: int) -> tuple[float, ...]:
    """Given values broadcast to `channels`; the model's own kept when they still fit."""
    if given is None:
        if len(base) in (1, channels):
            return base
        raise UnifiedVizError(
            f"the model's {name} has {len(base)} values but channels={channels}: "
            f"give mean= and std= for {channels} channel(s) too"
        )
    if len(given) == 1:
        return given * channels
    if len(given) != channels:
        raise UnifiedVizError(
            f"{name} has {len(given)} values but the input has {channels} channel(s): "
            f"give one value per channel or a single number"
        )
    return given
