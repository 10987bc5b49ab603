"""Model sources (every string kind, bad strings, pretrained offline) and safe checkpoint loading."""
from __future__ import annotations

import json
import os
import pickle
import shlex
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import VizModel, load_model
from unifiedviz.models.builtin import CIFAR10_CLASSES, build_builtin

IMAGENET_MEAN = (0.485, 0.456, 0.406)


# ---------------------------------------------------------------- sources
@pytest.mark.parametrize("source, size, mean, prefix", [
    ("timm:resnet18", (224, 224), IMAGENET_MEAN, 0),
    ("timm:vit_tiny_patch16_224", (224, 224), (0.5, 0.5, 0.5), 1),
    ("timm:resnet18.a1_in1k", (224, 224), IMAGENET_MEAN, 0),  # a pretrained tag names the same architecture
    ("torchvision:resnet18", (224, 224), IMAGENET_MEAN, 0),
    ("builtin:cifar_resnet20", (32, 32), IMAGENET_MEAN, 0),
])
def test_library_sources_carry_their_input_contract(source, size, mean, prefix):
    model = load_model(source)
    assert isinstance(model, VizModel) and model.source == source
    assert (model.spec.size, model.spec.channels, model.num_prefix_tokens) == (size, 3, prefix)
    assert model.spec.mean == pytest.approx(mean, abs=1e-3)
    assert not any(m.training for m in model.modules())


def test_hf_source_reads_config_and_preprocessing(hf_vit_dir, tmp_path):
    model = load_model(f"hf:{hf_vit_dir}")
    assert (model.spec.shape, model.spec.mean, model.num_prefix_tokens) == ((3, 32, 32), (0.5,) * 3, 1)
    assert model.class_names == [f"LABEL_{i}" for i in range(5)]
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():  # VizModel takes [0, 1] inputs and normalises them itself
        torch.testing.assert_close(model(x), model.net(pixel_values=(x - 0.5) / 0.5).logits)

    # A saved image processor's mean/std win over the default.
    folder = tmp_path / "with_processor"
    model.net.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.1, 0.2, 0.3], "image_std": [1, 2, 3]}))
    assert load_model(f"hf:{folder}").spec.std == (1, 2, 3)


def test_module_sources():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    with pytest.warns(UserWarning, match="guessed as 3x224x224 without normalisation"):
        model = load_model(conv)
    assert model.net is conv and model.spec.shape == (3, 224, 224) and model.spec.mean == (0.0,)
    assert load_model(model) is model  # a VizModel passes through


def test_hf_module_source_reads_its_config(hf_vit_dir):
    from transformers import ViTForImageClassification

    model = load_model(ViTForImageClassification.from_pretrained(hf_vit_dir))
    assert (model.spec.shape, model.num_prefix_tokens) == ((3, 32, 32), 1)


def test_builtin_source_has_class_names():
    assert load_model("builtin:cifar_resnet20").class_names == CIFAR10_CLASSES


@pytest.mark.parametrize("source, message", [
    ("resnet18", r"cannot read model source 'resnet18': write SCHEME:NAME"),
    ("timm:", r"cannot read model source"),
    ("keras:resnet50", r"SCHEME one of timm, torchvision, hf, tl, builtin, py"),
    ("timm:resnet1800", r"unknown timm model 'resnet1800'; closest: .*resnet18"),
    ("timm:resnet*", r"unknown timm model 'resnet\*'"),
    ("torchvision:resnet1800", r"unknown torchvision model 'resnet1800'; closest: .*resnet18"),
    ("hf:/no/such/dir", r"no config.json there"),
    ("tl:/no/such/dir", r"tl:/no/such/dir: no config.json there"),
    ("builtin:nope", r"unknown built-in model 'nope'; valid names: digits-cnn"),
])
def test_bad_source_strings(source, message):
    with pytest.raises(UnifiedVizError, match=message) as info:
        load_model(source)
    assert "\n" not in str(info.value)


def test_hf_dir_that_is_not_an_image_classifier(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UnifiedVizError, match="is not a loadable Hugging Face image classifier"):
        load_model(f"hf:{tmp_path}")


def test_bad_source_types_and_options():
    with pytest.raises(UnifiedVizError, match="must be a string or an nn.Module, not int"):
        load_model(42)
    with pytest.raises(UnifiedVizError, match="fixed number of classes"):
        load_model("builtin:cifar_resnet20", num_classes=3)


def test_pretrained_offline_timm(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UnifiedVizError, match=r"could not download pretrained weights for timm:resnet18.*--weights"):
        load_model("timm:resnet18", pretrained=True)


def test_pretrained_offline_torchvision(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: torchvision must download
    with pytest.raises(UnifiedVizError, match=r"could not download pretrained weights for torchvision:resnet18"):
        load_model("torchvision:resnet18", pretrained=True)


# ---------------------------------------------------------------- weights
@pytest.fixture
def state() -> dict[str, torch.Tensor]:
    """A ResNet-20 state dict that differs from any fresh initialisation."""
    torch.manual_seed(123)
    return {k: v + torch.rand_like(v.float()).to(v.dtype) for k, v in build_builtin("cifar_resnet20").net.state_dict().items()}


def _assert_loaded(model: VizModel, state: dict[str, torch.Tensor]) -> None:
    loaded = model.net.state_dict()
    assert loaded.keys() == state.keys()
    for k, v in state.items():
        if not k.endswith("num_batches_tracked"):  # a counter some old checkpoints lack
            torch.testing.assert_close(loaded[k], v, msg=k)


def _prefixed(state: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in state.items()}


@pytest.mark.parametrize("fmt", [
    "safetensors", "safetensors-module.", "torch", "torch-model.", "torch-nested-module.", "torch-vizmodel"])
def test_weights_load_from_safetensors_and_torch_files(fmt, state, tmp_path):
    kind, _, prefix = fmt.partition("-")
    if kind == "safetensors":
        path = tmp_path / "w.safetensors"
        save_file(_prefixed(state, prefix), str(path))
    else:
        path = tmp_path / "w.pt"
        if prefix == "nested-module.":  # the layout of akamaster's CIFAR ResNet checkpoints (PyTorch 0.3: no BN counters)
            old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
            obj = {"best_prec1": 91.78, "state_dict": _prefixed(old, "module.")}
        elif prefix == "vizmodel":
            model = build_builtin("cifar_resnet20")
            model.net.load_state_dict(state)
            obj = model.state_dict()  # keys under `net.`
        else:
            obj = _prefixed(state, prefix)
        torch.save(obj, path)
    _assert_loaded(load_model("builtin:cifar_resnet20", weights=path), state)


def test_prefix_is_kept_when_the_architecture_itself_uses_it(tmp_path):
    class Wrapper(nn.Module):  # every key starts with `model.`
        def __init__(self) -> None:
            super().__init__()
            self.model = nn.Linear(3, 2)

    source = Wrapper()
    torch.save(source.state_dict(), tmp_path / "w.pt")
    model = load_model(Wrapper(), weights=tmp_path / "w.pt", input_size=(3,), channels=1)
    torch.testing.assert_close(model.net.model.weight, source.model.weight)


def test_mismatch_lists_missing_unexpected_and_wrong_shape_keys(state, tmp_path):
    state = dict(state)
    del state["layer1.0.conv1.weight"]
    state["extra.weight"] = torch.zeros(1)
    state["linear.bias"] = torch.zeros(3)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(UnifiedVizError) as info:
        load_model("builtin:cifar_resnet20", weights=tmp_path / "w.pt")
    message = str(info.value)
    assert "missing 1 (layer1.0.conv1.weight)" in message
    assert "unexpected 1 (extra.weight)" in message
    assert "wrong shape 1 (linear.bias [3] vs [10])" in message


@pytest.mark.parametrize("name, content, message", [
    ("missing.pt", None, "not found"),
    ("numbers.pt", {"epoch": 3}, "holds no state dict of tensors"),
    ("broken.safetensors", b"\x00" * 64, "cannot read .* as safetensors"),
    ("text.pt", b"not a checkpoint", "refusing to load"),
])
def test_unreadable_weight_files(name, content, message, tmp_path):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(UnifiedVizError, match=message):
        load_model("builtin:cifar_resnet20", weights=path)


class _Payload:
    """Unpickling this runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch notes the raw pickle's protocol
@pytest.mark.parametrize("fmt", ["torch.save", "raw pickle", "pickle named .safetensors"])
def test_malicious_pickle_is_never_executed(fmt, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / ("evil.safetensors" if "safetensors" in fmt else "evil.pt")
    if fmt == "torch.save":
        torch.save({"state_dict": {"conv1.weight": _Payload(marker)}}, path)
    else:
        path.write_bytes(pickle.dumps(_Payload(marker)))

    with pytest.raises(UnifiedVizError, match="refusing to load|cannot read"):
        load_model("builtin:cifar_resnet20", weights=path)
    assert not marker.exists()

    # The payload is real: an unsafe load would have run it.
    if fmt == "torch.save":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())
    assert marker.exists()


SHARED = os.environ.get("UNIFIEDVIZ_SHARED_MODELS")  # opt-in, as in test_builtins.py


@pytest.mark.skipif(not SHARED or not (Path(SHARED) / "cifar10_resnet20.th").is_file(),
                    reason="set UNIFIEDVIZ_SHARED_MODELS to a folder holding cifar10_resnet20.th")
def test_real_cifar_resnet20_checkpoint_loads_through_weights():
    # A real PyTorch-0.3 checkpoint: nested dict, `module.` keys, no BatchNorm counters.
    model = load_model("builtin:cifar_resnet20", weights=Path(SHARED) / "cifar10_resnet20.th")
    assert model.net.linear.weight.abs().sum() > 0


def test_a_builtin_without_shipped_weights_warns_unless_given_weights(tmp_path):
    with pytest.warns(UserWarning, match="randomly initialised"):
        model = load_model("builtin:cifar_resnet32")
    path = tmp_path / "r32.safetensors"
    save_file(model.net.state_dict(), str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_model("builtin:cifar_resnet32", weights=path)
        load_model("builtin:digits-cnn")
