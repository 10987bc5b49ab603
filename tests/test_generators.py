"""Generators for DGN-AM: the registry, the shipped weights, the recipe, shape refusal, the must-show."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from unifiedviz.errors import UnifiedVizError
from unifiedviz.generators import GENERATORS, as_generator, generator_metadata
from unifiedviz.generators.vqvae import _ResidualLayer
from unifiedviz.models.spec import InputSpec
from unifiedviz.params import PARAMS, GeneratorParam, make_param

pytestmark = pytest.mark.usefixtures("one_thread")
WEIGHTS = Path(__file__).resolve().parents[1] / "unifiedviz/generators/weights"


def test_registry_names_and_param_choice():
    assert GENERATORS.names() == ["builtin:digits-gen", "builtin:cifar10-vqvae"]
    assert "generator" in PARAMS.names()
    with pytest.raises(UnifiedVizError, match="did you mean 'builtin:digits-gen'"):
        as_generator("builtin:digits-ge")


def test_weights_are_safetensors_small_and_licensed():
    for name in ("digits_gen.safetensors", "cifar10_vqvae.safetensors"):
        assert (WEIGHTS / name).stat().st_size < 5_000_000
    assert "Permission is hereby granted, free of charge" in (WEIGHTS / "LICENSE.mango").read_text()
    meta = generator_metadata("builtin:cifar10-vqvae")
    assert meta["source_sha256"].startswith("339808c6")


def test_digits_gen_samples_are_digits():
    from unifiedviz.models.builtin import digits_cnn

    gen = as_generator("builtin:digits-gen")
    with torch.no_grad():
        x = gen.module(torch.randn(200, 16, generator=torch.Generator().manual_seed(3)))
        p = digits_cnn()(x).softmax(-1)
    assert x.shape == (200, 1, 32, 32) and x.min() >= 0 and x.max() <= 1
    assert p.max(-1).values.mean() > 0.85            # confident: samples look like digits
    assert len(set(p.argmax(-1).tolist())) == 10     # diverse: every class appears


def test_vqvae_reconstructs_digits_free_photo_like_input():
    # A smooth colour image (a gradient plus a disc) survives encode -> quantise -> decode closely.
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    disc = (((yy - 0.5) ** 2 + (xx - 0.5) ** 2) < 0.08).float()
    img = torch.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * yy, 0.2 + 0.6 * disc]).unsqueeze(0)
    gen = as_generator("builtin:cifar10-vqvae")
    vq = gen.module.module.vqvae
    with torch.no_grad():
        rec = vq.reconstruct(img).clamp(0, 1)
        noise = vq.reconstruct(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert ((rec - img) ** 2).mean() < 0.01
    assert ((rec - img) ** 2).mean() < ((noise - img) ** 2).mean()


def test_residual_skip_carries_relu_of_input():
    layer = _ResidualLayer(4, 2)
    nn.init.zeros_(layer._block[3].weight)  # the block adds nothing: output = skip
    x = torch.randn(1, 4, 3, 3)
    assert torch.equal(layer(x), torch.relu(x))


def test_vqvae_snap_straight_through():
    gen = as_generator("builtin:cifar10-vqvae", snap=True)
    z = torch.randn(1, 64, 8, 8, requires_grad=True)
    gen.module(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    inner = gen.module.module.vqvae
    w = gen.module.mean + gen.module.std * z.detach()
    snapped = inner.quantize(w, straight_through=False)
    with torch.no_grad():
        assert torch.allclose(gen.module(z), inner.decode(snapped), atol=1e-5)
    with pytest.raises(UnifiedVizError, match="unknown option"):
        as_generator("builtin:digits-gen", snap=True)


def test_recipe_defaults_clip_decay_and_schedule():
    spec = InputSpec(size=(32, 32), channels=1)
    param = make_param("generator", 3, spec, generator="builtin:digits-gen", seed=[1, 2, 3])
    lo, hi = param.clip
    assert param.decay == 0.01 and param.schedule == 256 and lo.shape == (16,)
    with torch.no_grad():
        param.z.fill_(100.0)
    param.after_step()
    assert torch.allclose(param.z, hi.expand(3, -1))  # clipped to the encoded digits' range


def test_schedule_shrinks_steps_cosine():
    gen = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid(), nn.Unflatten(1, (1, 2, 2)))
    param = GeneratorParam(gen, 1, 2, output_range=(0, 1), schedule=4, seed=0)
    taken = []
    for _ in range(6):
        before = param.z.detach().clone()
        with torch.no_grad():
            param.z.add_(1.0)  # a unit "optimiser step"
        param.after_step()
        taken.append(round(float((param.z.detach() - before)[0, 0]), 4))
    assert taken[0] == 1.0 and taken[1] > taken[2] > taken[3]
    assert taken[1] == pytest.approx(0.1 + 0.45 * (1 + 0.7071), abs=1e-3)
    assert taken[3] == pytest.approx(0.1 + 0.45 * (1 - 0.7071), abs=1e-3) and taken[4:] == [0.1, 0.1]


def test_user_module_generator():
    class Up(nn.Module):
        latent_shape = (3, 4, 4)

        def forward(self, z):
            return torch.sigmoid(nn.functional.interpolate(z, size=(8, 8)))

    param = make_param("generator", 2, InputSpec(size=(8, 8)), generator=Up(), seed=[0, 1])
    assert param().shape == (2, 3, 8, 8)
    with pytest.raises(UnifiedVizError, match="needs latent_shape"):
        make_param("generator", 1, InputSpec(size=(8, 8)), generator=nn.Identity())


@pytest.mark.parametrize("gen, size, channels, got, want", [
    ("builtin:cifar10-vqvae", (32, 32), 1, "[3, 32, 32]", "[1, 32, 32]"),
    ("builtin:digits-gen", (28, 28), 1, "[1, 32, 32]", "[1, 28, 28]"),
])
def test_shape_mismatch_names_both_shapes(gen, size, channels, got, want):
    with pytest.raises(UnifiedVizError) as err:
        make_param("generator", 1, InputSpec(size=size, channels=channels), generator=gen)
    message = str(err.value)
    assert got in message and want in message and "\n" not in message


def test_generator_param_needs_a_generator():
    with pytest.raises(UnifiedVizError, match="needs a generator"):
        make_param("generator", 1, InputSpec(size=(32, 32), channels=1))


def _vit_agreement(images: torch.Tensor) -> int:
    from unifiedviz.models.builtin import digits_vit

    with torch.no_grad():
        return int((digits_vit()(images).argmax(-1) == torch.arange(10)).sum())


def test_must_show_api_digits_vit_reads_dgn_am_classes():
    from unifiedviz.visualize import visualize

    r = visualize("builtin:digits-cnn", "class=0:10", param="generator",
                  param_options={"generator": "builtin:digits-gen"}, progress=False)
    assert _vit_agreement(r.images) >= 9


def test_must_show_cli(tmp_path):
    out = tmp_path / "D"
    done = subprocess.run([sys.executable, "-m", "unifiedviz", "visualize", "builtin:digits-cnn", "class=0:10",
                           "--param", "generator", "--generator", "builtin:digits-gen", "--out", str(out),
                           "--threads", "1", "--quiet"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    pngs = sorted(out.glob("unit_*.png"))
    assert len(pngs) == 10
    import numpy as np

    images = torch.stack([torch.tensor(np.asarray(Image.open(p).convert("L")), dtype=torch.float32) / 255
                          for p in pngs]).unsqueeze(1)
    assert _vit_agreement(images) >= 9


def test_cli_generator_flag_rules(tmp_path):
    from unifiedviz.cli import main

    assert main(["visualize", "builtin:digits-cnn", "class=0", "--generator", "builtin:digits-gen",
                 "--out", str(tmp_path / "a")]) == 2
    assert main(["visualize", "builtin:digits-cnn", "class=0", "--param", "generator",
                 "--generator", "builtin:cifar10-vqvae", "--out", str(tmp_path / "b"), "--steps", "1"]) == 2


def test_config_selects_generator(tmp_path):
    from unifiedviz.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: builtin:digits-cnn\nunits: ['class=3']\nparam: generator\n"
                   "generator: builtin:digits-gen\nsteps: 40\nquiet: true\n")
    assert main(["visualize", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 0
    assert len(list((tmp_path / "o").glob("unit_*.png"))) == 1
