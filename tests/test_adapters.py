"""Adapter contract on every model family: values, early stop, hook/state hygiene, gradients, in-place ops.

Each case is a real architecture at random init (reduced image size where the model allows);
references come from hand-written forward hooks, never from the adapter itself.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import pytest
import timm
import torch
import torchvision
from torch import nn

from unifiedviz.adapters import Adapter, split_call
from unifiedviz.models import InputSpec, load_model
from unifiedviz.models.builtin import build_builtin

SPEC_64 = InputSpec((64, 64), 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class Case:
    build: Callable[..., Adapter]
    # layer -> (layout kind, channels_last, prefix); the first is early, used for early stop
    layers: dict[str, tuple[str, bool, int]]
    late: str  # a module that runs after every layer above


def _timm(name: str, **kwargs) -> Callable[..., Adapter]:
    def build(**_) -> Adapter:
        net = timm.create_model(name, **kwargs)
        for m in net.modules():  # timm zeroes each block's last BN weight: those units would be dead
            if isinstance(m, nn.BatchNorm2d):
                nn.init.uniform_(m.weight, 0.5, 1.5)
        return Adapter(net, SPEC_64)

    return build


def _hf(hf_vit_dir) -> Adapter:
    return Adapter(load_model(f"hf:{hf_vit_dir}"))


CASES = {
    "timm-resnet18": Case(_timm("resnet18"), {
        "layer1.0": ("conv", False, 0),
        "layer1.0.bn2": ("conv", False, 0),  # followed by an in-place `+= shortcut`
        "layer3.1": ("conv", False, 0),
        "global_pool": ("vector", False, 0),
    }, "fc"),
    "timm-convnext_tiny": Case(_timm("convnext_tiny"), {
        "stages.0": ("conv", False, 0),
        "stages.1.blocks.0.mlp.fc1": ("conv", True, 0),
        "stages.2.blocks.1.norm": ("conv", True, 0),
    }, "head.fc"),
    "timm-vit_tiny": Case(_timm("vit_tiny_patch16_224", img_size=64), {
        "blocks.0": ("tokens", False, 1),
        "blocks.2.mlp.fc1": ("tokens", False, 1),
        "patch_embed.proj": ("conv", False, 0),
    }, "head"),
    "timm-deit_tiny": Case(_timm("deit_tiny_patch16_224", img_size=64), {
        "blocks.1": ("tokens", False, 1),
        "blocks.3.attn": ("tokens", False, 1),
    }, "head"),
    "timm-swin_tiny": Case(_timm("swin_tiny_patch4_window7_224", img_size=64), {
        "layers.0.blocks.0.attn": ("other", False, 0),  # windows folded into the batch: kept raw
        "layers.0.blocks.0": ("conv", True, 0),
        "layers.1.blocks.1.mlp.fc1": ("tokens", False, 0),
        "layers.2.downsample": ("conv", True, 0),
    }, "head.fc"),
    "torchvision-resnet18": Case(lambda **_: Adapter(torchvision.models.resnet18(), SPEC_64), {
        "layer1.0.relu": ("conv", False, 0),
        "layer1.0.relu#1": ("conv", False, 0),  # one ReLU module called twice per block
        "layer1.0.bn2": ("conv", False, 0),  # followed by an in-place `out += identity`
        "layer4": ("conv", False, 0),
    }, "fc"),
    "hf-vit": Case(lambda hf_vit_dir, **_: _hf(hf_vit_dir), {
        "vit.layers.0": ("tokens", False, 1),
        "vit.layers.1.mlp.fc1": ("tokens", False, 1),
        "vit.layers.1.dropout#1": ("tokens", False, 1),
    }, "classifier"),
    "builtin-digits-cnn": Case(lambda **_: Adapter(build_builtin("digits-cnn", load_weights=False)), {
        "conv2": ("conv", False, 0),
        "relu3": ("conv", False, 0),
    }, "fc"),
    "builtin-digits-vit": Case(lambda **_: Adapter(build_builtin("digits-vit", load_weights=False)), {
        "blocks.0.mlp.act": ("tokens", False, 1),
        "blocks.2": ("tokens", False, 1),
    }, "head"),
    "builtin-cifar_resnet20": Case(lambda **_: Adapter(build_builtin("cifar_resnet20")), {
        "layer1.1.bn2": ("conv", False, 0),
        "layer2.0": ("conv", False, 0),
        "flatten": ("vector", False, 0),
    }, "linear"),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, hf_vit_dir):
    spec = CASES[request.param]
    adapter = spec.build(hf_vit_dir=hf_vit_dir)
    x = torch.rand((2, *adapter.model.spec.shape), generator=torch.Generator().manual_seed(0))
    return spec, adapter, x


def _reference(adapter: Adapter, x: torch.Tensor, layers: list[str], recording) -> dict[str, torch.Tensor]:
    """The layers' outputs from hand-written hooks on one plain eval forward pass."""
    calls = {layer: split_call(layer) for layer in layers}
    adapter.model.eval()
    with contextlib.ExitStack() as stack, torch.no_grad():
        outs = {m: stack.enter_context(recording(adapter.modules[m])) for m, _ in calls.values()}
        adapter.model(x)
    return {layer: outs[m][k] for layer, (m, k) in calls.items()}


def test_capture_equals_hand_written_hook_in_canonical_layout(case, recording):
    spec, adapter, x = case
    acts = adapter.capture(x, list(spec.layers))
    refs = _reference(adapter, x, list(spec.layers), recording)
    assert set(acts) == set(spec.layers)
    for layer, (kind, channels_last, prefix) in spec.layers.items():
        layout = adapter.layer(layer).layout
        assert (layout.kind, layout.channels_last, layout.prefix) == (kind, channels_last, prefix), layer
        ref = refs[layer]
        if channels_last:
            ref = ref.permute(0, 3, 1, 2)  # [B,H,W,C] -> [B,C,H,W]
        assert acts[layer].shape == ref.shape, layer
        assert tuple(acts[layer].shape[1:]) == adapter.layer(layer).shape
        torch.testing.assert_close(acts[layer], ref, msg=layer)
        assert acts[layer].abs().sum() > 0, f"{layer} is dead: the comparison would prove nothing"


def test_early_stop_skips_later_modules(case):
    spec, adapter, x = case
    early = next(iter(spec.layers))
    calls = []
    handle = adapter.modules[spec.late].register_forward_hook(lambda *_: calls.append(1))
    try:
        adapter.capture(x, early)
        assert calls == []
        adapter.capture(x, early, stop_early=False)
        assert calls == [1]
    finally:
        handle.remove()


def test_hooks_mode_and_grad_flags_restored_also_after_an_exception(case, hooked_modules, monkeypatch):
    spec, adapter, x = case
    model = adapter.model
    params = list(model.parameters())
    in_eval = adapter.capture(x, list(spec.layers))
    model.train()
    params[0].requires_grad_(False)  # a mixed pattern, so "restored" is not just "all True"
    before = [p.requires_grad for p in params]
    try:
        acts = adapter.capture(x, list(spec.layers))
        for layer in spec.layers:  # captured in eval mode (BatchNorm running stats, no dropout)
            torch.testing.assert_close(acts[layer], in_eval[layer], msg=layer)
        assert hooked_modules(model) == {}
        assert all(m.training for m in model.modules())
        assert [p.requires_grad for p in params] == before

        def boom(*args, **kwargs):
            raise RuntimeError("boom inside the forward pass")

        monkeypatch.setattr(adapter.modules[spec.late], "forward", boom)
        with pytest.raises(RuntimeError, match="boom"):
            adapter.capture(x, list(spec.layers), stop_early=False)
        with pytest.raises(RuntimeError, match="boom"), adapter.session(list(spec.layers), stop_early=False) as run:
            run(x)
        assert hooked_modules(model) == {}
        assert all(m.training for m in model.modules())
        assert [p.requires_grad for p in params] == before
    finally:
        params[0].requires_grad_(True)
        model.eval()


def test_gradients_reach_the_input_not_the_frozen_weights(case):
    spec, adapter, x = case
    for layer in (next(iter(spec.layers)), list(spec.layers)[-1]):
        xg = x.clone().requires_grad_(True)
        adapter.capture(xg, layer)[layer].square().sum().backward()
        assert xg.grad is not None and xg.grad.abs().sum() > 0, layer
        assert torch.isfinite(xg.grad).all()
    assert all(p.grad is None for p in adapter.model.parameters())

    # With freeze=False the weights take part in the graph as well.
    adapter.capture(x, next(iter(spec.layers)), freeze=False)[next(iter(spec.layers))].sum().backward()
    assert any(p.grad is not None for p in adapter.model.parameters())
    adapter.model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("case_id", ["timm-resnet18", "torchvision-resnet18"])
def test_inplace_ops_do_not_rewrite_captured_values(case_id, recording):
    # bn1 is followed by ReLU(inplace=True), bn2 by `+= shortcut`: both rewrite the hooked tensor.
    adapter = CASES[case_id].build()
    x = torch.rand((2, 3, 64, 64), generator=torch.Generator().manual_seed(1))
    refs = _reference(adapter, x, ["layer1.0.bn1", "layer1.0.bn2"], recording)
    for layer, ref in refs.items():
        assert (ref < 0).any(), "a BN output has negative values that ReLU would wipe"
        for stop_early in (True, False):
            torch.testing.assert_close(adapter.capture(x, layer, stop_early=stop_early)[layer], ref)
        with adapter.session([layer, "layer1.0"]) as run:  # BN captured first, the block output later
            torch.testing.assert_close(run(x)[layer], ref)


def test_an_open_session_leaves_other_forward_passes_alone():
    adapter = CASES["builtin-cifar_resnet20"].build()
    x = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = adapter.model(x)
    with adapter.session("layer1.0") as early, adapter.session(["layer3", "layer1.0"], stop_early=False) as both:
        with torch.no_grad():
            torch.testing.assert_close(adapter.model(x), logits)  # no capture, no early stop here
        torch.testing.assert_close(both(x)["layer1.0"], early(x)["layer1.0"])
        assert set(early(x)) == {"layer1.0"}
