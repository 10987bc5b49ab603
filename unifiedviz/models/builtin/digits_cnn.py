"""`digits-cnn`: a small three-stage CNN for 32x32 scikit-learn digits.

A flat `nn.Sequential` with named stages, so every unit has a short readable address
(`conv2:channel=5`, `relu3`, `fc:class=7`); ReLUs are separate non-inplace modules so a hook
on any stage sees that stage's own output.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ...datasets import DIGITS_CLASSES
from ..spec import InputSpec, VizModel
from ._weights import load_builtin_weights

NAME = "digits-cnn"
# Pixel mean/std of the 32x32 train split (measured: 0.306, 0.324).
DIGITS_SPEC = InputSpec(size=(32, 32), channels=1, mean=(0.31,), std=(0.32,))


def digits_cnn_net() -> nn.Sequential:
    """conv 16 -> 32 -> 64 channels at 32, 16, 8 pixels; 4x4x64 features -> 10 logits."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(1, 16, 3, padding=1)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(16, 32, 3, padding=1)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool2d(2)),
        ("conv3", nn.Conv2d(32, 64, 3, padding=1)),
        ("relu3", nn.ReLU()),
        ("pool3", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("dropout", nn.Dropout(0.3)),
        ("fc", nn.Linear(64 * 4 * 4, len(DIGITS_CLASSES))),
    ]))


def digits_cnn(*, load_weights: bool = True) -> VizModel:
    """The digits CNN in eval mode; with `load_weights`, the shipped trained weights."""
    net = digits_cnn_net()
    if load_weights:
        load_builtin_weights(net, NAME)
    return VizModel(net, DIGITS_SPEC, source=f"builtin:{NAME}", class_names=DIGITS_CLASSES).eval()
