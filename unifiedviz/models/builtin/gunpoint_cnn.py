"""`gunpoint-cnn`: a small 1-D CNN for the UCR GunPoint set (hand x-position, 150 steps, 2 classes).

Trained offline by scripts/train_sequence_builtins.py on GunPoint's 50 training cases (aeon's
bundled copy); the weights ship with the package, so the model needs neither aeon nor data.
Inputs are in [0, 1] like every model here: the contract's `value_range` (-3, 3) maps them to
the z-normalised values of the archive (GunPoint lies in [-2.5, 2.4]). A flat `nn.Sequential`
with named stages: `conv1:channel=3`, `conv3:channel=0:32`, `fc:class=1`.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..spec import InputSpec, VizModel
from ._weights import load_builtin_weights

NAME = "gunpoint-cnn"
GUNPOINT_CLASSES = ["Gun-Draw", "Point"]  # archive labels 1, 2
GUNPOINT_LENGTH = 150
GUNPOINT_SPEC = InputSpec(size=(GUNPOINT_LENGTH,), channels=1, mean=(0.0,), std=(1.0,), value_range=(-3.0, 3.0))


def gunpoint_cnn_net(classes: int = 2) -> nn.Sequential:
    """conv 16 -> 32 -> 32 channels (kernels 7, 5, 3) at 150, 75, 37 steps; global mean; linear."""
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv1d(1, 16, 7, padding=3)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool1d(2)),
        ("conv2", nn.Conv1d(16, 32, 5, padding=2)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.MaxPool1d(2)),
        ("conv3", nn.Conv1d(32, 32, 3, padding=1)),
        ("relu3", nn.ReLU()),
        ("gap", nn.AdaptiveAvgPool1d(1)),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(32, classes)),
    ]))


def gunpoint_cnn(*, load_weights: bool = True) -> VizModel:
    """The GunPoint CNN in eval mode; with `load_weights`, the shipped trained weights."""
    net = gunpoint_cnn_net()
    if load_weights:
        load_builtin_weights(net, NAME)
    return VizModel(net, GUNPOINT_SPEC, source=f"builtin:{NAME}", class_names=GUNPOINT_CLASSES).eval()
