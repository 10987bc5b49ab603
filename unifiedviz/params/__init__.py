"""Parameterisations: where the engine's images come from, each an `nn.Module` returning [0, 1]."""
from .base import Param
from .colour import decorrelated_to_rgb, rgb_to_decorrelated
from .factory import PARAMS, make_param
from .fourier import FourierParam
from .generator import GeneratorParam
from .maco import MacoParam, magnitude_from_images
from .perturbation import PerturbationParam
from .pixel import PixelParam
from .sequence import SequenceParam, smoothness_penalty

__all__ = [
    "Param",
    "PixelParam",
    "FourierParam",
    "MacoParam",
    "magnitude_from_images",
    "GeneratorParam",
    "PerturbationParam",
    "SequenceParam",
    "smoothness_penalty",
    "make_param",
    "PARAMS",
    "decorrelated_to_rgb",
    "rgb_to_decorrelated",
]
