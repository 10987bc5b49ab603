"""`cifar_resnet20/32/44/56/110`: the CIFAR-10 ResNets of He et al. (2015), option-A shortcuts.

Depth 6n+2 with n BasicBlocks in each of three stages (16/32/64 channels at 32/16/8 px):
n = 3, 5, 7, 9, 18 for ResNet-20, 32, 44, 56, 110. Parameter and buffer names match the widely
used akamaster/pytorch_resnet_cifar10 checkpoints (`conv1`, `bn1`,
`layer{1,2,3}.{0..n-1}.{conv1,bn1,conv2,bn2}`, `linear`), so such a checkpoint loads strictly
once its DataParallel `module.` prefix is stripped (`load_model(..., weights=PATH)` does that).
ResNet-20 ships with that project's trained CIFAR-10 weights (BSD-2-Clause,
`weights/LICENSE.resnet20`; converted by scripts/convert_resnet20.py; 91.78 % test accuracy as
reported by its authors), so `builtin:cifar_resnet20` is a real classifier offline; the deeper
ones are architectures only. ReLUs, the shortcut and the pooling are parameter-free modules so
each is hookable without changing the key names; every block is hookable as `layerS.B`.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..spec import InputSpec, VizModel
from ._weights import load_builtin_weights

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10_SPEC = InputSpec(size=(32, 32), channels=3, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
#: depth -> BasicBlocks per stage (depth = 6 * blocks + 2).
DEPTHS: dict[int, int] = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18}
#: depths whose trained weights ship with the package.
SHIPPED = {20}


class ShortcutA(nn.Module):
    """Option A: subsample by 2 and zero-pad channels, no parameters."""

    def __init__(self, pad_channels: int) -> None:
        super().__init__()
        self.pad_channels = pad_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.pad_channels
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, p, p))

    def extra_repr(self) -> str:
        return f"pad_channels={self.pad_channels}"


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        needs_projection = stride != 1 or in_planes != planes
        self.shortcut = ShortcutA((planes - in_planes) // 2) if needs_projection else nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        # Out-of-place add: an in-place `+=` would rewrite the tensor a hook on bn2 captured.
        out = self.bn2(self.conv2(out)) + self.shortcut(x)
        return self.relu2(out)


class CifarResNet(nn.Module):
    def __init__(self, num_blocks: tuple[int, int, int] = (3, 3, 3), num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        in_planes = 16
        for i, (planes, stride) in enumerate(zip((16, 32, 64), (1, 2, 2)), start=1):
            blocks = []
            for b in range(num_blocks[i - 1]):
                blocks.append(BasicBlock(in_planes, planes, stride if b == 0 else 1))
                in_planes = planes
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():  # the reference implementation's initialisation
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(self.flatten(self.avgpool(x)))


def cifar_resnet_net(depth: int) -> CifarResNet:
    """The bare network (no normalisation) of ResNet-`depth`, depth one of 20, 32, 44, 56, 110."""
    if depth not in DEPTHS:
        raise ValueError(f"CIFAR ResNet depth must be one of {', '.join(map(str, DEPTHS))}, not {depth}")
    n = DEPTHS[depth]
    return CifarResNet((n, n, n))


def cifar_resnet(depth: int, *, load_weights: bool = True) -> VizModel:
    """ResNet-`depth` in eval mode, with CIFAR-10's class names and normalisation.

    `load_weights`: ResNet-20 loads its shipped trained weights; the other depths ship none and
    stay randomly initialised (load a checkpoint: `load_model("builtin:cifar_resnet56", weights=PATH)`).
    """
    net = cifar_resnet_net(depth)
    if load_weights and depth in SHIPPED:
        load_builtin_weights(net, f"cifar_resnet{depth}")
    return VizModel(net, CIFAR10_SPEC, source=f"builtin:cifar_resnet{depth}", class_names=CIFAR10_CLASSES).eval()


def _member(depth: int) -> Callable[..., VizModel]:
    def build(*, load_weights: bool = True) -> VizModel:
        return cifar_resnet(depth, load_weights=load_weights)

    build.__name__ = build.__qualname__ = f"cifar_resnet{depth}"
    build.__doc__ = (f"CIFAR-10 ResNet-{depth} ({DEPTHS[depth]} blocks per stage) in eval mode; "
                     + ("`load_weights`: the shipped trained weights (91.78 % reported test accuracy)."
                        if depth in SHIPPED else "randomly initialised (no weights ship): load a checkpoint."))
    return build


#: Every family member by its built-in name: `cifar_resnet20` ... `cifar_resnet110`.
CIFAR_RESNETS: dict[str, Callable[..., VizModel]] = {f"cifar_resnet{d}": _member(d) for d in DEPTHS}
cifar_resnet20 = CIFAR_RESNETS["cifar_resnet20"]  # importable by name, as before the family existed
