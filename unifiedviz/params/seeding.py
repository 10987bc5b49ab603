"""Per-image random streams: an image's draws depend on its own seed, never on its batch neighbours.

`image_seed(seed, address, copy)` hashes (run seed, unit address, copy index) to a 63-bit seed
with SHA-256 (stable across processes and machines, unlike Python's salted `hash()`).
`RowGenerators(seeds)` holds one CPU `torch.Generator` per batch row: `rand` / `randn` /
`randint` return `[N, ...]` with row i drawn from generator i only. Params take such a list of
seeds for their initialisation, transforms and `RandomSearch` take a `RowGenerators` in place
of a `torch.Generator`, so a unit's initialisation and every random draw of its run are
bitwise the same whether it renders alone or in any batch, in any position.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import torch

from ..errors import UnifiedVizError
from .base import generator_from

_MASK_63 = (1 << 63) - 1


def stable_seed(*parts: object) -> int:
    """A 63-bit int from `parts` (their `str()`s), the same in every process and on every machine."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & _MASK_63


def image_seed(seed: int, address: str, copy: int = 0) -> int:
    """The seed of copy `copy` of the image for unit `address` in a run seeded with `seed`."""
    check_seed(seed)
    return stable_seed("unifiedviz-image", seed, address, copy)


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UnifiedVizError(f"a seed must be an int, got {seed!r}")
    return seed


def is_row_seeds(seed: object) -> bool:
    """True for a sequence of per-row int seeds (as opposed to one int or a torch.Generator)."""
    return not isinstance(seed, (int, torch.Generator, str, bytes)) and isinstance(seed, Sequence)


class RowGenerators:
    """One CPU `torch.Generator` per batch row, seeded with `seeds[i]`.

    Every draw takes a full shape whose first dimension is the number of rows and returns a
    CPU tensor; row i comes from generator i alone, so it does not depend on the other rows.
    Draws for batch-wide values (e.g. noise for a universal perturbation) use `shared`, a
    generator seeded from all the seeds.
    """

    def __init__(self, seeds: Sequence[int]) -> None:
        self.seeds = tuple(check_seed(s) for s in seeds)
        if not self.seeds:
            raise UnifiedVizError("RowGenerators needs at least one seed")
        self.generators = [torch.Generator(device="cpu").manual_seed(s) for s in self.seeds]
        self._shared: torch.Generator | None = None
        self.device = torch.device("cpu")

    def __len__(self) -> int:
        return len(self.seeds)

    def __repr__(self) -> str:
        return f"RowGenerators({len(self)} rows)"

    @property
    def shared(self) -> torch.Generator:
        if self._shared is None:
            self._shared = torch.Generator(device="cpu").manual_seed(stable_seed("shared", *self.seeds))
        return self._shared

    def rand(self, shape: Sequence[int]) -> torch.Tensor:
        """Uniform [0, 1), `shape` = (rows, ...)."""
        return self._rows(shape, lambda rest, g: torch.rand(rest, generator=g))

    def randn(self, shape: Sequence[int]) -> torch.Tensor:
        """Standard normal, `shape` = (rows, ...)."""
        return self._rows(shape, lambda rest, g: torch.randn(rest, generator=g))

    def randint(self, low: int, high: int, shape: Sequence[int]) -> torch.Tensor:
        """Integers in [low, high), `shape` = (rows, ...)."""
        return self._rows(shape, lambda rest, g: torch.randint(low, high, rest, generator=g))

    def _rows(self, shape: Sequence[int], draw: Callable[[tuple, torch.Generator], torch.Tensor]) -> torch.Tensor:
        shape = tuple(shape)
        if not shape or shape[0] != len(self):
            raise UnifiedVizError(
                f"a draw for {shape[0] if shape else 0} rows from generators for {len(self)} rows: "
                "give one seed per image of the batch"
            )
        return torch.stack([draw(shape[1:], g) for g in self.generators])


def random_rows(kind: str, shape: Sequence[int], seed) -> torch.Tensor:
    """`torch.rand`/`torch.randn` (`kind` "rand"/"randn") of `shape` for a param's initialisation.

    `seed` is an int or a `torch.Generator` (one stream for the whole tensor, as before) or a
    sequence of ints, one per row (`shape[0]`): row i then comes from its own generator.
    """
    shape = tuple(shape)
    if is_row_seeds(seed):
        seeds = list(seed)
        if len(seeds) != shape[0]:
            raise UnifiedVizError(f"got {len(seeds)} seeds for {shape[0]} images: give one seed per image")
        return getattr(RowGenerators(seeds), kind)(shape)
    return getattr(torch, kind)(shape, generator=generator_from(seed))


__all__ = ["RowGenerators", "image_seed", "stable_seed", "random_rows", "is_row_seeds", "check_seed"]
