"""Spiking networks (snnTorch): time-stepped capture, gradient-free class AM, the shipped `cifar10-snn`."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

snntorch = pytest.importorskip("snntorch")

from unifiedviz.adapters import Adapter  # noqa: E402
from unifiedviz.errors import UnifiedVizError  # noqa: E402
from unifiedviz.models import InputSpec, load_model  # noqa: E402
from unifiedviz.models.builtin import build_builtin  # noqa: E402
from unifiedviz.models.builtin.cifar_snn import cifar10_snn  # noqa: E402
from unifiedviz.objectives import read_unit  # noqa: E402
from unifiedviz.optimizers import OPTIMIZERS  # noqa: E402
from unifiedviz.visualize import unit_values, visualize  # noqa: E402

STEPS = 6


class TinySNN(nn.Module):
    """conv 1->4 (3x3) -> LIF -> linear 100->3 -> LIF; the same 12x12 image at each of STEPS steps; spike rates."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 4, 3)
        self.lif1 = snntorch.Leaky(beta=0.9, init_hidden=True)
        self.fc = nn.Linear(4 * 10 * 10, 3)
        self.lif2 = snntorch.Leaky(beta=0.9, init_hidden=True)
        with torch.no_grad():  # strong enough that class 0 fires for some random inputs, not for most
            self.conv.weight.mul_(4)
            self.fc.weight.mul_(3)

    def forward(self, x):
        for lif in (self.lif1, self.lif2):
            lif.mem = torch.zeros(0)
        out = []
        for _ in range(STEPS):
            spikes = self.lif1(self.conv(x))
            out.append(self.lif2(self.fc(spikes.flatten(1))))
        return torch.stack(out).mean(0)


@pytest.fixture
def tiny(one_thread) -> Adapter:
    return Adapter(load_model(TinySNN().eval(), spec=InputSpec((12, 12), channels=1)))


def test_time_stepped_capture_equals_a_hand_summed_count(tiny):
    net = tiny.model.net
    x = torch.rand(5, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # by hand: the same loop, spikes summed over the steps
        net.lif1.mem = torch.zeros(0)
        count = sum(net.lif1(net.conv(x)) for _ in range(STEPS))
    assert count.sum() > 0 and (count < STEPS).any()  # some neurons fire, not all at every step
    acts = tiny.capture(x, ["lif1#*", "lif1#mean"])
    torch.testing.assert_close(acts["lif1#*"], count)
    torch.testing.assert_close(acts["lif1#mean"], count / STEPS)
    # One layer per time-stepped module in the listing, with its call count; each call on request.
    listed = {i.name: i for i in tiny.layers()}
    assert "lif1#*" in listed and "lif1#1" not in listed and "fc#*" in listed  # fc runs in the time loop too
    assert listed["lif1#*"].calls == STEPS and listed["lif1#*"].time_stepped
    assert listed["lif1#*"].describe() == f"conv, {STEPS} time steps summed"
    assert tiny.layer("lif1#mean").describe() == f"conv, mean of {STEPS} time steps"
    each = [i.name for i in tiny.layers("lif1*", each_call=True)]
    assert each == ["lif1"] + [f"lif1#{k}" for k in range(1, STEPS)] + ["lif1#*"]  # `layers --each-call`
    # Units read the count like any conv layer: a channel's spatial mean, one neuron at (y, x).
    channel = read_unit(tiny.resolve("lif1#*:channel=2"), acts["lif1#*"])
    torch.testing.assert_close(channel, count[:, 2].mean((1, 2)))
    neuron = read_unit(tiny.resolve("lif1#*:neuron=3:y=4:x=7"), acts["lif1#*"])
    torch.testing.assert_close(neuron, count[:, 3, 4, 7])
    rate = read_unit(tiny.resolve("lif1#mean:neuron=3:y=4:x=7"), acts["lif1#mean"])
    torch.testing.assert_close(rate, count[:, 3, 4, 7] / STEPS)


def test_a_changed_number_of_steps_is_named(tiny):
    x = torch.rand(2, 1, 12, 12)
    tiny.layers()  # counts STEPS calls
    global STEPS
    STEPS, before = STEPS + 2, STEPS
    try:
        with pytest.raises(UnifiedVizError, match=r"'lif1' fired 8 times .* but 6 when the Adapter listed"):
            tiny.capture(x, ["lif1#*", "<logits>"])
    finally:
        STEPS = before


# (1+1)-ES on pixels: 200 queries (a large first step: spike rates are flat at 0 around a grey start);
# PROTES on 6x6 grey levels: 30 steps of 10 samples (at 20 its default ties the best test input, 0.5:
# bench/protes_mutations.py).
@pytest.mark.parametrize("optimizer, param, steps, lr", [("random-search", "pixel", 199, 3.0),
                                                         ("protes", "lowres", 30, 0.05)])
def test_gradient_free_class_am_beats_every_test_input(tiny, optimizer, param, steps, lr):
    if optimizer not in OPTIMIZERS:
        pytest.skip(f"{optimizer} is not registered yet")
    tests = torch.rand(64, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        rates = tiny.model(tests)  # [64, 3] spike rates in steps of 1/STEPS
    target = 0
    assert rates[:, target].mean() < 0.2  # the test inputs mostly leave it silent
    options = {"param_options": {"low": 6}} if param == "lowres" else {}
    result = visualize(tiny, f"class={target}", param=param, optimizer=optimizer, steps=steps, lr=lr,
                       transforms=None, progress=False, **options)
    reached = unit_values(tiny, [tiny.resolve(f"class={target}")], result.images)[0]
    assert reached == result.activations[0]
    assert reached > rates[:, target].max(), (float(reached), rates[:, target].max())


def test_the_shipped_snn_equals_a_hand_written_lif_network(one_thread):
    model = cifar10_snn(num_steps=3)
    assert build_builtin("cifar10-snn").net.num_steps == 128  # the trained setting by default
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    w = model.net.state_dict()
    with torch.no_grad():
        trains = model.net.spike_trains(model.normalise(x))
        # by hand: U[t] = 0.9 U[t-1] + I[t] - 1[U[t-1] > 1]; S[t] = 1[U[t] > 1]
        cur0 = F.max_pool2d(F.conv2d(model.normalise(x), w["conv0.weight"], w["conv0.bias"]), 3, 2, 1)
        mems = [None] * 4
        spikes = []

        def lif(i, current):
            prev = mems[i] if mems[i] is not None else torch.zeros_like(current)
            mems[i] = 0.9 * prev + current - (prev > 1).float()
            return (mems[i] > 1).float()

        for _ in range(3):
            h = lif(0, cur0)
            h = lif(1, F.max_pool2d(F.conv2d(h, w["conv1.weight"], w["conv1.bias"]), 2, 2))
            h = lif(2, F.linear(h.flatten(1), w["linear1.weight"], w["linear1.bias"]))
            spikes.append(lif(3, F.relu(F.linear(h, w["linear2.weight"], w["linear2.bias"]))))
    torch.testing.assert_close(trains, torch.stack(spikes))
    assert trains.shape == (3, 2, 10)
    torch.testing.assert_close(model(x), trains.mean(0))
    assert mems[0].gt(1).any()  # the reference exercised firing in the first layer
    listed = {i.name: i.calls for i in Adapter(model).layers()}
    assert listed["spiking0#*"] == listed["final_spiking#*"] == 3 and listed["conv0"] == 1


def test_the_layers_command_lists_a_time_stepped_module_once(capsys, one_thread):
    from unifiedviz.cli import main

    assert main(["layers", "builtin:cifar10-snn", "--filter", "spiking0*", "--threads", "1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["spiking0#*", "Leaky", "200x14x14", "conv,", "128", "time", "steps", "summed"]]


def test_time_steps_sets_the_spiking_model_s_steps_and_is_refused_elsewhere(capsys, one_thread):
    from unifiedviz.cli import main

    assert load_model("builtin:cifar10-snn", time_steps=4).net.num_steps == 4
    assert main(["layers", "builtin:cifar10-snn", "--filter", "spiking0*", "--time-steps", "4", "--threads", "1"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[4] == "4"  # listed as 4 time steps summed
    assert main(["layers", "builtin:digits-cnn", "--time-steps", "4"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "unifiedviz: error: builtin:digits-cnn is not time-stepped (it has no num_steps): time_steps / --time-steps "
        "is for spiking models such as builtin:cifar10-snn"]
