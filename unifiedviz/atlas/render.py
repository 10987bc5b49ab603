"""The atlas's activation-maximisation images: one function, `render_units`, for every unit batch.

It is a pure function of (model, addresses, settings): each image is seeded from (seed, unit
address, copy index) by `visualize`, so a unit's images do not depend on which batch or process
renders it. A multi-process renderer can split `addresses` and call this function in each
worker; the site writer (`site.py`) calls it and nothing else to make images.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..adapters import Adapter


@dataclass(frozen=True)
class RenderSettings:
    """How the AM images are made (the atlas options that shape them)."""

    steps: int = 128
    copies: int = 3
    diversity: float = 1.0
    lr: float = 0.05
    param: str = "fourier"
    transforms: str = "standard"
    seed: int = 0
    batch_size: int = 32  # units per visualize batch (x copies images)
    generator: str | None = None  # also one image through this learned prior
    dictionary: str | None = None  # the file `latent=` units read


@dataclass
class UnitImages:
    """A unit's AM images `[copies, C, H, W]` and, with a generator, its prior image `[C, H, W]`."""

    am: torch.Tensor
    generated: torch.Tensor | None = None


def render_units(adapter: Adapter, addresses: list[str], settings: RenderSettings) -> dict[str, UnitImages]:
    """AM images of `addresses` (diverse copies per unit, plus the generator's image)."""
    from ..unit_kinds.latent import dictionary_in_use
    from ..visualize import visualize

    copies = settings.copies
    with dictionary_in_use(settings.dictionary):
        vis = visualize(adapter, addresses, steps=settings.steps, param=settings.param, lr=settings.lr,
                        transforms=settings.transforms, seed=settings.seed, per_unit=copies,
                        diversity=settings.diversity if copies > 1 else 0.0,
                        batch_size=settings.batch_size * copies, progress=False)
        generated = None
        if settings.generator:
            generated = visualize(adapter, addresses, steps=settings.steps, param="generator", lr=settings.lr,
                                  transforms=settings.transforms, seed=settings.seed, batch_size=settings.batch_size,
                                  param_options={"generator": settings.generator}, progress=False).images
    return {a: UnitImages(vis.images[i * copies : (i + 1) * copies],
                          None if generated is None else generated[i])
            for i, a in enumerate(addresses)}


__all__ = ["RenderSettings", "UnitImages", "render_units"]
