"""Unit-kind contract: every registered kind reads what a hand-written hook and a hand reduction say.

Adding a unit kind = one file in unifiedviz/unit_kinds (or one function in builtin.py), its
registration, and one row in CONTRACT below; `test_every_registered_kind_has_a_contract_row`
fails until the row is there. References never go through the adapter or the layouts: the
module's raw output comes from `recording` (a plain forward hook) and is reduced by hand.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unifiedviz import units
from unifiedviz.adapters import LOGITS, Adapter, split_call
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import InputSpec
from unifiedviz.models.builtin import build_builtin
from unifiedviz.objectives import OBJECTIVES, Context, Objective, read_unit
from unifiedviz.unit_kinds import UNIT_KINDS, unit_kind
from unifiedviz.units import MAIN_KEYS, POSITION_KEYS, parse_address

STEPS = 3  # calls per forward of the looped module


class SeqNet(nn.Module):
    """1-D conv net: a `sequence` layout [B, 4, 16]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(2, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(F.relu(self.conv(x)).mean(-1))


class HeadsNet(nn.Module):
    """HookedTransformer-like: `hook_z` is [B, T, heads=2, d=4] with one CLS token (T = 1 + 4 patches)."""

    num_prefix_tokens = 1

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 8)
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.hook_z = nn.Identity()
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        b = x.shape[0]
        patches = x.unfold(2, 2, 2).unfold(3, 2, 2).reshape(b, 4, 4)
        tokens = torch.cat([self.cls.expand(b, -1, -1), self.embed(patches)], 1)
        z = self.hook_z(tokens.view(b, 5, 2, 4))
        return self.head(z.flatten(2).mean(1))


class LoopNet(nn.Module):
    """`step` fires STEPS times per forward (a per-time-step module): `step#*` sums its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.step = nn.Conv2d(4, 4, 3, padding=1)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h = self.stem(x)
        state = torch.zeros_like(h)
        for _ in range(STEPS):
            state = torch.relu(self.step(h + 0.5 * state))
        return self.head(state.mean((2, 3)))


def _seeded(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def make():
        torch.manual_seed(0)
        return build()

    return make


MODELS = {
    "cnn": (_seeded(lambda: build_builtin("digits-cnn", load_weights=False)), None),
    "vit": (_seeded(lambda: build_builtin("digits-vit", load_weights=False)), None),
    "seq": (_seeded(SeqNet), InputSpec((16,), channels=2)),
    "heads": (_seeded(HeadsNet), InputSpec((4, 4), channels=1)),
    "loop": (_seeded(LoopNet), InputSpec((6, 6), channels=1)),
}


@dataclass(frozen=True)
class Row:
    kind: str
    model: str
    address: str  # `{dir}` is replaced by a saved direction file
    record: str  # the module whose raw output (every call, summed) is the reference
    reduce: Callable[..., torch.Tensor]  # reduce(raw, v) -> [B]; v the direction vector (or None)
    width: int = 0  # direction rows: the vector's length


def _heads(t, heads):  # [B, T, D] -> [B, T, heads, d]
    return t.view(t.shape[0], t.shape[1], heads, -1)


def _latent_dictionary():
    """A random 64-feature sparse dictionary (non-zero biases), saved for `latent=` units."""
    import tempfile

    from superposition.dictionaries import SparseAutoencoder, save_dictionary

    sae = SparseAutoencoder(64, expansion=2, seed=0)
    sae.fit_normalisation(torch.randn(100, 64, generator=torch.Generator().manual_seed(0)) * 3 + 1)
    with torch.no_grad():
        sae.b_enc.normal_(generator=torch.Generator().manual_seed(1))
        sae.b_dec.normal_(generator=torch.Generator().manual_seed(2))
    path = f"{tempfile.mkdtemp()}/latents.safetensors"
    save_dictionary(sae, path, layer="conv3")
    return sae, path


LATENTS, LATENTS_PATH = _latent_dictionary()


@pytest.fixture(autouse=True)
def _latent_dictionary_in_use():
    """Name the test dictionary for each test (and only then): other modules set and clear it too."""
    from unifiedviz.unit_kinds.latent import use_dictionary

    use_dictionary(LATENTS_PATH)
    yield
    use_dictionary(None)


#: kind, model, address, recorded module, hand reduction of the raw output.
CONTRACT = [
    Row("channel", "cnn", "conv2:channel=5", "conv2", lambda o, v: o[:, 5].mean((1, 2))),
    Row("channel", "cnn", "conv2:channel=5:y=3:x=7", "conv2", lambda o, v: o[:, 5, 3, 7]),
    Row("channel", "seq", "conv:channel=2", "conv", lambda o, v: o[:, 2].mean(1)),
    Row("channel", "vit", "blocks.1:channel=7", "blocks.1", lambda o, v: o[:, 1:, 7].mean(1)),  # CLS excluded
    Row("channel", "vit", "blocks.1:channel=7:token=cls", "blocks.1", lambda o, v: o[:, 0, 7]),
    Row("channel", "heads", "hook_z:channel=5", "hook_z", lambda o, v: o[:, 1:, 1, 1].mean(1)),  # 5 = head 1, dim 1
    Row("channel", "loop", "step#*:channel=1", "step", lambda o, v: o[:, 1].mean((1, 2))),  # sum of 3 calls
    Row("neuron", "cnn", "conv2:neuron=5", "conv2", lambda o, v: o[:, 5, 8, 8]),  # the centre of 16x16
    Row("neuron", "seq", "conv:neuron=1:x=3", "conv", lambda o, v: o[:, 1, 3]),
    Row("neuron", "vit", "blocks.0.mlp.fc1:neuron=100:token=5", "blocks.0.mlp.fc1", lambda o, v: o[:, 5, 100]),
    Row("neuron", "cnn", "fc:neuron=3", "fc", lambda o, v: o[:, 3]),
    Row("head", "vit", "blocks.2.attn.attn_drop:head=1", "blocks.2.attn.attn_drop",
        lambda o, v: o[:, 1].pow(2).sum(-1)[:, 1:].mean(1)),  # concentration, mean over patch queries
    Row("head", "vit", "blocks.2.attn.attn_drop:head=3:token=cls", "blocks.2.attn.attn_drop",
        lambda o, v: o[:, 3, 0].pow(2).sum(-1)),
    Row("head", "vit", "blocks.2.attn:head=2", "blocks.2.attn.norm",
        lambda o, v: _heads(o, 4)[:, 1:, 2].pow(2).mean(-1).mean(1)),
    Row("head", "heads", "hook_z:head=1:token=2", "hook_z", lambda o, v: o[:, 2, 1].pow(2).mean(-1)),
    Row("class", "cnn", "class=4", LOGITS, lambda o, v: o[:, 4]),
    Row("class", "vit", "head:class=9", "head", lambda o, v: o[:, 9]),
    Row("direction", "cnn", "conv3:direction={dir}", "conv3", lambda o, v: torch.einsum("bchw,c->b", o, v) / 64,
        width=64),
    Row("direction", "vit", "blocks.3:direction={dir}:token=0", "blocks.3", lambda o, v: o[:, 0] @ v, width=64),
    Row("direction", "loop", "step#*:direction={dir}", "step", lambda o, v: torch.einsum("bchw,c->b", o, v) / 36,
        width=4),
    Row("latent", "cnn", "conv3:latent=5", "conv3",  # encoder pre-activation at every position, spatial mean
        lambda o, v: LATENTS.pre_activation(o.flatten(2).transpose(1, 2))[..., 5].mean(1)),
    Row("latent", "vit", "blocks.3:latent=100:token=2", "blocks.3",
        lambda o, v: LATENTS.pre_activation(o[:, 2])[:, 100]),
    Row("token", "vit", "blocks.2:token=7", "blocks.2", lambda o, v: o[:, 7].pow(2).mean(-1)),
    Row("token", "vit", "blocks.2:token=cls", "blocks.2", lambda o, v: o[:, 0].pow(2).mean(-1)),
    Row("token", "heads", "hook_z:token=3", "hook_z", lambda o, v: o[:, 3].pow(2).mean((-2, -1))),
]


@pytest.fixture(scope="module")
def adapters(one_thread) -> dict[str, Adapter]:
    return {name: Adapter(build(), spec) if spec else Adapter(build()) for name, (build, spec) in MODELS.items()}


def _raw(adapter: Adapter, x: torch.Tensor, module: str, recording) -> torch.Tensor:
    """The module's output from a plain forward hook, all calls summed (one call: that output)."""
    adapter.model.eval()
    if module == LOGITS:
        with torch.no_grad():
            return adapter.model(x)
    fused = [m for m in adapter.model.modules() if getattr(m, "fused_attn", None) is True]
    try:
        for m in fused:  # timm: probabilities reach attn_drop only without fused attention
            m.fused_attn = False
        with contextlib.ExitStack() as stack, torch.no_grad():
            outs = stack.enter_context(recording(adapter.modules[module]))
            adapter.model(x)
    finally:
        for m in fused:
            m.fused_attn = True
    return torch.stack(outs).sum(0)


@pytest.mark.parametrize("row", CONTRACT, ids=lambda r: f"{r.kind}-{r.model}-{r.address.split(':')[0]}")
def test_kind_reads_the_hand_reduction_of_a_hand_written_hook(row, adapters, recording, tmp_path):
    adapter = adapters[row.model]
    x = torch.rand((3, *adapter.model.spec.shape), generator=torch.Generator().manual_seed(1))
    v = None
    address = row.address
    if row.width:
        v = torch.linspace(-1, 1, row.width)
        np.save(tmp_path / "v.npy", v.numpy())
        address = address.format(dir=tmp_path / "v.npy")
    resolved = adapter.resolve(address)
    assert resolved.unit.kind == row.kind
    assert split_call(resolved.target)[0] == row.record
    value = read_unit(resolved, adapter.capture(x, resolved.target, stop_early=False)[resolved.target])
    ref = row.reduce(_raw(adapter, x, row.record, recording), v)
    assert value.shape == (3,)
    torch.testing.assert_close(value, ref, msg=row.address)
    assert ref.abs().sum() > 0, f"{row.address} reads zeros: the comparison would prove nothing"


def test_every_registered_kind_has_a_contract_row():
    missing = set(UNIT_KINDS.names()) - {row.kind for row in CONTRACT}
    assert not missing, f"unit kinds without a row in CONTRACT: {sorted(missing)}"


def test_grammar_keys_come_from_the_registry():
    assert MAIN_KEYS == tuple(UNIT_KINDS.names()) == ("channel", "neuron", "head", "class", "direction", "token",
                                                         "latent")
    assert POSITION_KEYS == ("token", "y", "x")


def test_a_new_kind_is_one_function_and_a_registration(adapters, recording):
    """A kind registered from outside the package parses, formats, resolves, range-checks and reads."""

    @unit_kind("peak", help="a feature's maximum over positions")
    def read_peak(r, t):
        return r.info.layout.feature_map(t, r.unit.index).flatten(1).max(1).values

    try:
        assert units.MAIN_KEYS[-1] == "peak"
        (unit,) = parse_address("conv2:peak=4")
        assert unit.address() == "conv2:peak=4"
        cnn = adapters["cnn"]
        with pytest.raises(UnifiedVizError, match=r"peak 32 is out of range .* valid peaks are 0\.\.31"):
            cnn.resolve("conv2:peak=32")
        x = torch.rand((2, 1, 32, 32), generator=torch.Generator().manual_seed(2))
        resolved = cnn.resolve(unit)
        value = read_unit(resolved, cnn.capture(x, "conv2")["conv2"])
        torch.testing.assert_close(value, _raw(cnn, x, "conv2", recording)[:, 4].flatten(1).max(1).values)
    finally:
        UNIT_KINDS._entries.pop("peak")  # keep the registry as the other tests expect it


def test_unknown_kind_names_the_registered_ones():
    with pytest.raises(UnifiedVizError, match=r"unknown selector 'chanel'.*use one of channel, neuron, head"):
        parse_address("conv2:chanel=1")


def test_objectives_registry_builds_the_named_regularisers():
    assert {"l1", "l2", "total_variation", "blur", "diversity"} <= set(OBJECTIVES.names())
    images = torch.rand((2, 3, 8, 8), generator=torch.Generator().manual_seed(3))
    for name in ("l1", "l2", "total_variation", "blur"):
        term = OBJECTIVES.get(name)()
        assert isinstance(term, Objective) and term(Context({}, images)).shape == (2,)
    div = OBJECTIVES.get("diversity")("conv2")
    assert div.layers == ("conv2",)
    with pytest.raises(UnifiedVizError, match=r"unknown objective 'totalvariation': did you mean 'total_variation'"):
        OBJECTIVES.get("totalvariation")
