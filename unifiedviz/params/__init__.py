"""Parameterisations: where the engine's images come from, each an `nn.Module` returning [0, 1].

`PARAMS` (a `unifiedviz.registry.Registry`) lists those buildable from a model's input spec;
the import order below is the order of `PARAMS.names()` (CLI choices).
"""
from .base import PARAMS, Param
from .pixel import PixelParam
from .fourier import FourierParam
from .maco import MacoParam, magnitude_from_images
from .sequence import SequenceParam, smoothness_penalty
from .generator import GeneratorParam
from .codes import CodesParam
from .latent_grid import LatentGridParam
from .lowres import LowResParam
from .space import SearchSpace, search_space
from .perturbation import PerturbationParam
from .colour import decorrelated_to_rgb, rgb_to_decorrelated
from .factory import make_param
from .seeding import RowGenerators, image_seed, stable_seed

__all__ = [
    "Param",
    "PixelParam",
    "FourierParam",
    "MacoParam",
    "magnitude_from_images",
    "GeneratorParam",
    "CodesParam",
    "LatentGridParam",
    "LowResParam",
    "SearchSpace",
    "search_space",
    "PerturbationParam",
    "SequenceParam",
    "smoothness_penalty",
    "make_param",
    "PARAMS",
    "RowGenerators",
    "image_seed",
    "stable_seed",
    "decorrelated_to_rgb",
    "rgb_to_decorrelated",
]
