import os
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

from unifiedviz.datasets import DIGITS_CLASSES, load_digits_images
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models.builtin import BUILTINS, build_builtin, builtin_metadata, weights_path
from unifiedviz.models.builtin.cifar_resnet import CIFAR10_CLASSES
from unifiedviz.models.spec import VizModel

DIGITS_MODELS = ["digits-cnn", "digits-vit"]


def test_unknown_name_lists_valid_names():
    with pytest.raises(UnifiedVizError) as err:
        build_builtin("digits-mlp")
    message = str(err.value)
    assert "digits-mlp" in message and "\n" not in message
    for name in BUILTINS:
        assert name in message


@pytest.mark.parametrize("name", DIGITS_MODELS)
def test_shipped_weights_are_small_safetensors(name):
    path = weights_path(name)
    assert path.suffix == ".safetensors"
    assert path.stat().st_size < 5 * 2**20


@pytest.mark.parametrize("name", DIGITS_MODELS)
def test_shipped_digits_models_are_accurate(name):
    model = build_builtin(name)
    assert isinstance(model, VizModel) and not model.training
    assert model.spec.shape == (1, 32, 32) and model.class_names == DIGITS_CLASSES
    x, y = load_digits_images("test")
    with torch.no_grad():
        acc = (model(x).argmax(1) == y).float().mean().item()
    assert acc > 0.95
    # The accuracy written into the weights' metadata is what the weights really achieve
    # (within one test image, to allow for floating-point differences between machines).
    assert abs(acc - float(builtin_metadata(name)["test_accuracy"])) <= 1 / len(y) + 1e-6


@pytest.mark.parametrize("name", DIGITS_MODELS)
def test_load_weights_false_gives_untrained_model(name):
    trained, untrained = build_builtin(name), build_builtin(name, load_weights=False)
    x, y = load_digits_images("test")
    with torch.no_grad():
        acc = (untrained(x).argmax(1) == y).float().mean().item()
    assert acc < 0.5
    assert trained.state_dict().keys() == untrained.state_dict().keys()


def test_digits_cnn_stages_are_named_and_hookable():
    net = build_builtin("digits-cnn", load_weights=False).net
    names = [n for n, _ in net.named_children()]
    for stage in (1, 2, 3):
        assert [f"conv{stage}", f"relu{stage}", f"pool{stage}"] == names[names.index(f"conv{stage}"):][:3]
    assert names[-1] == "fc"
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    assert len(relus) == 3 and not any(m.inplace for m in relus)
    # A hook on conv3 sees 64 meaningful 8x8 maps, unchanged by the ReLU after it.
    seen = {}
    net.conv3.register_forward_hook(lambda m, i, o: seen.setdefault("conv3", o))
    net(torch.randn(2, 1, 32, 32))
    assert seen["conv3"].shape == (2, 64, 8, 8) and (seen["conv3"] < 0).any()


def test_digits_vit_uses_timm_names_and_prefix_token():
    from timm.models.vision_transformer import VisionTransformer

    model = build_builtin("digits-vit", load_weights=False)
    assert isinstance(model.net, VisionTransformer)
    assert model.num_prefix_tokens == 1 == model.net.num_prefix_tokens
    names = dict(model.net.named_modules())
    for name in ("patch_embed.proj", "blocks.0.attn", "blocks.3.attn.qkv", "blocks.2.mlp.fc1", "norm", "head"):
        assert name in names
    seen = {}
    model.net.blocks[1].register_forward_hook(lambda m, i, o: seen.setdefault("tokens", o))
    model(torch.rand(3, 1, 32, 32))
    assert seen["tokens"].shape == (3, 1 + 64, 64)  # CLS + 8x8 patches, width 64


# --- cifar_resnet20 ... cifar_resnet110 -------------------------------------------------

CIFAR_RESNETS = {"cifar_resnet20": 3, "cifar_resnet32": 5, "cifar_resnet44": 7, "cifar_resnet56": 9,
                 "cifar_resnet110": 18}  # name -> BasicBlocks per stage (depth 6n + 2)


def _reference_resnet_shapes(blocks: int = 3) -> dict[str, tuple[int, ...]]:
    """Keys and shapes of the akamaster checkpoints, written out from their published layout."""
    def bn(prefix, n):
        return {f"{prefix}.{k}": (n,) for k in ("weight", "bias", "running_mean", "running_var")}

    shapes = {"conv1.weight": (16, 3, 3, 3), **bn("bn1", 16)}
    in_planes = 16
    for stage, planes in zip((1, 2, 3), (16, 32, 64)):
        for block in range(blocks):
            p = f"layer{stage}.{block}"
            shapes[f"{p}.conv1.weight"] = (planes, in_planes, 3, 3)
            shapes.update(bn(f"{p}.bn1", planes))
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            shapes.update(bn(f"{p}.bn2", planes))
            in_planes = planes
    shapes.update({"linear.weight": (10, 64), "linear.bias": (10,)})
    return shapes


def _load_akamaster_checkpoint(model: VizModel, path: Path) -> dict:
    ckpt = torch.load(path, weights_only=True, map_location="cpu")
    state = {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items()}
    model.net.load_state_dict(state, strict=True)
    return ckpt


@pytest.mark.parametrize("name, blocks", CIFAR_RESNETS.items())
def test_cifar_resnets_match_checkpoint_key_layout_and_block_counts(name, blocks):
    from unifiedviz.models.builtin.cifar_resnet import BasicBlock

    assert name in BUILTINS
    model = build_builtin(name)
    assert model.source == f"builtin:{name}" and model.spec.shape == (3, 32, 32) and not model.training
    net = model.net
    per_stage = [sum(isinstance(m, BasicBlock) for m in getattr(net, f"layer{s}").modules()) for s in (1, 2, 3)]
    assert per_stage == [blocks] * 3
    assert 2 * sum(per_stage) + 2 == int(name.removeprefix("cifar_resnet"))  # two convs per block + stem + fc
    # BatchNorm's num_batches_tracked is newer than those checkpoints; everything else must match.
    ours = {k: tuple(v.shape) for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert ours == _reference_resnet_shapes(blocks)


def test_cifar_resnet20_is_still_importable_by_name():
    from unifiedviz.models.builtin import cifar_resnet20

    assert cifar_resnet20.__name__ == "cifar_resnet20"
    assert sum(1 for _ in cifar_resnet20(load_weights=False).net.layer2) == 3


def test_cifar_resnet20_loads_checkpoint_format(tmp_path):
    source = build_builtin("cifar_resnet20")
    torch.manual_seed(0)
    with torch.no_grad():  # non-trivial BN statistics so a mis-loaded buffer would show
        for name, t in source.net.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t) * 0.1)
    # Same container as the real file: legacy serialisation, DataParallel prefixes,
    # no num_batches_tracked (the real one also stores CUDA tensors; map_location handles that).
    state = OrderedDict(
        (f"module.{k}", v.clone()) for k, v in source.net.state_dict().items() if not k.endswith("num_batches_tracked")
    )
    path = tmp_path / "resnet20.th"
    torch.save({"best_prec1": 91.5, "state_dict": state}, path, _use_new_zipfile_serialization=False)

    target = build_builtin("cifar_resnet20")
    ckpt = _load_akamaster_checkpoint(target, path)
    assert ckpt["best_prec1"] == 91.5
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(target(x), source(x), atol=1e-6)
        assert not torch.allclose(build_builtin("cifar_resnet20")(x), source(x), atol=1e-3)


def test_cifar_resnet56_loads_an_akamaster_checkpoint_through_load_model(tmp_path, one_thread):
    from unifiedviz.models import load_model
    from unifiedviz.models.builtin.cifar_resnet import cifar_resnet_net

    torch.manual_seed(0)
    reference = cifar_resnet_net(56).eval()
    with torch.no_grad():  # non-trivial BN statistics so a mis-loaded buffer would show
        for name, t in reference.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand_like(t) + 0.5 if "running_var" in name else torch.randn_like(t) * 0.1)
    # akamaster's trainer saves {'best_prec1': ..., 'state_dict': model.state_dict()} of a DataParallel model.
    state = OrderedDict(
        (f"module.{k}", v.clone()) for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")
    )
    path = tmp_path / "resnet56.th"
    torch.save({"best_prec1": 93.0, "state_dict": state}, path)

    model = load_model("builtin:cifar_resnet56", weights=path)
    assert model.spec.shape == (3, 32, 32) and model.class_names == CIFAR10_CLASSES
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(model.normalise(x))
        torch.testing.assert_close(model(x), expected)
        assert not torch.allclose(build_builtin("cifar_resnet56")(x), expected, atol=1e-3)


def test_cifar_resnet20_blocks_and_relus_are_hookable():
    model = build_builtin("cifar_resnet20")
    assert model.spec.shape == (3, 32, 32) and model.class_names == CIFAR10_CLASSES
    assert model.spec.mean == (0.485, 0.456, 0.406) and model.spec.std == (0.229, 0.224, 0.225)
    seen = {}
    for name in ("layer1.0", "layer2.0", "layer3.2", "layer2.0.bn2", "layer3.2.relu2"):
        model.net.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: seen.setdefault(name, o.clone()))
    model(torch.rand(2, 3, 32, 32))
    assert seen["layer1.0"].shape == (2, 16, 32, 32)
    assert seen["layer2.0"].shape == (2, 32, 16, 16)
    assert seen["layer3.2"].shape == (2, 64, 8, 8) and (seen["layer3.2"] >= 0).all()
    assert torch.equal(seen["layer3.2"], seen["layer3.2.relu2"])  # the block's output is its last ReLU's
    assert (seen["layer2.0.bn2"] < 0).any()  # pre-residual BN output is not rewritten in place


SHARED = os.environ.get("UNIFIEDVIZ_SHARED_MODELS")
REAL_CKPT = Path(SHARED) / "cifar10_resnet20.th" if SHARED else None


@pytest.mark.skipif(REAL_CKPT is None or not REAL_CKPT.is_file(),
                    reason="set UNIFIEDVIZ_SHARED_MODELS to a folder holding cifar10_resnet20.th")
def test_real_resnet20_sees_a_cat_in_chelsea():
    skimage_data = pytest.importorskip("skimage.data")
    model = build_builtin("cifar_resnet20")
    ckpt = _load_akamaster_checkpoint(model, REAL_CKPT)
    assert ckpt["best_prec1"] > 90
    img = torch.tensor(skimage_data.chelsea()).permute(2, 0, 1).float().div(255)[None]
    h, w = img.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = img[..., top:top + side, left:left + side]
    x = torch.nn.functional.interpolate(crop, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        probs = model(x).softmax(1)[0]
    top2 = [model.class_names[i] for i in probs.topk(2).indices]
    assert "cat" in top2, f"top-2 was {top2}"
