"""The settings of a network-inversion run; the defaults are `configs/inversion/digits.yaml`
(digits-cnn through the builtin:digits-gen prior, a few minutes on a CPU). `prior: null` draws pixels."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..options import option


@dataclass
class InversionConfig:
    steps: int = option(600, "training steps of the generator", minimum=1)
    batch_size: int = option(100, "images per step (labels cycle 0..K-1 through the batch)", minimum=2)
    lr: float = option(2e-3, "Adam learning rate", minimum=0)
    latent_dim: int = option(64, "noise dimension", minimum=1)
    width: int = option(64, "channels of the decoder's first feature map", minimum=4)
    prior: str | None = option("builtin:digits-gen", "data prior: draw the latent code of this pretrained generator (a "
                                     "unifiedviz.generators name, e.g. builtin:digits-gen) instead of pixels",
                               metavar="GENERATOR")
    prior_lr: float = option(0.0, "learning rate of the prior's decoder (0: frozen)", minimum=0)
    loss_prior: float = option(0.01, "weight of the latent L2 (mean squared code, in units of real latents' "
                                    "spread) with a prior", minimum=0)
    feature_layer: str | None = option(None, "layer whose features the diversity losses read (default: the one "
                                             "feeding the classifier head)", metavar="NAME")
    loss_ce: float = option(1.0, "weight of cross-entropy to the conditioning label", minimum=0)
    loss_diversity: float = option(3.0, "weight of the mean feature cosine similarity of same-label samples",
                                   minimum=0)
    loss_orthogonality: float = option(3.0, "weight of the Gram-matrix-vs-identity feature loss", minimum=0)
    loss_tv: float = option(0.5, "weight of total variation", minimum=0)
    loss_range: float = option(10.0, "weight of the pixel-range term (outside [0, 1])", minimum=0)
    checkpoint_every: int = option(100, "steps between checkpoints (checkpoints/last.safetensors)", minimum=1)
    samples_per_class: int = option(100, "samples per class written and measured", minimum=1)
    accelerator: str = option("cpu", "Lightning accelerator (cpu, gpu, auto)")
    seed: int = option(0, "seed of the generator's initialisation and of every step's noise")


#: Keys that may differ when a run is resumed (they do not change what the steps compute).
RESUMABLE = {"steps", "checkpoint_every", "samples_per_class", "accelerator"}


def config_dict(cfg) -> dict:
    """The InversionConfig fields of `cfg` (an InversionConfig or a command's options that extend it)."""
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(InversionConfig)}
