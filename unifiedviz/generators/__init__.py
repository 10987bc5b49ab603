"""Image generators for DGN-AM (`--param generator --generator NAME`): the `GENERATORS` registry.

A generator maps a latent code to an image in [0, 1]. Each registered entry builds a
`Generator`: the module plus its DGN-AM recipe (the latent's shape, the clip measured by
encoding real images, the L2 decay and the initial spread). Latents are *whitened*: the module
takes `z` and decodes `mean + std * z` (per latent channel, mean and spread measured on real
images), so one learning rate means the same relative step for every generator.

    builtin:digits-gen       VAE on scikit-learn digits, latent 16     (scripts/train_digits_gen.py)
    builtin:cifar10-vqvae    the CIFAR-10 VQ-VAE decoder, latent 64x8x8 (scripts/convert_vqvae.py);
                             snap=True quantises to its codebook (straight-through)

Any `nn.Module` latent -> image in [0, 1] is accepted wherever a name is (`as_generator`).
Adding one: a function here with `@GENERATORS.register("name")` returning a `Generator`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import UnifiedVizError
from ..registry import Registry

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

GENERATORS: Registry[Callable[..., "Generator"]] = Registry("generator")


@dataclass
class Generator:
    """A frozen latent -> image module and its DGN-AM recipe (the defaults of `GeneratorParam.from_spec`).

    `output_range` is the module's output range (mapped to [0, 1]); `clip` (lo, hi) bounds each
    latent coordinate (tensors broadcast against `latent_shape`); `decay` the L2 decay per step;
    `sd` the spread of the initial codes.
    """

    module: nn.Module
    latent_shape: tuple[int, ...]
    output_range: tuple[float, float] = (0.0, 1.0)
    clip: tuple | None = None
    decay: float = 0.0
    sd: float = 1.0
    name: str = "module"

    def output_shape(self) -> tuple[int, ...]:
        """(C, H, W) of one image, found by decoding a zero code."""
        was_training = self.module.training
        self.module.eval()  # as GeneratorParam runs it (BatchNorm would refuse a batch of one in train mode)
        try:
            with torch.no_grad():
                p = next(self.module.parameters(), None)
                z = torch.zeros(1, *self.latent_shape, device=p.device if p is not None else "cpu")
                return tuple(self.module(z).shape[1:])
        finally:
            self.module.train(was_training)


class Whitened(nn.Module):
    """`module(mean + std * z)`: codes in units of the real latents' spread, per channel (dim 1)."""

    def __init__(self, module: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.module = module
        shape = (1, -1, *([1] * (len(getattr(module, "latent_shape", (0,))) - 1)))
        self.register_buffer("mean", mean.view(shape).clone())
        self.register_buffer("std", std.view(shape).clone())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.module(self.mean + self.std * z)


def _load(name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    path = WEIGHTS_DIR / name
    if not path.is_file():
        raise UnifiedVizError(f"weights for generator {name!r} are missing ({path}); reinstall unifiedviz")
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})


def generator_metadata(name: str) -> dict[str, str]:
    """Metadata shipped with a built-in generator's weights (training recipe, measured quality)."""
    files = {"builtin:digits-gen": "digits_gen.safetensors", "builtin:cifar10-vqvae": "cifar10_vqvae.safetensors"}
    if name not in files:
        raise UnifiedVizError(GENERATORS.unknown_message(name))
    return _load(files[name])[1]


@GENERATORS.register("builtin:digits-gen", help="VAE on scikit-learn digits: latent 16 -> 1x32x32")
def digits_gen() -> Generator:
    from .digits_vae import DigitsDecoder

    tensors, _ = _load("digits_gen.safetensors")
    decoder = DigitsDecoder()
    decoder.load_state_dict({k[len("decoder."):]: v for k, v in tensors.items() if k.startswith("decoder.")})
    # The VAE's prior is N(0, I): codes are already whitened. Clip: the range of the encoded train digits.
    return Generator(decoder.eval(), (16,), (0.0, 1.0), clip=(tensors["latent_lo"], tensors["latent_hi"]),
                     decay=0.01, sd=1.0, name="builtin:digits-gen")


@GENERATORS.register("builtin:cifar10-vqvae", help="CIFAR-10 VQ-VAE decoder (mango, MIT): latent 64x8x8 -> 3x32x32")
def cifar10_vqvae(snap: bool = False) -> Generator:
    from .vqvae import VQVAE, VQVAEGenerator

    tensors, _ = _load("cifar10_vqvae.safetensors")
    vqvae = VQVAE()
    vqvae.load_state_dict({k: v for k, v in tensors.items() if not k.startswith("latent_")})
    mean, std = tensors["latent_mean"], tensors["latent_std"]
    module = Whitened(VQVAEGenerator(vqvae.eval(), snap=snap), mean, std)
    view = (-1, 1, 1)
    lo = ((tensors["latent_lo"] - mean) / std).view(view)
    hi = ((tensors["latent_hi"] - mean) / std).view(view)
    return Generator(module.eval(), (64, 8, 8), (0.0, 1.0), clip=(lo, hi), decay=0.01, sd=0.5,
                     name="builtin:cifar10-vqvae" + (" (snap)" if snap else ""))


def as_generator(generator, *, latent_shape: int | Sequence[int] | None = None, **options) -> Generator:
    """A `Generator` from a registered name (options such as `snap=True` go to its builder), a
    `Generator`, or any module latent -> image in [0, 1] (then `latent_shape` is required unless the
    module has a `latent_shape` attribute)."""
    if isinstance(generator, Generator):
        if options:
            raise UnifiedVizError(f"generator options {sorted(options)} apply only to a registered name")
        return generator
    if isinstance(generator, str):
        build = GENERATORS.get(generator)
        try:
            return build(**options)
        except TypeError:
            raise UnifiedVizError(f"unknown option(s) {', '.join(sorted(options))} for generator {generator!r}") from None
    if isinstance(generator, nn.Module):
        if options:
            raise UnifiedVizError(f"generator options {sorted(options)} apply only to a registered name")
        shape = latent_shape if latent_shape is not None else getattr(generator, "latent_shape", None)
        if shape is None:
            raise UnifiedVizError("a generator module needs latent_shape (or a latent_shape attribute)")
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return Generator(generator, shape, name=type(generator).__name__)
    raise UnifiedVizError(f"generator must be a registered name ({', '.join(GENERATORS.names())}) or an nn.Module, "
                          f"got {type(generator).__name__}")


__all__ = ["GENERATORS", "Generator", "Whitened", "as_generator", "generator_metadata"]
