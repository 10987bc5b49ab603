"""Layout objects, call-index names, the aggregating capture `name#*`, live captures for gradients."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from superposition.features import extract
from unifiedviz.adapters import (
    LAYOUTS,
    LOGITS,
    Adapter,
    AttentionLayout,
    ConvLayout,
    HeadsLayout,
    Layout,
    OtherLayout,
    SequenceLayout,
    TokensLayout,
    VectorLayout,
    call_name,
    layout_for,
    split_call,
)
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import InputSpec
from unifiedviz.models.builtin import build_builtin
from unifiedviz.objectives import read_unit
from unifiedviz.units import parse_address

STEPS = 4


class Spiking(nn.Module):
    """A per-time-step net: `lif` (conv + threshold) fires STEPS times; `readout` sees the spike counts."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 3, 3, padding=1)
        self.lif = nn.Conv2d(3, 3, 3, padding=1)
        self.readout = nn.Linear(3, 2)

    def forward(self, x):
        h = self.stem(x)
        v = torch.zeros_like(h)
        counts = torch.zeros_like(h)
        for _ in range(STEPS):
            v = 0.5 * v + self.lif(h)
            spikes = torch.sigmoid(4 * (v - 0.2))  # a smooth spike, so gradients flow
            counts = counts + spikes
            v = v - spikes
        return self.readout(counts.mean((2, 3)))


class Mixed(nn.Module):
    """`mix` is an nn.Linear on a channels-last map; `twice` runs on two different shapes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.mix = nn.Linear(6, 6)
        self.twice = nn.ReLU()
        self.fc = nn.Linear(6, 2)

    def forward(self, x):
        h = self.twice(self.conv(x))  # [B, 6, 4, 4]
        h = self.mix(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.fc(self.twice(h.mean((2, 3))))  # [B, 6]: a second call, another shape


@pytest.fixture(scope="module")
def spiking(one_thread) -> Adapter:
    torch.manual_seed(0)
    return Adapter(Spiking(), InputSpec((5, 5), channels=1))


@pytest.fixture(scope="module")
def mixed(one_thread) -> Adapter:
    torch.manual_seed(0)
    return Adapter(Mixed(), InputSpec((4, 4), channels=1))


def _x(adapter: Adapter, n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, *adapter.model.spec.shape), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- layout objects
def test_layouts_are_objects_and_the_kind_string_constructor_still_works():
    assert Layout("conv", channels_last=True) == ConvLayout(channels_last=True) != ConvLayout()
    assert Layout("tokens", prefix=1) == TokensLayout(prefix=1) == layout_for("tokens", prefix=1)
    assert isinstance(Layout("vector"), VectorLayout) and Layout("vector") != Layout("other")
    assert [LAYOUTS.get(k).kind for k in LAYOUTS.names()] == LAYOUTS.names()
    assert set(LAYOUTS.names()) == {"other", "conv", "sequence", "tokens", "heads", "attention", "vector"}
    assert len({ConvLayout(), ConvLayout(), TokensLayout(prefix=1)}) == 2  # frozen and hashable
    assert TokensLayout(prefix=2).describe() == "tokens, 2 prefix"
    assert ConvLayout(channels_last=True).describe() == "conv, channels-last"
    with pytest.raises(UnifiedVizError, match="unknown layout 'conb': did you mean 'conv'"):
        Layout("conb")


@pytest.mark.parametrize("layout, shape, width, positions, means", [
    (ConvLayout(), (2, 3, 4, 5), 3, {"y": 4, "x": 5}, lambda t: t.mean((2, 3))),
    (SequenceLayout(), (2, 3, 7), 3, {"x": 7}, lambda t: t.mean(2)),
    (TokensLayout(prefix=1), (2, 5, 6), 6, {"token": 5}, lambda t: t[:, 1:].mean(1)),
    (TokensLayout(), (2, 4, 6), 6, {"token": 4}, lambda t: t.mean(1)),
    (HeadsLayout(prefix=1), (2, 5, 3, 2), 6, {"token": 5}, lambda t: t[:, 1:].mean(1).reshape(2, 6)),
    (VectorLayout(), (2, 6), 6, {}, lambda t: t),
])
def test_feature_width_positions_and_unit_means(layout, shape, width, positions, means):
    t = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    assert layout.feature_width(shape[1:]) == width
    assert layout.position_sizes(shape[1:]) == positions
    torch.testing.assert_close(layout.unit_means(t), means(t))
    assert layout.unit_means(t).shape == (2, width)
    n = 1 if not positions else (t[0, 0].numel() if layout.kind in ("conv", "sequence") else shape[1] - layout.prefix)
    torch.testing.assert_close(layout.unit_sums(t), means(t) * n)


@pytest.mark.parametrize("layout", [AttentionLayout(prefix=1), OtherLayout()])
def test_layouts_without_features_refuse_unit_means(layout):
    assert layout.feature_width((3, 5, 5)) is None
    with pytest.raises(UnifiedVizError, match="no per-unit features"):
        layout.unit_means(torch.zeros(2, 3, 5, 5))


def test_channels_last_canonical_and_restore_are_inverse():
    layout = ConvLayout(channels_last=True)
    t = torch.randn(2, 4, 5, 6)  # [B, H, W, C]
    assert layout.canonical(t).shape == (2, 6, 4, 5)
    assert torch.equal(layout.restore(layout.canonical(t)), t)
    assert layout.restore(layout.canonical(t)).is_contiguous()


@pytest.mark.parametrize("address, layout, shape, message", [
    ("l:channel=0", OtherLayout(), (3, 5, 5), "no unit reads"),
    ("l:channel=0", AttentionLayout(), (3, 5, 5), r"channel= does not apply .* use head= for attention layers"),
    ("l:neuron=6", VectorLayout(), (6,), r"neuron 6 is out of range for WHERE: valid neurons are 0\.\.5"),
    ("l:channel=0:token=0", ConvLayout(), (3, 4, 4), "token= needs a token layer"),
    ("l:token=cls", TokensLayout(), (4, 6), "has no CLS/prefix token"),
    ("l:token=5", TokensLayout(prefix=1), (5, 6), r"valid tokens are 0\.\.4"),
    ("l:channel=0:y=1", SequenceLayout(), (3, 7), "a 1-D map has x= positions only"),
    ("l:channel=0:x=1", TokensLayout(), (4, 6), "y=/x= positions need a conv layer"),
    ("l:head=3", AttentionLayout(), (3, 5, 5), r"valid heads are 0\.\.2"),
    ("l:head=1", ConvLayout(), (3, 4, 4), "head= does not apply"),
])
def test_range_checks_live_on_the_layouts(address, layout, shape, message):
    (unit,) = parse_address(address)
    axis = {"head": "head", "token": None}.get(unit.kind, "feature")
    with pytest.raises(UnifiedVizError, match=message):
        layout.check_unit(unit, shape, index_axis=axis, where="WHERE")


# ---------------------------------------------------------------- call-index names
@pytest.mark.parametrize("name, parts", [
    ("layer1.0.relu", ("layer1.0.relu", 0)),
    ("layer1.0.relu#1", ("layer1.0.relu", 1)),
    ("lif#12", ("lif", 12)),
    ("lif#*", ("lif", None)),
    ("odd#name", ("odd#name", 0)),  # not a call suffix: the whole name
    (LOGITS, (LOGITS, 0)),
])
def test_split_call_and_call_name_round_trip(name, parts):
    assert split_call(name) == parts
    assert call_name(*parts) == name


# ---------------------------------------------------------------- aggregating capture
def test_a_per_step_module_lists_each_call_and_one_aggregate(spiking):
    names = [i.name for i in spiking.layers()]
    calls = ["lif"] + [f"lif#{k}" for k in range(1, STEPS)]
    assert names[names.index("lif"):names.index("lif") + STEPS + 1] == calls + ["lif#*"]
    agg = spiking.layer("lif#*")
    assert (agg.calls, agg.shape, agg.layout, agg.module, agg.call) == (STEPS, (3, 5, 5), ConvLayout(), "lif", None)
    assert agg.describe() == f"conv, {STEPS} calls summed"
    collapsed = [(i.name, i.calls) for i in spiking.layers(each_call=False)]
    assert ("lif#*", STEPS) in collapsed and not any(n.startswith("lif#") and n != "lif#*" for n, _ in collapsed)
    assert len(collapsed) == len(names) - STEPS
    assert [i.name for i in spiking.layers("lif*", each_call=False)] == ["lif#*"]


def test_aggregate_equals_the_sum_of_hand_recorded_calls(spiking, recording):
    x = _x(spiking)
    with recording(spiking.modules["lif"]) as outs, torch.no_grad():
        spiking.model(x)
    assert len(outs) == STEPS
    acts = spiking.capture(x, ["lif#*", "lif#2"])
    torch.testing.assert_close(acts["lif#*"], torch.stack(outs).sum(0))
    torch.testing.assert_close(acts["lif#2"], outs[2])
    # Units read the aggregate like any conv layer.
    resolved = spiking.resolve("lif#*:channel=2")
    torch.testing.assert_close(read_unit(resolved, acts["lif#*"]), torch.stack(outs).sum(0)[:, 2].mean((1, 2)))


def test_aggregate_early_stop_waits_for_the_last_call_and_gradients_flow(spiking):
    x = _x(spiking).requires_grad_(True)
    seen = []
    handle = spiking.modules["readout"].register_forward_hook(lambda *_: seen.append(1))
    lif_calls = []
    handle2 = spiking.modules["lif"].register_forward_hook(lambda *_: lif_calls.append(1))
    try:
        spiking.capture(x, "lif#*")["lif#*"].sum().backward()
    finally:
        handle.remove()
        handle2.remove()
    assert seen == [] and len(lif_calls) == STEPS
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_no_aggregate_when_calls_differ_or_a_module_fires_once(mixed, spiking):
    assert [i.name for i in mixed.layers("twice*")] == ["twice", "twice#1"]
    with pytest.raises(UnifiedVizError, match=r"calls of 'twice' differ in shape .* pick one call \(twice, twice#1\)"):
        mixed.layer("twice#*")
    with pytest.raises(UnifiedVizError, match="'stem' fires once per forward pass"):
        spiking.layer("stem#*")
    with pytest.raises(UnifiedVizError, match=r"'lif' fires 4 time\(s\) per forward pass, so 'lif#9'"):
        spiking.layer("lif#9")


# ---------------------------------------------------------------- live captures, gradient x activation
def _manual_grad_x_act(adapter, x, module, score):
    """Hand-written: keep the module's live outputs with a plain hook, differentiate the score."""
    outs = []
    handle = adapter.modules[module].register_forward_hook(lambda m, i, o: outs.append(o))
    try:
        with torch.enable_grad():
            xg = x.clone().requires_grad_(True)
            logits = adapter.model(xg)
            grads = torch.autograd.grad(score(logits).sum(), outs)
    finally:
        handle.remove()
    return [(g * o).detach() for g, o in zip(grads, outs)]


def test_gradient_x_activation_matches_a_hand_written_hook(spiking, mixed):
    score = lambda logits: logits[:, 1]  # noqa: E731
    x = _x(spiking)
    parts = _manual_grad_x_act(spiking, x, "lif", score)
    torch.testing.assert_close(spiking.gradient_x_activation(x, "lif#*", score), sum(parts))
    torch.testing.assert_close(spiking.gradient_x_activation(x, "lif#1", score), parts[1])
    # A channels-last layer: the product comes back canonical, [B, C, H, W].
    x = _x(mixed)
    (part,) = _manual_grad_x_act(mixed, x, "mix", score)
    torch.testing.assert_close(mixed.gradient_x_activation(x, "mix", score), part.permute(0, 3, 1, 2))
    assert all(p.grad is None for p in mixed.model.parameters())


def test_live_session_returns_tensors_autograd_can_differentiate(mixed, hooked_modules):
    x = _x(mixed)
    with mixed.session(["mix", "conv", LOGITS], live=True) as run, torch.enable_grad():
        acts = run(x.requires_grad_(True))
        g_mix, g_conv = torch.autograd.grad(acts[LOGITS][:, 0].sum(), [acts["mix"], acts["conv"]])
    assert g_mix.shape == acts["mix"].shape == (2, 6, 4, 4) and g_mix.abs().sum() > 0
    assert g_conv.abs().sum() > 0
    assert hooked_modules(mixed.model) == {}
    with torch.no_grad():  # the live capture did not change what the network computes
        torch.testing.assert_close(acts[LOGITS], mixed.model(x))


# ---------------------------------------------------------------- one meaning everywhere
def test_token_unit_means_exclude_prefix_tokens_in_features_objectives_and_layouts(one_thread):
    torch.manual_seed(0)
    model = build_builtin("digits-vit", load_weights=False)
    adapter = Adapter(model)
    x = _x(adapter, 4, seed=5)
    loader = DataLoader(TensorDataset(x, torch.arange(4)), batch_size=2)
    feats = extract(model, loader, ["blocks.1"])
    act = adapter.capture(x, "blocks.1")["blocks.1"]
    expected = act[:, 1:].mean(1)  # patch tokens only: the CLS token is not a patch
    torch.testing.assert_close(feats.units["blocks.1"], expected)
    torch.testing.assert_close(adapter.layer("blocks.1").layout.unit_means(act), expected)
    torch.testing.assert_close(read_unit(adapter.resolve("blocks.1:channel=9"), act), expected[:, 9])
