"""ViT specifics: attention probabilities, per-head outputs, MLP neurons, residual stream, prefix tokens."""
from __future__ import annotations

import pytest
import timm
import torch
import torch.nn.functional as F

from unifiedviz.adapters import Adapter
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import InputSpec, load_model

HEADS, WIDTH, PATCHES = 3, 192, 16  # vit_tiny at 64x64: 3 heads, D=192, 4x4 patches


def _vit(name: str, **kwargs) -> Adapter:
    torch.manual_seed(0)
    return Adapter(timm.create_model(name, img_size=64, **kwargs), InputSpec((64, 64), 3, (0.5,) * 3, (0.5,) * 3))


@pytest.fixture(scope="module")
def vit() -> Adapter:
    return _vit("vit_tiny_patch16_224")


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand((2, 3, 64, 64), generator=torch.Generator().manual_seed(0))


def _fused_flags(adapter: Adapter) -> list[bool]:
    return [blk.attn.fused_attn for blk in adapter.model.net.blocks]


def test_attention_probabilities_per_head(vit, x):
    assert all(_fused_flags(vit)), "timm default: fused attention hides the probabilities"
    acts = vit.capture(x, ["blocks.1.attn.qkv", "blocks.1.attn.attn_drop"])
    probs = acts["blocks.1.attn.attn_drop"]
    tokens = PATCHES + 1
    assert probs.shape == (2, HEADS, tokens, tokens)
    info = vit.layer("blocks.1.attn.attn_drop")
    assert (info.layout.kind, info.layout.prefix) == ("attention", 1)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, HEADS, tokens))
    # Reference: softmax(q k^T / sqrt(d)) recomputed from the captured qkv projection.
    q, k, _ = acts["blocks.1.attn.qkv"].view(2, tokens, 3, HEADS, WIDTH // HEADS).permute(2, 0, 3, 1, 4)
    torch.testing.assert_close(probs, F.softmax(q @ k.transpose(-2, -1) * (WIDTH // HEADS) ** -0.5, dim=-1))
    assert all(_fused_flags(vit)), "fused attention must be switched back on afterwards"


def test_fused_attention_restored_after_an_exception(vit, x, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(vit.model.net.head, "forward", boom)
    with pytest.raises(RuntimeError, match="boom"):
        vit.capture(x, "blocks.0.attn.attn_drop", stop_early=False)
    assert all(_fused_flags(vit))


def test_attention_probabilities_carry_gradients(vit, x):
    xg = x.clone().requires_grad_(True)
    vit.capture(xg, "blocks.2.attn.attn_drop")["blocks.2.attn.attn_drop"][:, 1, 0, 1:].sum().backward()
    assert xg.grad.abs().sum() > 0


def test_head_unit_resolves_to_per_head_outputs(vit, x):
    resolved = vit.resolve("blocks.1.attn:head=2")
    assert (resolved.target, resolved.heads) == ("blocks.1.attn.norm", HEADS)
    with pytest.raises(UnifiedVizError, match=r"valid heads are 0\.\.2"):
        vit.resolve("blocks.1.attn:head=3")
    # attn.norm holds all heads' outputs concatenated: head h is probs_h @ v_h.
    acts = vit.capture(x, ["blocks.1.attn.qkv", "blocks.1.attn.attn_drop", "blocks.1.attn.norm"])
    _, _, v = acts["blocks.1.attn.qkv"].view(2, PATCHES + 1, 3, HEADS, -1).permute(2, 0, 3, 1, 4)
    per_head = acts["blocks.1.attn.norm"].view(2, PATCHES + 1, HEADS, -1)
    torch.testing.assert_close(per_head[:, :, 2], (acts["blocks.1.attn.attn_drop"] @ v)[:, 2])


def test_mlp_hidden_neurons(vit, x):
    for layer in ("blocks.3.mlp.fc1", "blocks.3.mlp.act"):
        resolved = vit.resolve(f"{layer}:neuron=767:token=cls")
        assert resolved.target == layer and resolved.info.shape == (PATCHES + 1, 4 * WIDTH)
        with pytest.raises(UnifiedVizError, match=r"valid neurons are 0\.\.767"):
            vit.resolve(f"{layer}:neuron=768")
    acts = vit.capture(x, ["blocks.3.mlp.fc1", "blocks.3.mlp.act"])
    torch.testing.assert_close(acts["blocks.3.mlp.act"], F.gelu(acts["blocks.3.mlp.fc1"]))


def test_residual_stream_per_block_equals_timm_intermediates(vit, x):
    acts = vit.capture(x, ["blocks.0", "blocks.5"])
    with torch.no_grad():
        inter = vit.model.net.forward_intermediates(
            vit.model.normalise(x), indices=[0, 5], output_fmt="NLC", return_prefix_tokens=True,
            norm=False, intermediates_only=True)
    for layer, (patches, prefix) in zip(("blocks.0", "blocks.5"), inter):
        torch.testing.assert_close(acts[layer], torch.cat([prefix, patches], dim=1))


@pytest.mark.parametrize("name, kwargs, prefix", [
    ("vit_tiny_patch16_224", {}, 1),  # CLS
    ("deit_tiny_distilled_patch16_224", {}, 2),  # CLS + distillation token
    # timm's named register ViTs start at 22M parameters; the same ViT-Tiny with 4 registers:
    ("vit_tiny_patch16_224", {"reg_tokens": 4}, 5),  # CLS + 4 registers
])
def test_prefix_tokens(name, kwargs, prefix, x):
    adapter = _vit(name, **kwargs)
    for layer in ("blocks.0", "blocks.0.mlp.fc1"):
        info = adapter.layer(layer)
        assert (info.layout.kind, info.layout.prefix, info.shape[0]) == ("tokens", prefix, PATCHES + prefix)
    assert adapter.layer("blocks.0.attn.attn_drop").shape == (HEADS, PATCHES + prefix, PATCHES + prefix)
    assert adapter.layer("blocks.0.attn.attn_drop").layout.prefix == prefix
    assert adapter.resolve("blocks.0:token=cls").target == "blocks.0"
    with pytest.raises(UnifiedVizError, match=rf"valid tokens are 0\.\.{PATCHES + prefix - 1}"):
        adapter.resolve(f"blocks.0:token={PATCHES + prefix}")


def test_layers_without_a_unit_layout_are_capturable_but_refuse_units(vit, x):
    # Per-head queries [B, heads, T, d] match no canonical layout: capture them raw, no unit reads them.
    assert vit.layer("blocks.1.attn.q_norm").layout.kind == "other"
    assert vit.capture(x, "blocks.1.attn.q_norm")["blocks.1.attn.q_norm"].shape == (2, HEADS, PATCHES + 1, 64)
    with pytest.raises(UnifiedVizError, match="no unit reads"):
        vit.resolve("blocks.1.attn.q_norm:channel=0")


def test_hf_attention_heads_point_to_the_transformer_lens_bridge(hf_vit_dir):
    adapter = Adapter(load_model(f"hf:{hf_vit_dir}"))
    with pytest.raises(UnifiedVizError, match="load a Hugging Face ViT as tl:DIR"):
        adapter.resolve("vit.layers.0.attention:head=1")
