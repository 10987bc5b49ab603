"""The `unifiedviz` command: layers, visualize (flags and --config), one-line errors with exit code 2."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from unifiedviz.cli import main

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "visualize"


def test_layers_prints_a_table(capsys):
    assert main(["layers", "builtin:digits-cnn", "--filter", "conv*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["layer", "type", "shape", "layout"]
    assert [line.split()[0] for line in lines[1:]] == ["conv1", "conv2", "conv3"]
    assert lines[2].split()[2:] == ["32x16x16", "conv"]


@pytest.mark.parametrize("argv, message", [
    (["layers", "digits-cnn"], "write SCHEME:NAME"),
    (["layers", "builtin:digits-cnm"], "valid names: digits-cnn"),
    (["visualize", "builtin:digits-cnn", "conv22:channel=0"], "closest: conv2"),
    (["visualize", "builtin:digits-cnn", "conv2:channel=32"], "valid channels are 0..31"),
    (["visualize", "builtin:digits-cnn", "conv2:chanel=3"], "unknown selector 'chanel'"),
    (["visualize", "builtin:digits-cnn"], "give MODEL and UNITS"),
    (["layers", "builtin:digits-cnn", "--weights", "missing.safetensors"], "not found"),
])
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_process_exit_code_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "unifiedviz", "layers", "timm:not_a_model"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("unifiedviz: error: unknown timm model")
    assert "Traceback" not in proc.stderr


def test_visualize_writes_images_and_summary(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["visualize", "builtin:digits-cnn", "conv2:channel=0:3", "class=7", "--steps", "24", "--seed", "1",
            "--reference", "digits", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [u["address"] for u in summary["units"]] == ["conv2:channel=0", "conv2:channel=1", "conv2:channel=2",
                                                        "class=7"]
    assert all(isinstance(u["reference_max"], float) and "above_reference" in u for u in summary["units"])
    assert summary["metadata"]["seed"] == 1 and summary["metadata"]["steps"] == 24
    assert {"grid.png", "unit_000.png", "unit_003.png"} <= {p.name for p in out.iterdir()}
    assert "wrote 4 images" in capsys.readouterr().out


def test_visualize_config_and_flags_override(tmp_path):
    config = yaml.safe_load((CONFIGS / "digits_cnn.yaml").read_text())
    config.update(units=["conv3:channel=5"], steps=10, out=str(tmp_path / "from_config"))
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["visualize", "--config", str(path), "--steps", "6", "--quiet"]) == 0
    summary = json.loads((tmp_path / "from_config" / "summary.json").read_text())
    assert summary["metadata"]["steps"] == 6  # the flag wins over the file
    assert summary["metadata"]["param"] == "fourier" and summary["units"][0]["address"] == "conv3:channel=5"


def test_config_typo_names_key_and_file(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("model: builtin:digits-cnn\nunits: [class=1]\nstep: 5\n")
    assert main(["visualize", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'step'" in err and "bad.yaml" in err and "did you mean 'steps'" in err


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_shipped_visualize_configs_are_valid(name):
    from unifiedviz.cli.visualize import VisualizeOptions
    from unifiedviz.options import build, read_yaml

    opts = build(VisualizeOptions, read_yaml(CONFIGS / name), name)
    opts.check()
    assert opts.model and opts.units


NETS_PY = '''
import torch
from torch import nn


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 4))
'''


def test_visualize_a_users_own_model_code(tmp_path):
    """`py:FILE.py:factory` with its input contract on the command line renders 32-px images."""
    (tmp_path / "nets.py").write_text(NETS_PY)
    out = tmp_path / "run"
    argv = ["visualize", f"py:{tmp_path / 'nets.py'}:small_cnn", "0:channel=0:2", "class=3", "--input-size", "32",
            "--mean", "0.49", "0.48", "0.45", "--std", "0.25", "--steps", "3", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [u["address"] for u in summary["units"]] == ["0:channel=0", "0:channel=1", "class=3"]
    from PIL import Image

    assert Image.open(out / "unit_000.png").size == (32, 32)


def test_load_model_with_a_contract_renders_at_that_size():
    import warnings

    import torch
    from torch import nn

    import unifiedviz as uv

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the contract is given: no guess, no warning
        model = uv.load_model(net, input_size=(32, 32), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    result = uv.visualize(model, "class=1", steps=2, progress=False)
    assert tuple(result.images.shape) == (1, 3, 32, 32)
