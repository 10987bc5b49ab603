"""Shared fixtures: a tiny local Hugging Face ViT, a hand-written reference hook, a hook-leak check."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

# Before anything imports huggingface_hub (it reads this once): no test may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from torch import nn


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: small batches on a shared 2-core VM otherwise spin-wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def hf_vit_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-block ViTForImageClassification (32x32, 4 heads), saved offline."""
    from transformers import ViTConfig, ViTForImageClassification

    torch.manual_seed(0)
    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                       intermediate_size=64, num_labels=5)
    folder = tmp_path_factory.mktemp("hf_vit")
    ViTForImageClassification(config).save_pretrained(folder)
    return folder


@contextlib.contextmanager
def _recording(module: nn.Module):
    """Collect a detached clone of every output `module` produces (the reference for adapters)."""
    outputs: list[torch.Tensor] = []

    def hook(mod, inputs, output):
        out = output[0] if isinstance(output, (tuple, list)) else output
        outputs.append(out.detach().clone())

    handle = module.register_forward_hook(hook)
    try:
        yield outputs
    finally:
        handle.remove()


@pytest.fixture
def recording():
    """`with recording(module) as outs: model(x)` -> outs[k] is the k-th call's output."""
    return _recording


@pytest.fixture
def hooked_modules():
    """Modules under `model` that carry hooks, name -> hook count (should be {} after a capture)."""

    def find(model: nn.Module) -> dict[str, int]:
        counts = {
            name: len(mod._forward_hooks) + len(mod._forward_pre_hooks) + len(mod._backward_hooks)
            for name, mod in model.named_modules(remove_duplicate=False)
        }
        return {name: n for name, n in counts.items() if n}

    return find
