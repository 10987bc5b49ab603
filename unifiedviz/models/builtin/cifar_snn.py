"""`cifar10-snn`: the spiking CIFAR-10 CNN of iabs-neuro/mango (MIT, `weights/LICENSE.mango`), in snnTorch.

The network whose neurons the MANGO paper maximises without gradients: leaky integrate-and-fire
layers (snnTorch `Leaky`, beta 0.9, threshold 1, reset by subtraction) between convolutions,

    conv0 5x5 3->200, max-pool 3 s2 p1, spiking0, conv1 5x5 200->64, max-pool 2 s2, spiking1,
    flatten 1600, linear1 1600->100, spiking2, linear2 100->10, ReLU, final_spiking

The same static image is fed at each of `num_steps` time steps (trained with 128) after every
membrane is reset; `spike_trains(x)` is the output spikes `[T, B, 10]` and the forward pass
returns each class's spike rate (mean over T), the class score `class=N` reads. Because the
input is static, `conv0` and `pool0` are computed once per forward pass, not once per step
(their output is the same at every step); every spiking layer and what follows it fires once
per step, so the Adapter lists `spiking0#*` etc. as one time-stepped layer (a spike count).

Cost on one CPU thread: one forward of one image at 128 steps is about 0.2 s (`bench/gradient_free_spiking.py`).
Weights converted by scripts/convert_snn.py; the package never reads the original file.
"""
from __future__ import annotations

import torch
from torch import nn

from ...errors import UnifiedVizError
from ..spec import InputSpec, VizModel
from ._weights import load_builtin_weights
from .cifar_resnet import CIFAR10_CLASSES

NAME = "cifar10-snn"
#: the normalisation MANGO trained it with (CIFAR-10 channel mean/std)
SNN_SPEC = InputSpec(size=(32, 32), channels=3, mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616))
TRAINED_STEPS = 128
BETA = 0.9


def leaky() -> nn.Module:
    """One LIF layer as trained: states kept inside the module (`init_hidden`), reset by subtraction."""
    try:
        import snntorch
        from snntorch import surrogate
    except ImportError:
        raise UnifiedVizError("builtin:cifar10-snn needs snnTorch: pip install 'unifiedviz[spiking]'") from None
    # fast-sigmoid surrogate (slope 10) as in training: it only matters for gradient-based use
    return snntorch.Leaky(beta=BETA, threshold=1.0, spike_grad=surrogate.fast_sigmoid(slope=10), init_hidden=True,
                          reset_mechanism="subtract")


class SpikingCifarCNN(nn.Module):
    """MANGO's spiking CIFAR-10 CNN; `forward` returns spike rates `[B, 10]` over `num_steps` steps."""

    def __init__(self, num_steps: int = TRAINED_STEPS) -> None:
        super().__init__()
        if num_steps < 1:
            raise UnifiedVizError(f"num_steps must be at least 1, got {num_steps}")
        self.num_steps = num_steps
        self.conv0 = nn.Conv2d(3, 200, 5)
        self.pool0 = nn.MaxPool2d(3, stride=2, padding=1)
        self.spiking0 = leaky()
        self.conv1 = nn.Conv2d(200, 64, 5)
        self.pool1 = nn.MaxPool2d(2, stride=2)
        self.spiking1 = leaky()
        self.flatten = nn.Flatten()
        self.linear1 = nn.Linear(64 * 5 * 5, 100)
        self.spiking2 = leaky()
        self.linear2 = nn.Linear(100, 10)
        self.relu = nn.ReLU()
        self.final_spiking = leaky()

    def lif_layers(self) -> list[nn.Module]:
        return [self.spiking0, self.spiking1, self.spiking2, self.final_spiking]

    def reset(self) -> None:
        """Zero every membrane (per instance: snnTorch's class-wide reset would touch other networks)."""
        for lif in self.lif_layers():
            lif.mem = torch.zeros(0, device=lif.mem.device)

    def spike_trains(self, x: torch.Tensor) -> torch.Tensor:
        """Output spikes `[num_steps, B, 10]` for a normalised image batch fed at every step."""
        self.reset()
        current0 = self.pool0(self.conv0(x))  # static input: the same current at every step
        out = []
        for _ in range(self.num_steps):
            h = self.spiking0(current0)
            h = self.spiking1(self.pool1(self.conv1(h)))
            h = self.spiking2(self.linear1(self.flatten(h)))
            out.append(self.final_spiking(self.relu(self.linear2(h))))
        return torch.stack(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spike_trains(x).mean(0)

    def extra_repr(self) -> str:
        return f"num_steps={self.num_steps}"


def cifar10_snn(*, load_weights: bool = True, num_steps: int = TRAINED_STEPS) -> VizModel:
    """The spiking CIFAR-10 CNN in eval mode, MANGO's trained weights loaded (`load_weights`).

    `num_steps` time steps per forward pass (128 as trained); fewer are cheaper (cost is linear
    in it) but the rates are then coarser (multiples of 1/num_steps) and differ from the trained
    behaviour. Set it here, not on a built model whose Adapter already counted the calls.
    """
    net = SpikingCifarCNN(num_steps)
    if load_weights:
        load_builtin_weights(net, NAME)
    return VizModel(net, SNN_SPEC, source=f"builtin:{NAME}", class_names=CIFAR10_CLASSES).eval()
