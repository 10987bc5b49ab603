"""Unit-address grammar: parse/format round trip, expansion, and errors that say how to fix them."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from unifiedviz.adapters import LOGITS, Adapter
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import InputSpec
from unifiedviz.models.builtin import build_builtin
from unifiedviz.units import Unit, format_units, parse_address, parse_units


@pytest.mark.parametrize("text, unit", [
    ("layer3.1:channel=17", Unit("layer3.1", "channel", index=17)),
    ("conv2:channel=5:y=3:x=4", Unit("conv2", "channel", index=5, y=3, x=4)),
    ("blocks.6.mlp.fc1:neuron=64", Unit("blocks.6.mlp.fc1", "neuron", index=64)),
    ("blocks.6.mlp.fc1:neuron=3:token=cls", Unit("blocks.6.mlp.fc1", "neuron", index=3, token="cls")),
    ("blocks.6.mlp.fc1:neuron=3:token=12", Unit("blocks.6.mlp.fc1", "neuron", index=3, token=12)),
    ("blocks.4.attn:head=2", Unit("blocks.4.attn", "head", index=2)),
    ("head:class=281", Unit("head", "class", index=281)),
    ("class=3", Unit(None, "class", index=3)),
    ("blocks.9:token=cls", Unit("blocks.9", "token", token="cls")),
    ("blocks.9:token=4", Unit("blocks.9", "token", token=4)),
    ("layer4:direction=cav.npy", Unit("layer4", "direction", direction="cav.npy")),
    ("blocks.2:direction=dirs/v.npy:token=0", Unit("blocks.2", "direction", token=0, direction="dirs/v.npy")),
    ("layer1.0.relu#1:channel=0", Unit("layer1.0.relu#1", "channel", index=0)),
    ("lif#*:channel=3", Unit("lif#*", "channel", index=3)),  # every call of a per-time-step module, summed
])
def test_parse_and_format_round_trip(text, unit):
    assert parse_address(text) == [unit]
    assert unit.address() == text == str(unit)
    assert parse_address(unit.address()) == [unit]


@pytest.mark.parametrize("text, indices", [
    ("layer3:channel=0:4", [0, 1, 2, 3]),
    ("layer3:channel=1,5,9", [1, 5, 9]),
    ("layer3:channel=1,4:6", [1, 4, 5]),
    ("layer3:channel=0:10:4", [0, 4, 8]),  # every 4th: a sample of a layer
    ("layer3:channel=7:8:y=2", [7]),  # a range followed by another selector
])
def test_ranges_and_lists_expand_to_one_unit_each(text, indices):
    units = parse_address(text)
    assert [u.index for u in units] == indices
    assert all(u.layer == "layer3" and u.kind == "channel" for u in units)
    assert format_units(units) == [f"layer3:channel={i}" + (":y=2" if "y=" in text else "") for i in indices]


def test_token_ranges_expand_and_several_addresses_parse_together():
    assert [u.token for u in parse_address("blocks.1:token=0:3")] == [0, 1, 2]
    units = parse_units("a:channel=0:2; class=1  b:head=3")
    assert format_units(units) == ["a:channel=0", "a:channel=1", "class=1", "b:head=3"]
    assert parse_units(["a:channel=1", "b:neuron=2"]) == [Unit("a", "channel", 1), Unit("b", "neuron", 2)]


@pytest.mark.parametrize("text, message", [
    ("layer3:chanel=5", r"unknown selector 'chanel'.*use one of channel, neuron"),
    ("layer3:channel=5:3", r"empty range '5:3'.*stop must exceed the start"),
    ("layer3:channel=4:4", r"empty range"),
    ("channel=5", r"has no layer: write LAYER:channel="),
    ("layer3:channel=1:neuron=2", r"names channel and neuron: give one of them"),
    ("layer3", r"has no selector"),
    ("layer3:channel=x", r"is not an index: use N, A:B, A:B:STEP or A,B,C"),
    ("layer3:channel=-1", r"negative index"),
    ("layer3:channel=", r"has no value"),
    ("layer3:channel=1:channel=2", r"appears twice"),
    ("layer3:channel=1:y=0:2", r"must be one position"),
    ("blocks.1:neuron=1:token=0:2", r"must name one token"),
    ("", r"empty unit address"),
])
def test_bad_addresses_raise_one_line_errors(text, message):
    with pytest.raises(UnifiedVizError, match=message) as info:
        parse_address(text)
    assert "\n" not in str(info.value)


def test_no_address_at_all():
    with pytest.raises(UnifiedVizError, match="no unit address given"):
        parse_units(" ; ")


@pytest.fixture(scope="module")
def cnn() -> Adapter:
    """digits-cnn architecture: conv1 16, conv2 32, conv3 64 channels at 32, 16, 8 pixels; 10 logits."""
    return Adapter(build_builtin("digits-cnn", load_weights=False))


@pytest.mark.parametrize("text, message", [
    ("conv2:channel=32", r"channel 32 is out of range for layer 'conv2' \(conv \[32, 16, 16\]\): valid channels are 0\.\.31"),
    ("class=10", r"class 10 is out of range for the model output: valid classes are 0\.\.9"),
    ("conv1:channel=0:y=32", r"valid ys are 0\.\.31"),
    ("fc:neuron=0:token=0", r"token= needs a token layer"),
    ("conv2:head=0", r"not an attention module"),
])
def test_out_of_range_names_the_valid_range(cnn, text, message):
    with pytest.raises(UnifiedVizError, match=message):
        cnn.resolve(text)


def test_resolve_in_range_units(cnn):
    assert cnn.resolve("conv2:channel=31:y=15:x=0").target == "conv2"
    assert cnn.resolve("class=9").target == LOGITS
    assert cnn.resolve("fc:class=9").info.shape == (10,)


def test_unknown_layer_lists_the_closest_names(cnn):
    with pytest.raises(UnifiedVizError, match=r"unknown layer 'conv22'; closest: conv2") as info:
        cnn.resolve("conv22:channel=1")
    assert "conv1" in str(info.value) and "conv3" in str(info.value)
    with pytest.raises(UnifiedVizError, match=r"unknown layer 'zzz'; run `unifiedviz layers MODEL`"):
        cnn.layer("zzz")


def test_direction_file_must_match_the_layer_width(cnn, tmp_path):
    good, bad = tmp_path / "good.npy", tmp_path / "bad.npy"
    np.save(good, np.arange(32, dtype=np.float32))
    np.save(bad, np.zeros(31, dtype=np.float32))
    resolved = cnn.resolve(f"conv2:direction={good}")
    torch.testing.assert_close(resolved.direction, torch.arange(32, dtype=torch.float32))
    with pytest.raises(UnifiedVizError, match=r"shape \[31\] but layer 'conv2' has 32 features"):
        cnn.resolve(f"conv2:direction={bad}")
    with pytest.raises(UnifiedVizError, match="not found"):
        cnn.resolve(f"conv2:direction={tmp_path / 'missing.npy'}")


@pytest.mark.parametrize("shape", [(2, 3, 32, 32), (1, 32, 32), (2, 1, 32)])
def test_wrong_input_shape_or_channels_gives_a_clear_message(cnn, shape):
    spec = InputSpec((32, 32), channels=1)
    with pytest.raises(UnifiedVizError, match=r"does not fit this model: expected \[batch, 1, 32, 32\] \(1 channel"):
        spec.check(torch.zeros(shape))
    with pytest.raises(UnifiedVizError, match="does not fit this model"):
        cnn.capture(torch.zeros(shape), "conv1")
    spec.check(torch.zeros(2, 1, 32, 32))  # the right shape passes
