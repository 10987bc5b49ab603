"""Small models that ship with the package, addressable by name (`builtin:digits-cnn`).

`digits-cnn` and `digits-vit` come with weights trained offline on scikit-learn digits
(scripts/train_builtins.py); `gunpoint-cnn`, a 1-D CNN, on UCR GunPoint
(scripts/train_sequence_builtins.py); `cifar_resnet20` with the real CIFAR-10 weights of
akamaster/pytorch_resnet_cifar10 (BSD-2-Clause, scripts/convert_resnet20.py); the deeper CIFAR
ResNets `cifar_resnet32`, `cifar_resnet44`, `cifar_resnet56` and `cifar_resnet110` are
architectures only, for user checkpoints.
"""
from __future__ import annotations

from typing import Callable

from ...errors import UnifiedVizError
from ..spec import VizModel
from ._weights import builtin_metadata, weights_path
from .cifar_resnet import CIFAR10_CLASSES, CIFAR10_SPEC, CIFAR_RESNETS, cifar_resnet, cifar_resnet20
from .cifar_snn import cifar10_snn
from .diabetes_mlp import diabetes_mlp
from .digits_cnn import DIGITS_SPEC, digits_cnn
from .digits_vit import digits_vit
from .gunpoint_cnn import GUNPOINT_CLASSES, GUNPOINT_SPEC, gunpoint_cnn

BUILTINS: dict[str, Callable[..., VizModel]] = {
    "digits-cnn": digits_cnn,
    "digits-vit": digits_vit,
    "diabetes-mlp": diabetes_mlp,
    "gunpoint-cnn": gunpoint_cnn,
    "cifar10-snn": cifar10_snn,  # spiking, snnTorch (the `spiking` extra); MANGO's weights
    **CIFAR_RESNETS,
}


def build_builtin(name: str, *, load_weights: bool = True) -> VizModel:
    """Build a built-in model by name; `load_weights` loads its shipped weights if it has any."""
    if name not in BUILTINS:
        raise UnifiedVizError(f"unknown built-in model {name!r}; valid names: {', '.join(BUILTINS)}")
    return BUILTINS[name](load_weights=load_weights)


__all__ = [
    "BUILTINS", "build_builtin", "builtin_metadata", "weights_path",
    "digits_cnn", "digits_vit", "cifar_resnet", "cifar_resnet20",
    "DIGITS_SPEC", "CIFAR10_SPEC", "CIFAR10_CLASSES",
    "gunpoint_cnn", "GUNPOINT_SPEC", "GUNPOINT_CLASSES",
]
