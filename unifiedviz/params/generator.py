"""DGN-AM (Nguyen et al. 2016): optimise the latent code of a fixed image generator."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..errors import UnifiedVizError
from ..models.spec import device_of
from .base import PARAMS, Param, Seed
from .seeding import random_rows


def clip_codes(z: torch.Tensor, clip: tuple | None) -> torch.Tensor:
    """`z` kept inside `clip` = (lo, hi) elementwise (bounds: numbers or tensors broadcast against
    the latent shape); `None`: unchanged. Differentiable inside the range (DGN-AM's clip, also the
    latent prior of `unifiedviz invert --set prior=NAME`)."""
    if clip is None:
        return z
    lo, hi = (torch.as_tensor(c, dtype=z.dtype, device=z.device) for c in clip)
    return torch.maximum(torch.minimum(z, hi), lo)


@PARAMS.register("generator", help="DGN-AM: the latent code of an image generator (--generator NAME)")
class GeneratorParam(Param):
    """`image = rescale(generator(z))` with codes `z` of shape `[n, *latent_shape]` as the only free tensor.

    The generator must output `[n, C, *size]` with values in `output_range` (default (-1, 1),
    a tanh GAN); they are mapped linearly into [0, 1] and clamped. The generator is frozen
    (`requires_grad_(False)`) and kept in eval mode so BatchNorm does not depend on the codes.
    After each gradient step codes shrink by `decay` (L2 code decay: z <- (1 - decay) z; not after
    a gradient-free step, whose accepted code must stay as scored), then are clipped: `clip=b` keeps |z| <= b elementwise, `clip=(lo, hi)` keeps lo <= z <= hi.
    Codes start from N(0, sd); `seed` is an int, a generator, or one int per code.

    `clip` bounds may be tensors broadcast against `latent_shape` (per-channel ranges).
    `schedule=T` (T > 0) scales each optimiser step by a cosine from 1 down to 0.1 over T steps
    (0.1 after): DGN-AM's decreasing step size, whatever the optimiser.

    In `PARAMS` as "generator": `from_spec(n, spec, generator=NAME_OR_MODULE)` takes a name from
    `unifiedviz.generators.GENERATORS` (its DGN-AM recipe as defaults) or a module, and refuses one
    whose images do not fit the model.
    """

    def __init__(
        self,
        generator: nn.Module,
        n: int,
        latent_shape: int | Sequence[int],
        *,
        output_range: tuple[float, float] = (-1.0, 1.0),
        clip: float | tuple[float, float] | None = None,
        decay: float = 0.0,
        sd: float = 1.0,
        seed: Seed = 0,
        schedule: int = 0,
    ) -> None:
        super().__init__()
        latent_shape = (latent_shape,) if isinstance(latent_shape, int) else tuple(latent_shape)
        if isinstance(clip, (int, float)):
            clip = (-float(clip), float(clip))
        if clip is not None and not bool(torch.all(torch.as_tensor(clip[0]) < torch.as_tensor(clip[1]))):
            raise UnifiedVizError(f"clip must be a positive bound or (lo, hi) with lo < hi, got {clip}")
        if not 0.0 <= decay < 1.0:
            raise UnifiedVizError(f"decay must be in [0, 1), got {decay}")
        if isinstance(schedule, bool) or not isinstance(schedule, int) or schedule < 0:
            raise UnifiedVizError(f"schedule must be a number of steps >= 0, got {schedule!r}")
        if not output_range[0] < output_range[1]:
            raise UnifiedVizError(f"output_range must be (lo, hi) with lo < hi, got {output_range}")
        self.generator = generator.requires_grad_(False).eval()
        self.output_range = output_range
        self.clip = clip
        self.decay = decay
        z = random_rows("randn", (n, *latent_shape), seed) * sd
        if clip is not None:
            z = z.clamp(*clip)  # the initial codes obey the clip too
        device = device_of(generator)
        if clip is not None:
            clip = tuple(c.to(device) if isinstance(c, torch.Tensor) else c for c in clip)
            self.clip = clip
        self.schedule, self.steps_taken = schedule, 0
        self.z = nn.Parameter(z.to(device))
        self._before = self.z.detach().clone() if schedule else None

    def train(self, mode: bool = True) -> "GeneratorParam":
        super().train(mode)
        self.generator.eval()
        return self

    def forward(self) -> torch.Tensor:
        return self.decode(self.z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] of any codes `z` `[M, *latent_shape]` (the gradient-free search decodes candidates)."""
        lo, hi = self.output_range
        return ((self.generator(z) - lo) / (hi - lo)).clamp(0.0, 1.0)

    @classmethod
    def from_spec(cls, n: int, spec, *, generator=None, latent_shape=None, snap=None, **options) -> "GeneratorParam":
        """`n` codes of `generator` (a `GENERATORS` name or a module), its recipe's clip/decay/sd as defaults."""
        from ..generators import as_generator

        if generator is None:
            raise UnifiedVizError("the 'generator' parameterisation needs a generator: give --generator NAME "
                                  "(e.g. builtin:digits-gen) or param_options={'generator': ...}")
        gen = as_generator(generator, latent_shape=latent_shape, **({} if snap is None else {"snap": snap}))
        expected = (spec.channels, *spec.size)
        got = gen.output_shape()
        if tuple(got) != tuple(expected):
            raise UnifiedVizError(f"generator {gen.name} makes images of shape {list(got)} but the model takes "
                                  f"{list(expected)} (channels, height, width)")
        recipe = dict(output_range=gen.output_range, clip=gen.clip, decay=gen.decay, sd=gen.sd,
                      schedule=256 if gen.clip is not None else 0)
        return cls(gen.module, n, gen.latent_shape, **{**recipe, **options})

    @torch.no_grad()
    def after_step(self, gradient: bool = True) -> None:
        if self.schedule and gradient:
            self.steps_taken += 1
            t = min(self.steps_taken - 1, self.schedule) / self.schedule
            scale = 0.1 + 0.45 * (1.0 + math.cos(math.pi * t))  # 1 at the first step, 0.1 after `schedule` steps
            self.z.copy_(self._before + scale * (self.z - self._before))
        if self.decay and gradient:  # a search's accepted code is kept as it was scored
            self.z.mul_(1.0 - self.decay)
        if self.clip is not None:
            self.z.copy_(clip_codes(self.z, self.clip))
        if self.schedule and gradient:
            self._before = self.z.detach().clone()
