"""Model construction: heads, CIFAR stem, dropout, model names."""
import pytest
import torch
from torch import nn

from superposition.config import ModelConfig
from superposition.models import build_model
from unifiedviz.adapters import Adapter
from unifiedviz.errors import UnifiedVizError


def test_resnet18_gets_a_new_head_and_the_data_size():
    model = build_model(ModelConfig(), num_classes=7, image_size=32)
    assert model.net.fc.out_features == 7 and model.spec.size == (32, 32)
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 7)
    assert Adapter(model).layer("layer4").shape == (512, 1, 1)  # ImageNet stem: 32 px -> 1x1


def test_cifar_stem_keeps_resolution():
    model = build_model(ModelConfig(cifar_stem=True), num_classes=10, image_size=32)
    assert model.net.conv1.stride == (1, 1) and isinstance(model.net.maxpool, nn.Identity)
    assert Adapter(model).layer("layer4").shape == (512, 4, 4)


def test_dropout_goes_before_the_head_of_any_model():
    for name in ("resnet18", "torchvision:mobilenet_v3_small", "timm:test_resnet"):
        model = build_model(ModelConfig(name=name, dropout=0.3), num_classes=5, image_size=32)
        dropouts = [m for m in model.modules() if isinstance(m, nn.Dropout) and m.p == 0.3]
        heads = [m for m in model.modules() if isinstance(m, nn.Linear)]
        assert dropouts and heads[-1].out_features == 5, name
        assert model.eval()(torch.rand(1, 3, 32, 32)).shape == (1, 5)


def test_bad_model_settings_are_user_errors():
    with pytest.raises(UnifiedVizError, match="resnet18, torchvision:NAME or timm:NAME"):
        build_model(ModelConfig(name="resnet-18"), 10, 32)
    with pytest.raises(UnifiedVizError, match="cifar_stem applies to model.name resnet18 only"):
        build_model(ModelConfig(name="timm:test_resnet", cifar_stem=True), 10, 32)
    with pytest.raises(UnifiedVizError, match="closest"):
        build_model(ModelConfig(name="timm:test_resnt"), 10, 32)
