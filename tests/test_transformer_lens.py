"""TransformerLens 4.x bridge around a local HF ViT: TL hook names as layers, values, heads, gradients, early stop."""
from __future__ import annotations

import pytest
import torch

from unifiedviz.adapters import Adapter
from unifiedviz.models import load_model

HEADS, TOKENS, WIDTH = 4, 17, 32  # the conftest ViT: 32x32 input, 8x8 patches + CLS, D=32


@pytest.fixture(scope="module")
def reference(hf_vit_dir):
    """The same HF ViT, loaded separately (booting a bridge rewires the model it wraps), eager attention."""
    from transformers import ViTForImageClassification

    return ViTForImageClassification.from_pretrained(hf_vit_dir, attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def bridge(hf_vit_dir):
    from transformers import ViTForImageClassification

    from unifiedviz.models.bridges import boot_bridge

    return boot_bridge(ViTForImageClassification.from_pretrained(hf_vit_dir), "tiny-vit")


@pytest.fixture(scope="module")
def adapter(hf_vit_dir) -> Adapter:
    return Adapter(load_model(f"tl:{hf_vit_dir}"))


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(0))


def test_bridge_module_takes_its_input_contract_from_the_hf_config(bridge):
    for adapter in (Adapter(bridge), Adapter(load_model(bridge))):
        model = adapter.model
        assert model.net is bridge
        assert (model.spec.shape, model.spec.mean, model.num_prefix_tokens) == ((3, 32, 32), (0.5,) * 3, 1)


def test_tl_hook_names_are_layers(adapter):
    names = [info.name for info in adapter.layers()]
    for name in ("blocks.0.hook_resid_post", "blocks.1.hook_resid_pre", "blocks.0.attn.hook_pattern",
                 "blocks.0.attn.hook_z", "blocks.0.mlp.hook_post", "blocks.0.attn", "hook_embed"):
        assert name in names
    assert not any("_original_component" in n for n in names)
    pattern = adapter.layer("blocks.1.attn.hook_pattern")
    assert (pattern.shape, pattern.layout.kind, pattern.layout.prefix) == ((HEADS, TOKENS, TOKENS), "attention", 1)
    assert adapter.layer("blocks.0.mlp.hook_post").shape == (TOKENS, 64)


def test_activations_equal_the_hf_model(adapter, reference, x):
    acts = adapter.capture(x, ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "blocks.1.attn.hook_pattern"])
    with torch.no_grad():
        out = reference(pixel_values=adapter.model.normalise(x), output_hidden_states=True, output_attentions=True)
    torch.testing.assert_close(acts["blocks.0.hook_resid_post"], out.hidden_states[1])
    torch.testing.assert_close(acts["blocks.1.hook_resid_post"], out.hidden_states[2])
    torch.testing.assert_close(acts["blocks.1.attn.hook_pattern"], out.attentions[1])
    torch.testing.assert_close(acts["blocks.1.attn.hook_pattern"].sum(-1), torch.ones(2, HEADS, TOKENS))


def test_head_units_split_hook_z(adapter, x):
    resolved = adapter.resolve("blocks.1.attn:head=3")
    assert (resolved.target, resolved.heads) == ("blocks.1.attn.hook_z", HEADS)
    assert adapter.resolve("blocks.1.attn.hook_pattern:head=3").target == "blocks.1.attn.hook_pattern"
    with pytest.raises(ValueError, match=r"valid heads are 0\.\.3"):
        adapter.resolve("blocks.1.attn:head=4")
    # hook_z is the pattern-weighted values, heads concatenated along D.
    acts = adapter.capture(x, ["blocks.1.attn.hook_v", "blocks.1.attn.hook_pattern", "blocks.1.attn.hook_z"])
    v = acts["blocks.1.attn.hook_v"].view(2, TOKENS, HEADS, -1).transpose(1, 2)
    z = acts["blocks.1.attn.hook_z"].view(2, TOKENS, HEADS, -1).transpose(1, 2)
    torch.testing.assert_close(z, acts["blocks.1.attn.hook_pattern"] @ v)


def test_gradients_reach_the_input(adapter, x):
    for layer in ("blocks.0.hook_resid_post", "blocks.1.mlp.hook_post", "blocks.0.attn.hook_pattern"):
        xg = x.clone().requires_grad_(True)
        adapter.capture(xg, layer)[layer][:, 0].square().sum().backward()
        assert xg.grad.abs().sum() > 0, layer


def test_early_stop_and_no_hooks_left(adapter, x, hooked_modules):
    # The bridge wires its own pre-hooks on its first forward pass: only ours must be gone.
    adapter.model(x)
    own = hooked_modules(adapter.model)
    calls = []
    handle = adapter.modules["ln_final.hook_in"].register_forward_hook(lambda *_: calls.append(1))
    try:
        adapter.capture(x, "blocks.0.hook_resid_post")
        assert calls == []
        adapter.capture(x, "blocks.0.hook_resid_post", stop_early=False)
        assert calls == [1]
    finally:
        handle.remove()
    assert hooked_modules(adapter.model) == own
