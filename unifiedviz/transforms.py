"""Differentiable robustness transforms applied to images between the param and the model.

Every transform is an `nn.Module` called as `t(x, generator)`. Random transforms draw
**per sample** (each image of the batch gets its own shift/scale/angle/crop), so when many
units render in one batch no unit's image is tied to another's; pass a `torch.Generator`
to make a run reproducible, or a `RowGenerators` (one generator per image) to make each
image's draws independent of its batch: row i's values then come from generator i alone,
so a unit gets the same shifts, scales, angles, crops and noise alone or in any batch.
Inputs are images `[N, C, H, W]` or sequences `[N, C, L]`; Pad, Jitter and GaussianNoise
accept both, the geometric warps need images.

A new random transform draws through `rand` / `randn` / `randint` below (they take either
kind of generator). Geometric transforms are `Warp`s (a random affine map each, one
resampling); `ComposedWarp` chains several (and `Jitter`s) into a single resampling.
`TRANSFORMS` names the presets (`standard`, `none`): functions
`spec -> Compose | None`.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import UnifiedVizError
from .params.seeding import RowGenerators
from .registry import Registry

Generator = torch.Generator | RowGenerators | None

#: Transform presets by name: `spec -> Compose | None` (the CLI's --transforms choices).
TRANSFORMS: Registry = Registry("transforms preset")


class Transform(nn.Module):
    """Base class: `forward(x, generator=None)` maps a batch to a batch, keeping gradients."""


class Compose(Transform):
    """Apply transforms in order, all drawing from the same generator (or the same per-row generators)."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        for t in self.transforms:
            x = t(x, generator)
        return x


class Pad(Transform):
    """Pad every spatial side by `width`: `reflect`, or `constant` with `value` (0.5 = mid-grey)."""

    def __init__(self, width: int, mode: str = "reflect", value: float = 0.5) -> None:
        super().__init__()
        if mode not in ("reflect", "constant"):
            raise UnifiedVizError(f"unknown pad mode {mode!r}; use 'reflect' or 'constant'")
        self.width, self.mode, self.value = _non_negative_int("width", width), mode, value

    def forward(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        return _pad(x, self.width, self.mode, self.value)


class Jitter(Transform):
    """Shift each sample by a random whole number of pixels in [-pixels, pixels] per axis.

    The size is kept; pixels shifted in from outside are filled by reflection.
    """

    def __init__(self, pixels: int) -> None:
        super().__init__()
        self.pixels = _non_negative_int("pixels", pixels)

    def forward(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        _check_reflect(x, self.pixels)
        shape = (x.shape[0], x.dim() - 2)
        shifts = randint(-self.pixels, self.pixels + 1, shape, generator)
        return translate(x, shifts)

    def draw_affine(self, n: int, size: Sequence[int], generator: Generator = None):
        # The same draw as forward; a shift of d pixels is 2d/side in [-1, 1] coordinates.
        shifts = randint(-self.pixels, self.pixels + 1, (n, 2), generator).float()
        h, w = size
        dy, dx = shifts.unbind(1)
        one, zero = torch.ones(n), torch.zeros(n)
        return _rows_2x3([one, zero, -2 * dx / w], [zero, one, -2 * dy / h]), tuple(size)


class GaussianNoise(Transform):
    """Add N(0, std) noise. Not clamped to [0, 1]: clamping would zero the gradient of saturated pixels."""

    def __init__(self, std: float) -> None:
        super().__init__()
        if not std >= 0:
            raise UnifiedVizError(f"std must be >= 0, got {std}")
        self.std = std

    def forward(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        noise = randn(x.shape, generator)
        return x + self.std * noise.to(x)


class Warp(Transform):
    """Base of the geometric transforms: each is a random affine map of the output's [-1, 1] grid.

    `draw_affine(n, size, generator)` draws the maps for `n` images of spatial `size` and
    returns (theta `[n, 2, 3]`, the output size); `forward` resamples once with them.
    """

    def draw_affine(self, n: int, size: Sequence[int], generator: Generator = None):
        raise NotImplementedError

    def forward(self, x: torch.Tensor, generator: Generator = None) -> torch.Tensor:
        _need_images(x, self)
        theta, size = self.draw_affine(x.shape[0], x.shape[2:], generator)
        return _warp(x, theta, size)


class RandomScale(Warp):
    """Zoom each image about its centre by a factor picked from `scales` (size kept; >1 zooms in)."""

    def __init__(self, scales: Sequence[float]) -> None:
        super().__init__()
        if not scales or min(scales) <= 0:
            raise UnifiedVizError(f"scales must be a non-empty list of positive factors, got {scales}")
        self.register_buffer("scales", torch.tensor(scales, dtype=torch.float32), persistent=False)

    def draw_affine(self, n: int, size: Sequence[int], generator: Generator = None):
        s = _pick(self.scales, n, generator)
        zero = torch.zeros_like(s)
        return _rows_2x3([1 / s, zero, zero], [zero, 1 / s, zero]), tuple(size)


class RandomRotate(Warp):
    """Rotate each image about its centre: `degrees` is a list of angles to pick from, or a
    number d for a uniform angle in [-d, d]. The rotation is in pixel space, so non-square
    images are not sheared.
    """

    def __init__(self, degrees: float | Sequence[float]) -> None:
        super().__init__()
        self.uniform = isinstance(degrees, (int, float))
        if not self.uniform and not degrees:
            raise UnifiedVizError("degrees must be a number or a non-empty list of angles")
        self.register_buffer("degrees", torch.tensor(degrees, dtype=torch.float32), persistent=False)

    def draw_affine(self, n: int, size: Sequence[int], generator: Generator = None):
        h, w = size
        if self.uniform:
            u = rand((n,), generator)
            angle = (u.to(self.degrees) * 2 - 1) * self.degrees
        else:
            angle = _pick(self.degrees, n, generator)
        a = torch.deg2rad(angle)
        cos, sin, zero = a.cos(), a.sin(), torch.zeros_like(a)
        # affine_grid works in [-1, 1] coordinates; rescaling by the aspect ratio keeps angles true.
        return _rows_2x3([cos, -sin * h / w, zero], [sin * w / h, cos, zero]), (h, w)


class RandomCropResize(Warp):
    """Crop a random box per image and resize it to `size` (H, W), e.g. a ViT's fixed input.

    The box keeps the input's aspect ratio (so it is stretched if `size` has another one),
    covers a fraction of the input's area drawn uniformly from `scale`, and lies inside it.
    """

    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.5, 1.0)) -> None:
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise UnifiedVizError(f"size must be (H, W) with positive ints, got {size}")
        if not 0 < scale[0] <= scale[1] <= 1:
            raise UnifiedVizError(f"scale must be (min, max) area fractions with 0 < min <= max <= 1, got {scale}")
        self.scale = scale

    def draw_affine(self, n: int, size: Sequence[int], generator: Generator = None):
        lo, hi = self.scale
        u = rand((n, 3), generator)
        side = (lo + (hi - lo) * u[:, 0]).sqrt()
        # Box centre in [-1, 1] coordinates, drawn so the box stays inside the image.
        cx, cy = ((u[:, 1:] * 2 - 1) * (1 - side[:, None])).unbind(1)
        zero = torch.zeros_like(side)
        return _rows_2x3([side, zero, cx], [zero, side, cy]), self.size


class ComposedWarp(Warp):
    """Several geometric transforms (`Warp`s and `Jitter`s) as ONE resampling of the input.

    Each part draws exactly what it draws alone, in order, so the distribution of shifts,
    scales, angles and crops is the same as the chain's; their affine maps are multiplied and
    the image is resampled once (one bilinear interpolation instead of one per part: sharper,
    and one `grid_sample` instead of three plus two gathers). Differences from running the
    parts one by one: less interpolation blur, and a jitter's border is filled like the warps'
    (black outside the input) instead of by reflection.
    """

    def __init__(self, parts: Sequence[Transform]) -> None:
        super().__init__()
        for part in parts:
            if not hasattr(part, "draw_affine"):
                raise UnifiedVizError(f"ComposedWarp composes affine transforms; {type(part).__name__} is not one")
        self.parts = nn.ModuleList(parts)

    def draw_affine(self, n: int, size: Sequence[int], generator: Generator = None):
        total = torch.eye(3, dtype=torch.float64).expand(n, 3, 3)
        size = tuple(size)
        # Part k maps part k's output grid into its input: input = A_1 @ ... @ A_k @ output.
        for part in self.parts:
            theta, size = part.draw_affine(n, size, generator)
            total = total @ torch.cat([theta.double().cpu(), _LAST_ROW.expand(n, 1, 3)], 1)
        return total[:, :2].float(), size


def translate(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Shift sample i by `shifts[i]` whole pixels per spatial axis (out[p] = x[p - shift]), reflect-filled."""
    pad = int(shifts.abs().max()) if shifts.numel() else 0
    if pad == 0:
        return x
    out = _pad(x, pad, "reflect")
    shifts = shifts.to(x.device)
    for axis, length in enumerate(x.shape[2:], start=2):
        index = torch.arange(length, device=x.device) + pad - shifts[:, axis - 2, None]  # [N, length]
        view = [x.shape[0]] + [1] * (x.dim() - 1)
        view[axis] = length
        target = list(out.shape)
        target[axis] = length
        out = out.gather(axis, index.view(view).expand(target))
    return out


@TRANSFORMS.register("standard", help="Lucid-style pad, jitter, scale, rotate, jitter, crop to the model's size")
def standard_transforms(spec) -> Compose:
    """A robust default chain for a model's `InputSpec`; the output has exactly `spec.size`.

    Images: Lucid's pad / jitter / scale / rotate / jitter, with pixel amounts scaled from
    224 px to the model's size, then a random crop resized back to `spec.size`; all after the
    pad is one `ComposedWarp` (one resampling; as separate passes they cost 12-17% of a step).
    Sequences (L,): a small jitter along time plus faint noise.
    """
    size = tuple(spec.size)
    if len(size) == 1:
        return Compose([Jitter(max(1, size[0] // 32)), GaussianNoise(0.01)])
    side = min(size)

    def px(at_224: int) -> int:
        return max(1, round(at_224 * side / 224))

    return Compose([
        Pad(px(12), mode="constant", value=0.5),
        ComposedWarp([
            Jitter(px(8)),
            RandomScale([1 + (i - 5) / 50 for i in range(11)]),
            RandomRotate(list(range(-10, 11)) + [0] * 5),
            Jitter(px(4)),
            RandomCropResize(size, scale=(0.8, 1.0)),
        ]),
    ])


@TRANSFORMS.register("none", help="no transforms: the model sees the param's output as it is")
def no_transforms(spec) -> None:
    return None


def rand(shape: Sequence[int], generator: Generator = None) -> torch.Tensor:
    """Uniform [0, 1) of `shape` (first dim = batch) from a torch.Generator or per row from `RowGenerators`."""
    if isinstance(generator, RowGenerators):
        return generator.rand(shape)
    return torch.rand(tuple(shape), generator=generator, device=_device(generator))


def randn(shape: Sequence[int], generator: Generator = None) -> torch.Tensor:
    """Standard normal of `shape` (first dim = batch), like `rand`."""
    if isinstance(generator, RowGenerators):
        return generator.randn(shape)
    return torch.randn(tuple(shape), generator=generator, device=_device(generator))


def randint(low: int, high: int, shape: Sequence[int], generator: Generator = None) -> torch.Tensor:
    """Integers in [low, high) of `shape` (first dim = batch), like `rand`."""
    if isinstance(generator, RowGenerators):
        return generator.randint(low, high, shape)
    return torch.randint(low, high, tuple(shape), generator=generator, device=_device(generator))


def _pad(x: torch.Tensor, width: int, mode: str, value: float = 0.5) -> torch.Tensor:
    if mode == "reflect":
        _check_reflect(x, width)
    return F.pad(x, [width] * 2 * (x.dim() - 2), mode=mode, value=value if mode == "constant" else None)


_LAST_ROW = torch.tensor([[[0.0, 0.0, 1.0]]], dtype=torch.float64)


def _rows_2x3(top: Sequence[torch.Tensor], bottom: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-sample 2x3 matrices `[n, 2, 3]` from the entries of their two rows (each `[n]`)."""
    return torch.stack([torch.stack(list(top), 1), torch.stack(list(bottom), 1)], 1)


def _warp(x: torch.Tensor, theta: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resample `x` at `theta` applied to the output's [-1, 1] grid; zeros (black) fill outside.

    Black, not reflection, as in Lucid: a flat grey start stays flat under reflection, so a
    unit that is off on grey gets no gradient and never starts (4 of 16 ResNet-20 units).
    """
    grid = F.affine_grid(theta.to(x), [x.shape[0], x.shape[1], *size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _pick(values: torch.Tensor, n: int, generator: Generator) -> torch.Tensor:
    """One of `values` per sample."""
    index = randint(0, len(values), (n,), generator)
    return values[index.to(values.device)]


def _device(generator: Generator) -> torch.device:
    """Draw on the generator's device (CPU by default) so the same seed gives the same draws."""
    return generator.device if isinstance(generator, torch.Generator) else torch.device("cpu")


def _check_reflect(x: torch.Tensor, width: int) -> None:
    if x.dim() not in (3, 4):
        raise UnifiedVizError(f"expected [N, C, H, W] or [N, C, L], got shape {tuple(x.shape)}")
    if width >= min(x.shape[2:]):
        raise UnifiedVizError(
            f"cannot reflect-pad/jitter by {width} px an input of size {tuple(x.shape[2:])}; "
            "use fewer pixels than the input's smallest side"
        )


def _need_images(x: torch.Tensor, transform: Transform) -> None:
    if x.dim() != 4:
        raise UnifiedVizError(
            f"{type(transform).__name__} needs images [N, C, H, W], got shape {tuple(x.shape)}; "
            "for 1-D sequences use Jitter, Pad or GaussianNoise"
        )


def _non_negative_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnifiedVizError(f"{name} must be a non-negative int, got {value!r}")
    return value
