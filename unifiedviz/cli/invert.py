"""`unifiedviz invert MODEL [--config configs/inversion/digits.yaml] [--set key=value] --out DIR`."""
from __future__ import annotations

from dataclasses import dataclass

from ..inversion.config import InversionConfig
from ..options import ResumeOptions, option
from .command import Command, ModelOptions, register


@dataclass
class InvertOptions(ModelOptions, ResumeOptions, InversionConfig):
    out: str = option("runs/invert", "output folder: new, or an earlier invert run's (with --resume or --force)",
                      metavar="DIR")


@register("invert")
class Invert(Command):
    help = "network inversion: train a label-conditioned generator against a frozen classifier"
    description = ("Trains a generator (noise + label vector + conditioning matrix -> image, or -> a latent code of a "
                   "pretrained generator with --prior, the digits default builtin:digits-gen) with cross-entropy to "
                   "the label, feature diversity and orthogonality, total variation and a pixel-range term "
                   "(and a latent L2 with a prior; Lightning; checkpoints every checkpoint-every steps; --resume continues a killed run). "
                   "Writes samples/class_K.png, samples.safetensors, generator.safetensors and metrics.json. "
                   "Defaults: configs/inversion/digits.yaml.")
    options = InvertOptions

    def run(self, opts: InvertOptions) -> int:
        from ..inversion.train import run_inversion

        m = run_inversion(opts.model, opts, opts.out, resume=opts.resume, force=opts.force,
                          progress=not opts.quiet, weights=opts.weights)
        print(f"step {m['steps']}: {m['model']} reads {m['accuracy']:.1%} of {m['samples_per_class']} samples per class "
              f"as their label; within-class feature cosine {m['feature_cosine_within_class']:.3f}")
        print(f"wrote samples/, generator.safetensors and metrics.json to {opts.out}")
        return 0
