"""Network inversion (Suhail, "Network Inversion and Its Applications"): a label-conditioned
generator trained against a frozen classifier; `unifiedviz invert` (docs/generative.md)."""
from .config import InversionConfig
from .generator import ConditionedGenerator, LatentConditionedGenerator
from .losses import cosine_diversity, cross_entropy, orthogonality, pixel_range, total_variation
from .train import (diversity, inversion_loss, load_generator, read_as, run_inversion, sample, save_generator,
                    train_inversion)

__all__ = ["InversionConfig", "ConditionedGenerator", "LatentConditionedGenerator", "cross_entropy", "cosine_diversity", "orthogonality",
           "total_variation", "pixel_range", "train_inversion", "run_inversion", "inversion_loss", "sample",
           "read_as", "diversity", "save_generator", "load_generator"]
