"""The input contract as load_model arguments, the guessed-contract warning, and `py:` sources."""
from __future__ import annotations

import sys
import textwrap
import warnings

import pytest
import torch
from torch import nn

from unifiedviz.adapters import Adapter
from unifiedviz.errors import UnifiedVizError
from unifiedviz.models import InputSpec, VizModel, load_model

pytestmark = pytest.mark.usefixtures("one_thread")

MEAN, STD = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 2))


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------- contract arguments
def test_contract_arguments_set_the_spec_the_probe_size_and_the_normalisation(no_warnings):
    net = _net()
    model = load_model(net, input_size=(32, 32), mean=MEAN, std=STD, class_names=["a", "b"])
    assert isinstance(model, VizModel) and model.net is net and not model.spec_guessed
    assert model.spec == InputSpec((32, 32), 3, MEAN, STD) and model.class_names == ["a", "b"]

    adapter = Adapter(model)
    assert adapter.layer("0").shape == (4, 32, 32)  # probed at 32x32, not 224x224
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net((x - mean) / std))
        torch.testing.assert_close(adapter.capture(x, "0")["0"], net[0]((x - mean) / std))


def test_int_size_is_square_and_one_number_is_broadcast_to_every_channel(no_warnings):
    model = load_model(_net(), input_size=48, mean=0.5, std=0.25)
    assert model.spec == InputSpec((48, 48), 3, (0.5,) * 3, (0.25,) * 3)


def test_one_dimensional_inputs(no_warnings):
    net = nn.Sequential(nn.Conv1d(2, 4, 5, padding=2), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten())
    model = load_model(net, input_size=(64,), channels=2, mean=(0.0, 1.0), std=2.0)
    assert model.spec.shape == (2, 64) and model.spec.std == (2.0, 2.0)
    x = torch.rand(3, 2, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net((x - torch.tensor([0.0, 1.0]).view(1, 2, 1)) / 2.0))
    assert Adapter(model).layer("0").shape == (4, 64)


def test_spec_argument(no_warnings):
    spec = InputSpec((16, 16), 1, (0.5,), (0.5,))
    model = load_model(nn.Sequential(nn.Conv2d(1, 2, 3)), spec=spec)
    assert model.spec == spec and Adapter(model).layer("0").shape == (2, 14, 14)


def test_contract_overrides_a_string_source_and_keeps_the_rest():
    model = load_model("builtin:digits-cnn", mean=0.5, std=0.5, class_names=[str(i) for i in range(10)])
    assert model.spec == InputSpec((32, 32), 1, (0.5,), (0.5,))  # size and channels from the builtin
    assert model.source == "builtin:digits-cnn" and not model.training
    with pytest.warns(UserWarning, match="ships no weights"):
        resized = load_model("builtin:cifar_resnet32", input_size=40)
    assert resized.spec.size == (40, 40) and resized.spec.mean == (0.485, 0.456, 0.406)


def test_contract_on_a_viz_model_leaves_the_original_alone(no_warnings):
    original = VizModel(_net(), InputSpec((8, 8), 3), class_names=["x", "y"])
    model = load_model(original, input_size=16)
    assert model is not original and model.net is original.net
    assert (original.spec.size, model.spec.size, model.class_names) == ((8, 8), (16, 16), ["x", "y"])
    assert load_model(original) is original


# ---------------------------------------------------------------- the guessed-contract warning
def test_a_plain_module_warns_once_that_its_contract_was_guessed():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_model(_net())
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and issubclass(caught[0].category, UserWarning)
    assert "guessed as 3x224x224 without normalisation" in messages[0]
    assert "input_size=" in messages[0] and "mean=" in messages[0] and "std=" in messages[0]
    assert model.spec_guessed and model.spec.shape == (3, 224, 224)


@pytest.mark.parametrize("kwargs", [{"input_size": 32}, {"mean": 0.5, "std": 0.5}, {"channels": 3},
                                    {"spec": InputSpec((32, 32))}])
def test_no_warning_when_the_contract_is_given(kwargs, no_warnings):
    assert not load_model(_net(), **kwargs).spec_guessed


def test_no_warning_for_modules_that_carry_a_contract(no_warnings):
    net = _net()
    net.pretrained_cfg = {"input_size": (3, 64, 64), "mean": MEAN, "std": STD}  # as timm models have
    assert load_model(net).spec == InputSpec((64, 64), 3, MEAN, STD)
    load_model(VizModel(_net(), InputSpec((8, 8))))
    load_model("builtin:digits-cnn")


def test_class_names_alone_do_not_silence_the_warning():
    with pytest.warns(UserWarning, match="guessed"):
        assert load_model(_net(), class_names=["a", "b"]).class_names == ["a", "b"]


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("kwargs, message", [
    ({"input_size": 0}, r"input_size must be a positive integer, not 0"),
    ({"input_size": (32, -1)}, r"each input_size entry must be a positive integer, not -1"),
    ({"input_size": (3, 32, 32)}, r"has 3 numbers: give \(H, W\).*input_size=\(32, 32\), channels=3"),
    ({"input_size": (1, 2, 3, 4)}, r"input_size must be an int, \(H, W\) or \(L,\)"),
    ({"input_size": "32"}, r"input_size must be an int, \(H, W\) or \(L,\), not '32'"),
    ({"input_size": 32.0}, r"input_size must be an int"),
    ({"input_size": True}, r"input_size must be an int"),
    ({"channels": 0}, r"channels must be a positive integer, not 0"),
    ({"mean": (0.1, 0.2)}, r"mean has 2 values but the input has 3 channel\(s\)"),
    ({"std": 0}, r"std must be > 0 \(got 0 at channel 0\)"),
    ({"std": (1, -1, 1)}, r"std must be > 0 \(got -1 at channel 1\)"),
    ({"mean": float("nan")}, r"mean must be a finite number"),
    ({"mean": "imagenet"}, r"mean must be a finite number or a sequence of them"),
    ({"mean": ()}, r"mean must be a finite number"),
    ({"spec": (3, 32, 32)}, r"spec must be an InputSpec, not tuple"),
    ({"spec": InputSpec((32, 32)), "mean": 0.5}, r"either as spec=InputSpec\(...\) or as input_size.*got spec and mean"),
    ({"spec": InputSpec((0, 32))}, r"each input_size entry must be a positive integer"),
    ({"spec": InputSpec((32, 32), 3, (0.0,), (1.0, 0.0, 1.0))}, r"std must be > 0"),
    ({"spec": InputSpec((32, 32), 3, (0.0, 0.0))}, r"mean has 2 values but the input has 3"),
    ({"spec": InputSpec((32, 32), value_range=(1.0, 0.0))}, r"value_range must be \(low, high\) with low < high"),
    ({"class_names": "cat"}, r"class_names must be a non-empty list of strings"),
    ({"class_names": [1, 2]}, r"class_names must be a non-empty list of strings"),
])
def test_bad_contract_arguments(kwargs, message):
    with pytest.raises(UnifiedVizError, match=message) as info:
        load_model(_net(), **kwargs)
    assert "\n" not in str(info.value)


def test_changing_channels_needs_mean_and_std_when_the_model_has_per_channel_ones():
    model = VizModel(_net(), InputSpec((8, 8), 3, MEAN, STD))
    with pytest.raises(UnifiedVizError, match=r"the model's mean has 3 values but channels=1: give mean= and std="):
        load_model(model, channels=1)
    assert load_model(model, channels=1, mean=0.5, std=0.5).spec.shape == (1, 8, 8)


# ---------------------------------------------------------------- py: sources
FILE = """
import torch
from torch import nn

from unifiedviz.models import InputSpec, VizModel


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def build_model():
    torch.manual_seed(0)
    return Tiny()


def tiny_viz():
    return VizModel(Tiny(), InputSpec((16, 16), 3, (0.5,), (0.5,)), class_names=["a", "b"])


def needs_args(width):
    return Tiny()


def broken():
    raise RuntimeError("out of coffee")


def not_a_model():
    return 42


CONSTANT = 3
"""


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "my_net.py"
    path.write_text(textwrap.dedent(FILE))
    return path


def test_py_source_calls_build_model_by_default_or_the_named_factory(model_file, no_warnings):
    model = load_model(f"py:{model_file}", input_size=(32, 32), mean=MEAN, std=STD)
    assert type(model.net).__name__ == "Tiny" and model.source == f"py:{model_file}:build_model"
    assert model.spec == InputSpec((32, 32), 3, MEAN, STD) and not model.training
    assert Adapter(model).layer("conv").shape == (4, 32, 32)

    viz = load_model(f"py:{model_file}:tiny_viz")  # a VizModel carries its contract: no warning
    assert viz.spec.shape == (3, 16, 16) and viz.class_names == ["a", "b"]
    assert viz.source == f"py:{model_file}:tiny_viz"


def test_py_source_without_a_contract_warns(model_file):
    with pytest.warns(UserWarning, match=r"py:.*my_net\.py:build_model carries no input contract"):
        load_model(f"py:{model_file}")


def test_py_source_with_weights(model_file, tmp_path):
    reference = load_model(f"py:{model_file}", input_size=8).net
    with torch.no_grad():
        for p in reference.parameters():
            p.add_(1.0)  # differs from what the factory builds
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in reference.state_dict().items()}}, path)
    model = load_model(f"py:{model_file}", weights=path, input_size=8)
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_py_source_can_import_modules_beside_it(tmp_path, no_warnings):
    (tmp_path / "blocks_for_uv_test.py").write_text("from torch import nn\nWIDTH = 5\n")
    (tmp_path / "uses_sibling.py").write_text(
        "from torch import nn\nimport blocks_for_uv_test\n\n"
        "def build_model():\n    return nn.Conv2d(3, blocks_for_uv_test.WIDTH, 1)\n")
    try:
        model = load_model(f"py:{tmp_path / 'uses_sibling.py'}", input_size=4)
    finally:
        sys.modules.pop("blocks_for_uv_test", None)
    assert model.net.out_channels == 5 and str(tmp_path) not in sys.path


def test_two_files_with_the_same_name_do_not_collide(tmp_path, no_warnings):
    for sub, width in (("a", 2), ("b", 3)):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "net.py").write_text(
            f"from torch import nn\n\ndef build_model():\n    return nn.Conv2d(3, {width}, 1)\n")
    widths = [load_model(f"py:{tmp_path / sub / 'net.py'}", input_size=4).net.out_channels for sub in "ab"]
    assert widths == [2, 3]


@pytest.mark.parametrize("suffix, message", [
    (":no_such", r"my_net\.py has no 'no_such'; callables found: Tiny, build_model, tiny_viz, needs_args, broken, "
                 r"not_a_model; name one with py:.*:NAME"),
    (":CONSTANT", r"has a non-callable 'CONSTANT'"),
    (":broken", r"broken\(\) raised RuntimeError: out of coffee; fix the factory"),
    (":not_a_model", r"not_a_model\(\) returned int, not a model: return a torch.nn.Module or a VizModel"),
    (":needs_args", r"the factory needs arguments \(width\) but is called with none"),
])
def test_py_source_factory_errors(model_file, suffix, message):
    with pytest.raises(UnifiedVizError, match=message) as info:
        load_model(f"py:{model_file}{suffix}")
    assert "\n" not in str(info.value)


def test_py_source_file_errors(tmp_path):
    cases = {
        f"py:{tmp_path / 'missing.py'}": r"no such file",
        f"py:{tmp_path / 'weights.pt'}": r"not a \.py file; write py:PATH\.py:FACTORY \(FACTORY defaults to build_model\)",
    }
    (tmp_path / "syntax.py").write_text("def build_model(:\n")
    cases[f"py:{tmp_path / 'syntax.py'}"] = r"importing .*syntax\.py raised SyntaxError"
    (tmp_path / "raises.py").write_text("import no_such_module_for_uv_tests\n")
    cases[f"py:{tmp_path / 'raises.py'}"] = r"raised ModuleNotFoundError: No module named 'no_such_module_for_uv_tests'"
    (tmp_path / "empty.py").write_text("X = 1\n")
    cases[f"py:{tmp_path / 'empty.py'}"] = r"has no 'build_model'; it defines no functions or classes"
    for source, message in cases.items():
        with pytest.raises(UnifiedVizError, match=message) as info:
            load_model(source)
        assert "\n" not in str(info.value), source
    assert not any(name.startswith("unifiedviz_py_source_") and "syntax" in name for name in sys.modules)


def test_py_source_rejects_pretrained_and_num_classes(model_file):
    for kwargs in ({"pretrained": True}, {"num_classes": 3}):
        with pytest.raises(UnifiedVizError, match="factory is called without arguments"):
            load_model(f"py:{model_file}", **kwargs)


# ---------------------------------------------------------------- the CLI
def test_cli_lists_the_layers_of_cifar_resnet56(capsys):
    from unifiedviz.cli import main

    with pytest.warns(UserWarning, match="ships no weights"):
        assert main(["layers", "builtin:cifar_resnet56"]) == 0
    out = capsys.readouterr().out
    assert "layer3.8" in out and "layer3.9" not in out
