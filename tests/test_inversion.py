"""Network inversion: the losses on hand-computed cases, the generator, shape errors, resume of a
killed run, and `unifiedviz invert` end to end on a shortened config."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from unifiedviz.errors import UnifiedVizError
from unifiedviz.inversion import (ConditionedGenerator, InversionConfig, cosine_diversity, cross_entropy,
                                  load_generator, orthogonality, pixel_range, total_variation, train_inversion)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(batch_size=10, width=8, latent_dim=8, samples_per_class=4)


# ------------------------------------------------------------------ losses, by hand
def test_cross_entropy_hand():
    assert float(cross_entropy(torch.zeros(1, 2), torch.tensor([0]))) == pytest.approx(math.log(2))
    assert float(cross_entropy(torch.tensor([[0.0, math.log(3)]]), torch.tensor([1]))) == pytest.approx(math.log(4 / 3))


def test_cosine_diversity_hand():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # pairs: (0,1) 0, (0,2) 1/sqrt2, (1,2) 1/sqrt2; each counted twice in the 6 off-diagonal entries
    assert float(cosine_diversity(f)) == pytest.approx(4 / math.sqrt(2) / 6)
    assert float(cosine_diversity(f, torch.tensor([0, 0, 1]))) == pytest.approx(0.0)
    assert float(cosine_diversity(f, torch.tensor([0, 1, 1]))) == pytest.approx(1 / math.sqrt(2))
    assert float(cosine_diversity(f, torch.tensor([0, 1, 2]))) == 0.0  # no pair shares a label
    assert float(cosine_diversity(torch.tensor([[2.0, 0.0], [5.0, 0.0]]))) == pytest.approx(1.0)  # scale-free


def test_orthogonality_hand():
    assert float(orthogonality(torch.tensor([[1.0, 0.0], [3.0, 0.0]]))) == pytest.approx(0.5)  # G-I = [[0,1],[1,0]]
    assert float(orthogonality(torch.tensor([[2.0, 0.0], [0.0, 0.5]]))) == pytest.approx(0.0)
    f = torch.tensor([[1.0, 0.0], [1.0, 1.0]])  # off-diagonal 1/sqrt2 twice: (2 * 1/2) / 4
    assert float(orthogonality(f)) == pytest.approx(0.25)


def test_total_variation_hand():
    x = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # vertical diffs 0, horizontal 1
    assert float(total_variation(x)) == pytest.approx(1.0)
    x = torch.tensor([[[[0.0, 0.0], [0.5, 0.5]]]])
    assert float(total_variation(x)) == pytest.approx(0.5)
    assert float(total_variation(torch.full((2, 1, 4, 4), 0.3))) == 0.0


def test_pixel_range_hand():
    x = torch.tensor([-0.5, 0.5, 2.0])
    assert float(pixel_range(x)) == pytest.approx((0.25 + 0 + 1) / 3)
    assert float(pixel_range(x, -1.0, 2.0)) == 0.0


def test_losses_have_gradients():
    f = torch.randn(6, 5, requires_grad=True)
    (cosine_diversity(f, torch.tensor([0, 0, 1, 1, 2, 2])) + orthogonality(f)).backward()
    assert f.grad is not None and torch.isfinite(f.grad).all()


# ------------------------------------------------------------------ generator and shapes
def test_generator_label_vector_and_conditioning_matrix():
    torch.manual_seed(0)
    g = ConditionedGenerator(10, (1, 32, 32), latent_dim=8, width=8).eval()
    labels = torch.tensor([3, 7])
    assert g.label_vector(labels).tolist()[0] == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert g.conditioning_matrix(labels).shape == (2, 1, 8, 8)
    z = torch.randn(1, 8)
    assert g(z.repeat(2, 1), labels).shape == (2, 1, 32, 32)
    assert not torch.allclose(g(z, labels[:1]), g(z, labels[1:]))  # the label changes the image
    odd = ConditionedGenerator(3, (3, 30, 30), latent_dim=4, width=8)
    assert odd(torch.randn(2, 4), torch.tensor([0, 2])).shape == (2, 3, 30, 30)


class WrongSize(nn.Module):
    latent_dim = 8

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 28 * 28)

    def forward(self, z, labels):
        return self.fc(z).view(-1, 1, 28, 28)


def test_shape_error_is_one_line(one_thread):
    with pytest.raises(UnifiedVizError) as e:
        train_inversion("builtin:digits-cnn", InversionConfig(steps=1, **TINY), generator=WrongSize(),
                        progress=False, model_name="builtin:digits-cnn")
    msg = str(e.value)
    assert "\n" not in msg and "[1, 28, 28]" in msg and "[1, 32, 32]" in msg and "builtin:digits-cnn" in msg


def test_feature_layer_error(one_thread):
    with pytest.raises(UnifiedVizError):
        train_inversion("builtin:digits-cnn", InversionConfig(steps=1, feature_layer="nope", **TINY), progress=False)


# ------------------------------------------------------------------ resume of a killed run
class Kill(Exception):
    pass


def _killer(at: int):
    import lightning as L

    class Killer(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == at:
                raise Kill(f"killed at step {at}")

    return Killer()


@pytest.mark.parametrize("prior", [dict(prior=None), dict(prior="builtin:digits-gen", prior_lr=1e-3)],
                         ids=["pixels", "prior-fine-tuned"])
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path, one_thread, prior):
    cfg = InversionConfig(steps=8, checkpoint_every=2, **{**TINY, **prior})
    ck = tmp_path / "run" / "last.safetensors"
    with pytest.raises(Kill):
        train_inversion("builtin:digits-cnn", cfg, checkpoint=ck, progress=False, callbacks=[_killer(5)])
    from unifiedviz.inversion.checkpoint import load_checkpoint_file

    assert load_checkpoint_file(ck)["global_step"] == 4  # the last checkpoint before the kill
    resumed = train_inversion("builtin:digits-cnn", cfg, checkpoint=ck, resume=True, progress=False)
    assert resumed.resumed_from == 4 and resumed.steps == 8
    straight = train_inversion("builtin:digits-cnn", cfg, checkpoint=tmp_path / "b" / "last.safetensors",
                               progress=False)
    assert straight.steps == 8
    for (k, a), b in zip(resumed.generator.state_dict().items(), straight.generator.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k
    assert resumed.last["loss"] == pytest.approx(straight.last["loss"], rel=1e-4)


# ------------------------------------------------------------------ the data prior (prior=GENERATOR)
def _prior_generator(**kw):
    from unifiedviz.generators import as_generator
    from unifiedviz.inversion import LatentConditionedGenerator

    torch.manual_seed(0)
    return LatentConditionedGenerator(10, as_generator("builtin:digits-gen"), latent_dim=8, width=16, **kw).eval()


def test_prior_generator_draws_decoded_clipped_codes():
    from unifiedviz.generators import as_generator

    g = _prior_generator()
    prior = as_generator("builtin:digits-gen")
    z, labels = torch.randn(4, 8), torch.tensor([0, 3, 3, 9])
    with torch.no_grad():
        codes = g.code(z, labels)
        assert codes.shape == (4, 16)
        # every sample is the prior's image of its (clipped) code
        assert torch.allclose(g(z, labels), prior.module(codes.clamp(prior.clip[0], prior.clip[1])), atol=1e-6)
        far = torch.full((1, 16), 50.0)  # far outside the encoded digits' range: decoded at the clip's edge
        assert torch.allclose(g.decode(far), prior.module(prior.clip[1][None]), atol=1e-6)
        assert not torch.allclose(g(z[:1], labels[:1]), g(z[:1], torch.tensor([7])))  # the label changes the image
    assert g.label_vector(labels)[1].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert g.condition.weight.shape == (16, 10)  # the conditioning matrix: one learned map per class
    assert not any(p.requires_grad for p in g.decoder.parameters())  # frozen by default
    assert all(p.requires_grad for p in g.fine_tune(True).decoder.parameters())


def test_prior_loss_is_the_mean_squared_code():
    from unifiedviz.adapters import as_adapter
    from unifiedviz.inversion import inversion_loss

    cfg = InversionConfig(loss_prior=0.5, **TINY)
    x = torch.rand(2, 1, 32, 32)
    labels = torch.tensor([0, 1])
    adapter = as_adapter("builtin:digits-cnn")
    with_prior = inversion_loss(adapter, x, labels, "dropout", cfg, torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    without = inversion_loss(adapter, x, labels, "dropout", cfg)
    assert float(with_prior["prior"]) == pytest.approx(7.5)  # (1 + 4 + 9 + 16) / 4
    assert float(with_prior["loss"]) == pytest.approx(float(without["loss"]) + 0.5 * 7.5, rel=1e-5)
    assert "prior" not in without


def test_prior_training_learns_labels_and_keeps_a_frozen_decoder(one_thread):
    from unifiedviz.inversion import read_as, sample

    from unifiedviz.generators import as_generator
    from unifiedviz.inversion.train import new_generator

    cfg = InversionConfig(steps=30, prior="builtin:digits-gen", loss_prior=0.01, lr=0.01,
                          **{**TINY, "batch_size": 20, "width": 32})
    torch.manual_seed(0)
    untrained = new_generator(cfg, 10, (1, 32, 32))
    run = train_inversion("builtin:digits-cnn", cfg, progress=False)

    shipped = as_generator("builtin:digits-gen").module.state_dict()
    assert all(torch.equal(v, shipped[k]) for k, v in run.generator.decoder.state_dict().items())
    accuracy = {}
    for name, g in (("before", untrained), ("after", run.generator)):
        x, y = sample(g, 10, 5)
        accuracy[name] = float((read_as("builtin:digits-cnn", x) == y).float().mean())
    assert accuracy["after"] >= 0.8 and accuracy["after"] > accuracy["before"] + 0.3


def test_prior_generator_file_round_trip(tmp_path):
    from unifiedviz.inversion import save_generator

    g = _prior_generator(prior_name="builtin:digits-gen")
    with torch.no_grad():
        g.decoder.net[0].bias.add_(0.1)  # a fine-tuned decoder is saved with the generator
    save_generator(g, tmp_path / "g.safetensors")
    back = load_generator(tmp_path / "g.safetensors")
    z, labels = torch.randn(3, 8), torch.tensor([1, 2, 3])
    with torch.no_grad():
        assert torch.allclose(back(z, labels), g(z, labels), atol=1e-6)


@pytest.mark.parametrize("prior, message", [("builtin:digits-ge", "did you mean 'builtin:digits-gen'"),
                                            ("builtin:cifar10-vqvae", "[3, 32, 32]")])
def test_bad_prior_is_one_line(prior, message, one_thread):
    with pytest.raises(UnifiedVizError) as e:
        train_inversion("builtin:digits-cnn", InversionConfig(steps=1, prior=prior, **TINY), progress=False)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_checkpoint_is_safetensors(tmp_path, one_thread):
    ck = tmp_path / "last.safetensors"
    train_inversion("builtin:digits-cnn", InversionConfig(steps=2, checkpoint_every=1, **TINY), checkpoint=ck,
                    progress=False)
    from safetensors import safe_open

    with safe_open(str(ck), framework="pt") as f:  # a real safetensors file: no pickle inside
        assert "unifiedviz.checkpoint" in f.metadata()


# ------------------------------------------------------------------ config and the command
def test_digits_yaml_is_the_default():
    raw = yaml.safe_load((ROOT / "configs/inversion/digits.yaml").read_text())
    defaults = {f.name: getattr(InversionConfig(), f.name) for f in dataclasses.fields(InversionConfig)}
    assert raw == defaults


def _cli(*args: str) -> int:
    from unifiedviz.cli import main

    return main(list(args))


def test_invert_cli_short_run_and_resume(tmp_path, one_thread, capsys):
    out = tmp_path / "inv"
    common = ["invert", "builtin:digits-cnn", "--config", str(ROOT / "configs/inversion/digits.yaml"),
              "--set", "batch_size=20", "--set", "samples_per_class=10", "--set", "checkpoint_every=20",
              "--quiet", "--out", str(out)]
    assert _cli(*common, "--steps", "60") == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps"] == 60 and len(m["accuracy_per_class"]) == 10
    assert m["accuracy"] >= 0.5  # shortened run; the full default config's numbers are in docs/generative.md
    assert sorted(p.name for p in (out / "samples").iterdir()) == sorted(f"class_{k}.png" for k in range(10))
    g = load_generator(out / "generator.safetensors")
    assert g(torch.randn(2, g.latent_dim), torch.tensor([0, 1])).shape == (2, 1, 32, 32)
    # an existing run is refused without --resume/--force, in one line
    assert _cli(*common, "--steps", "60") == 2
    assert "--resume" in capsys.readouterr().err
    # resume to more steps continues the step count
    assert _cli(*common, "--steps", "70", "--resume") == 0
    m2 = json.loads((out / "metrics.json").read_text())
    assert m2["resumed_from"] == 60 and m2["steps"] == 70
    # a setting that changes results is refused on resume
    assert _cli(*common, "--steps", "80", "--resume", "--lr", "0.1") == 2
    assert "lr" in capsys.readouterr().err
