"""What every parameterisation shares: the `Param` interface, the `PARAMS` registry and input checks."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..errors import UnifiedVizError
from ..registry import Registry

#: An int or a `torch.Generator` (one stream for the whole batch), or one int per image (row i
#: is then drawn from its own generator, so it does not depend on its batch neighbours).
Seed = int | torch.Generator | Sequence[int]

#: Parameterisations buildable from a model's `InputSpec` alone (`make_param`, CLI `--param`).
#: Those that need more inputs (a generator network, images to perturb) are built directly and
#: not registered. Every module of this package is imported on the first look-up, so a new
#: file here with `@PARAMS.register("name")` on its class is all it takes.
PARAMS: Registry[type["Param"]] = Registry("parameterisation", modules=["unifiedviz.params"])


class Param(nn.Module):
    """An image (or sequence) source for the engine.

    `forward()` takes no arguments and returns a batch `[N, C, *size]` in [0, 1];
    the engine calls `after_step(gradient=...)` after every optimiser step (projections, clipping).
    """

    def after_step(self, gradient: bool = True) -> None:
        """Hook run after each optimiser step; most parameterisations need none. `gradient` is False
        after a gradient-free step (the (1+1)-ES): constraints still apply, trajectory shaping
        (decay, step schedules) does not, since it would change the state the search just accepted."""

    @classmethod
    def from_spec(cls, n: int, spec, **options) -> "Param":
        """`n` inputs shaped like `spec` (an `InputSpec`): `cls(n, spec.channels, spec.size, **options)`.

        Override when the constructor takes another shape (e.g. `SequenceParam`'s length).
        """
        return cls(n, spec.channels, tuple(spec.size), **options)


def generator_from(seed: int | torch.Generator) -> torch.Generator:
    """A CPU generator: draws on CPU are bitwise reproducible whatever device runs later."""
    if isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UnifiedVizError(f"seed must be an int, a torch.Generator or one int per image, got {seed!r}")
    return torch.Generator(device="cpu").manual_seed(seed)


def check_shape(n: int, channels: int, size: int | Sequence[int]) -> tuple[int, ...]:
    """Validate batch/channels/size and return `size` as a tuple; an int means a square image."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if len(size) not in (1, 2):
        raise UnifiedVizError(f"size must be (H, W) for images or (L,) for sequences, got {size}")
    for what, value in (("n", n), ("channels", channels), *(("size", s) for s in size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UnifiedVizError(f"{what} must be a positive int, got {value!r}")
    return size
