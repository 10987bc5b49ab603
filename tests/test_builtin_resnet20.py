"""`builtin:cifar_resnet20` ships the real CIFAR-10 ResNet-20 (akamaster/pytorch_resnet_cifar10, BSD-2-Clause)."""
from __future__ import annotations

import hashlib
import os
from fnmatch import fnmatch
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from unifiedviz.models import load_model
from unifiedviz.models.builtin import build_builtin, builtin_metadata, weights_path
from unifiedviz.models.builtin.cifar_resnet import CIFAR10_CLASSES

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[1]
SOURCE_SHA256 = "12fca82f0bebc4135bf1f32f6e3710e61d5108578464b84fd6d7f5c1b04036c8"


@pytest.fixture(scope="module")
def model():
    return load_model("builtin:cifar_resnet20")


def test_weights_and_licence_ship_as_package_data():
    path = weights_path("cifar_resnet20")
    assert path.suffix == ".safetensors" and path.stat().st_size < 2 * 2**20
    assert "Yerlan Idelbayev" in (path.parent / "LICENSE.resnet20").read_text()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["unifiedviz.models.builtin"]
    for shipped in ("weights/cifar_resnet20.safetensors", "weights/LICENSE.resnet20"):
        assert any(fnmatch(shipped, pattern) for pattern in patterns), shipped
    meta = builtin_metadata("cifar_resnet20")
    assert meta["source_sha256"] == SOURCE_SHA256 and meta["reported_test_accuracy"] == "91.78"


def test_shipped_weights_load_and_the_first_conv_matches_a_hand_computed_one(model):
    state = load_file(str(weights_path("cifar_resnet20")))
    assert torch.equal(model.net.conv1.weight, state["conv1.weight"])
    assert torch.equal(model.net.layer3[2].bn2.running_var, state["layer3.2.bn2.running_var"])
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    seen = {}
    hook = model.net.conv1.register_forward_hook(lambda m, i, o: seen.update(conv1=o.detach()))
    with torch.no_grad():
        model(x)
    hook.remove()
    # By hand: normalise with the ImageNet statistics, zero-pad by 1, a 3x3x3 dot product per output.
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    padded = np.pad(((x[0] - mean) / std).double().numpy(), ((0, 0), (1, 1), (1, 1)))
    w = state["conv1.weight"].double().numpy()  # [16, 3, 3, 3], no bias
    for c, y, xx in [(0, 0, 0), (5, 10, 20), (15, 31, 31), (9, 16, 3)]:
        expected = float((w[c] * padded[:, y:y + 3, xx:xx + 3]).sum())
        assert float(seen["conv1"][0, c, y, xx]) == pytest.approx(expected, abs=1e-4)


def test_it_is_a_trained_cifar10_classifier_with_its_contract(model):
    assert model.class_names == CIFAR10_CLASSES and model.spec.shape == (3, 32, 32)
    assert model.spec.mean == (0.485, 0.456, 0.406) and model.spec.std == (0.229, 0.224, 0.225)
    untrained = build_builtin("cifar_resnet20", load_weights=False)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert not torch.allclose(model(x), untrained(x), atol=1e-2)


@pytest.mark.parametrize("photo, label", [("chelsea", "cat"), ("horse", "horse")])
def test_it_names_the_scikit_image_pictures_of_cifar_classes(model, photo, label):
    pytest.importorskip("skimage")
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from convert_resnet20 import photo as load_photo

    with torch.no_grad():
        probs = model(load_photo(photo)).softmax(1)[0]
    assert CIFAR10_CLASSES[int(probs.argmax())] == label and float(probs.max()) > 0.9


SHARED = os.environ.get("UNIFIEDVIZ_SHARED_MODELS")


@pytest.mark.skipif(not SHARED or not (Path(SHARED) / "cifar10_resnet20.th").is_file(),
                    reason="set UNIFIEDVIZ_SHARED_MODELS to a folder holding cifar10_resnet20.th")
def test_shipped_tensors_are_the_published_checkpoints(model):
    path = Path(SHARED) / "cifar10_resnet20.th"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SOURCE_SHA256
    source = torch.load(path, weights_only=True, map_location="cpu")["state_dict"]
    ours = model.net.state_dict()
    for key, value in source.items():
        assert torch.equal(ours[key.removeprefix("module.")], value), key
