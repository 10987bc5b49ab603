"""Classifiers for the experiments: ResNet18 (paper), or any `torchvision:`/`timm:` model by name.

Every model gets a fresh `num_classes` head (after an optional dropout, which BALD samples)
and is wrapped in a `VizModel` whose input size is the data's, so layer names such as
`layer4` are the network's own and inputs are [0, 1] images.
"""
from __future__ import annotations

import torch
from torch import nn

from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import InputSpec, VizModel, load_model

from .config import ModelConfig


def build_model(cfg: ModelConfig, num_classes: int, image_size: int) -> VizModel:
    """A freshly initialised (or ImageNet-pretrained, with a new head) classifier; seed torch first."""
    if cfg.name == "resnet18":
        source = "torchvision:resnet18"
    elif cfg.name.startswith(("timm:", "torchvision:")):
        source = cfg.name
    else:
        raise UnifiedVizError(
            f"model.name {cfg.name!r} is not known: use resnet18, torchvision:NAME or timm:NAME"
        )
    if cfg.cifar_stem and cfg.name != "resnet18":
        raise UnifiedVizError("model.cifar_stem applies to model.name resnet18 only: drop it for other models")
    # torchvision refuses pretrained weights with another class count, so swap its head after.
    keep_head = cfg.pretrained and source.startswith("torchvision:")
    try:
        viz = load_model(source, pretrained=cfg.pretrained, num_classes=None if keep_head else num_classes)
    except UnifiedVizError as exc:
        # load_model's advice names its own CLI flags; say it in config keys instead.
        if not str(exc).startswith("could not download"):
            raise
        raise UnifiedVizError(
            f"model.pretrained needs {source}'s ImageNet weights, which could not be downloaded: put them in the "
            f"torch hub cache ({torch.hub.get_dir()}/checkpoints) or timm's Hugging Face cache, or set model.pretrained: false"
        ) from None
    net = viz.net
    name, head = _last_linear(net, cfg.name)
    if keep_head:
        head = nn.Linear(head.in_features, num_classes)
    if cfg.dropout > 0:
        head = nn.Sequential(nn.Dropout(cfg.dropout), head)
    net.set_submodule(name, head)
    if cfg.cifar_stem:
        # The usual CIFAR ResNet stem: keep 32x32 resolution into layer1.
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
    spec = InputSpec((image_size, image_size), 3, viz.spec.mean, viz.spec.std)
    return VizModel(net, spec, source=source)


def _last_linear(net: nn.Module, name: str) -> tuple[str, nn.Linear]:
    """The classification head: the last `nn.Linear` registered in the network."""
    found = [(n, m) for n, m in net.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise UnifiedVizError(f"model {name!r} has no nn.Linear classification head to replace: pick a classifier")
    return found[-1]
