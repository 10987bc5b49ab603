"""Sequence Dreaming: UCR loaders, the GunPoint built-in, centred-class / border AM, regularisers, measures, CLI."""
from __future__ import annotations

import json
import sys
import urllib.error

import pytest
import torch

from unifiedviz.errors import UnifiedVizError
from unifiedviz.models.builtin import build_builtin, builtin_metadata, weights_path
from unifiedviz.objectives import OBJECTIVES, Context
from unifiedviz.sequences import load_ucr, model_sequences, read_ucr_file, ucr
from unifiedviz.sequences.dream import border_dream, dream
from unifiedviz.sequences.measures import (
    dtw,
    hf_energy,
    nearest_real,
    pairwise,
    real_to_real,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TS = """# two cases, three classes declared
@problemName FordA
@timeStamps false
@univariate true
@classLabel true -1 1 7
@data
0.5,1.0,-2.0,3.5:1
-1,0,1,2:-1
"""
TS_MULTI = """@problemName Toy
@dimensions 2
@classLabel true walk run
@data
1,2,3:4,5,6:run
7,8,9:1,1,1:walk
"""
TSV = "2\t0.1\t0.2\t0.3\n1\t1\t2\t3\n10\t4\t5\t6\n"


@pytest.fixture(scope="module")
def gunpoint():
    if ucr.aeon_data_dir() is None:  # aeon's bundled GunPoint: no network
        pytest.skip("aeon (the timeseries extra) is not installed")
    model = build_builtin("gunpoint-cnn")
    return model, model_sequences(model.source, model.spec, "train")


# ---------------------------------------------------------------- loaders
def test_ts_and_tsv_files_load_as_batch_channel_length(tmp_path):
    (tmp_path / "FordA").mkdir()
    (tmp_path / "FordA" / "FordA_TRAIN.ts").write_text(TS)
    data = load_ucr("FordA", "train", root=tmp_path)
    assert data.x.shape == (2, 1, 4) and data.x.dtype == torch.float32
    assert data.classes == ["-1", "1", "7"] and data.y.tolist() == [1, 0]  # order from @classLabel
    assert data.x[0, 0].tolist() == [0.5, 1.0, -2.0, 3.5]
    multi = tmp_path / "Toy_TEST.ts"
    multi.write_text(TS_MULTI)
    m = load_ucr("Toy", "test", root=tmp_path)  # root/NAME_SPLIT.ts also found
    assert m.x.shape == (2, 2, 3) and m.classes == ["walk", "run"] and m.y.tolist() == [1, 0]
    assert m.x[0, 1].tolist() == [4.0, 5.0, 6.0]
    (tmp_path / "FordA" / "FordA_TEST.tsv").write_text(TSV)
    t = load_ucr("FordA", "test", root=tmp_path)
    assert t.x.shape == (3, 1, 3) and t.classes == ["1", "2", "10"] and t.y.tolist() == [1, 0, 2]  # numeric order


def test_bad_files_and_missing_sets_fail_with_one_line(tmp_path, monkeypatch):
    ragged = tmp_path / "R_TRAIN.ts"
    ragged.write_text("@classLabel true a b\n@data\n1,2,3:a\n1,2:b\n")
    with pytest.raises(UnifiedVizError, match="equal-length"):
        read_ucr_file(ragged)
    undeclared = tmp_path / "U_TRAIN.ts"
    undeclared.write_text("@classLabel true a b\n@data\n1,2:c\n")
    with pytest.raises(UnifiedVizError, match="not among the declared classes"):
        read_ucr_file(undeclared)
    with pytest.raises(UnifiedVizError) as err:
        load_ucr("FordA", "train", root=tmp_path)
    assert "FordA/FordA_TRAIN.ts" in str(err.value) and "download=True" in str(err.value)
    assert "\n" not in str(err.value)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(UnifiedVizError) as err:
        load_ucr("FordA", "train", root=tmp_path, download=True)
    message = str(err.value)
    assert "cannot download FordA" in message and "no network" in message and "\n" not in message
    assert not list((tmp_path / "FordA").iterdir())  # no partial file left
    with pytest.raises(UnifiedVizError, match="'train' or 'test'"):
        load_ucr("FordA", "valid", root=tmp_path)


def test_bundled_gunpoint_loads_offline_without_importing_aeon():
    if ucr.aeon_data_dir() is None:
        pytest.skip("aeon (the timeseries extra) is not installed")
    before = "aeon" in sys.modules
    d = load_ucr("GunPoint", "test")
    build_builtin("gunpoint-cnn")
    assert tuple(d.x.shape) == (150, 1, 150) and d.classes == ["1", "2"] and d.source.endswith("GunPoint_TEST.ts")
    assert ("aeon" in sys.modules) == before  # found as package data, never imported


# ---------------------------------------------------------------- the built-in model
def test_gunpoint_cnn_ships_small_weights_with_its_test_accuracy(gunpoint):
    model, _ = gunpoint
    assert weights_path("gunpoint-cnn").stat().st_size < 2**20
    assert model.spec.shape == (1, 150) and model.class_names == ["Gun-Draw", "Point"] and not model.training
    test = model_sequences(model.source, model.spec, "test")
    with torch.no_grad():
        acc = (model(test.x).argmax(1) == test.y).float().mean().item()
    assert acc >= 0.95
    assert abs(acc - float(builtin_metadata("gunpoint-cnn")["test_accuracy"])) <= 1 / len(test) + 1e-6
    untrained = build_builtin("gunpoint-cnn", load_weights=False)
    with torch.no_grad():
        assert (untrained(test.x).argmax(1) == test.y).float().mean().item() < 0.8


# ---------------------------------------------------------------- terms and measures
def test_sequence_terms_are_registered_and_zero_where_they_should_be(gunpoint):
    model, real = gunpoint
    assert {"gaussian", "realism", "border"} <= set(OBJECTIVES.names())
    const = torch.full((2, 1, 150), 0.4)
    assert OBJECTIVES.get("gaussian")(2.0)(Context({}, const)).abs().max() < 1e-6
    noisy = const + 0.1 * torch.randn(2, 1, 150, generator=torch.Generator().manual_seed(0))
    assert (OBJECTIVES.get("gaussian")(2.0)(Context({}, noisy)) > 0.5).all()
    term = OBJECTIVES.get("realism")(real.x, real.y, [int(real.y[0]), 1 - int(real.y[0])])
    d = term(Context({}, real.x[:1].expand(2, -1, -1)))
    assert d[0] == 0 and d[1] > 0  # a real sequence is at distance 0 from its own class only
    logits = torch.tensor([[1.0, 1.0], [3.0, 0.0]])
    b = OBJECTIVES.get("border")(torch.tensor([[0.5, 0.5], [0.5, 0.5]]))
    score = b(Context({"<logits>": logits}, const))
    assert abs(float(score[0])) < 1e-6 and score[1] < -0.5
    with pytest.raises(UnifiedVizError, match="sum to 1"):
        OBJECTIVES.get("border")(torch.tensor([[0.5, 0.6]]))
    with pytest.raises(UnifiedVizError, match="sigma"):
        OBJECTIVES.get("gaussian")(0.0)


def test_dtw_and_high_frequency_energy():
    t = torch.linspace(0, 1, 60)
    a = torch.sin(2 * torch.pi * 2 * t).view(1, 1, -1)
    shifted = torch.roll(a, 5, -1)
    assert float(dtw(a, a)) == 0
    assert float(dtw(a, shifted)) < 0.5 * float(pairwise(a, shifted)[0, 0])  # warping absorbs a shift
    x, y = torch.randn(3, 2, 20), torch.randn(4, 2, 20)
    assert (pairwise(x, y, "dtw") <= pairwise(x, y) + 1e-5).all()
    # Hand-computed: |0-0|^2 + |1-1|^2 + |1-2|^2 path vs. warping: a=[0,1,1], b=[0,1,2] -> sqrt(1)
    assert float(dtw(torch.tensor([[[0.0, 1, 1]]]), torch.tensor([[[0.0, 1, 2]]]))) == pytest.approx(1.0)
    labels = torch.tensor([0, 0, 1, 1])
    base = real_to_real(y, labels, "dtw")
    assert base.shape == (4,) and torch.isfinite(base).all()
    assert float(nearest_real(y[:1], y, labels, [0])) == 0
    assert float(hf_energy(a)) < 1e-3 and float(hf_energy(torch.randn(4, 1, 200).sign()).min()) > 0.5


# ---------------------------------------------------------------- Sequence Dreaming
def test_centred_class_sequences_have_p_above_0_9_for_every_class(gunpoint):
    model, _ = gunpoint
    d = dream(model, starts=2, steps=80)
    assert d.classes == [0, 0, 1, 1]
    p = d.probabilities[torch.arange(4), torch.tensor(d.classes)]
    assert (p > 0.9).all(), p
    assert not torch.allclose(d.sequences[0], d.sequences[1], atol=1e-2)  # the starts differ


def test_border_sequences_reach_the_target_probabilities(gunpoint):
    model, _ = gunpoint
    for target in (0.5, 0.3):
        b = border_dream(model, pairs=[(0, 1)], target=target, starts=2, steps=120)
        assert (b.probabilities - b.targets).abs().max() < 0.1, (target, b.probabilities)
    with pytest.raises(UnifiedVizError, match="two different classes"):
        border_dream(model, pairs=[(0, 0)])


def test_smoothing_lowers_hf_energy_and_realism_brings_sequences_nearer_real_ones(gunpoint):
    model, real = gunpoint
    plain = dream(model, starts=2, steps=80)
    smooth = dream(model, starts=2, steps=80, smoothing=0.2)
    realistic = dream(model, starts=2, steps=80, realism=20.0, real=real)
    for d in (smooth, realistic):
        assert (d.probabilities[torch.arange(4), torch.tensor(d.classes)] > 0.9).all()
    assert hf_energy(smooth.sequences).mean() < 0.5 * hf_energy(plain.sequences).mean()
    near = lambda d: nearest_real(d.sequences, real.x, real.y, d.classes).mean()
    assert near(realistic) < 0.5 * near(plain)


def test_intermediate_channels_through_the_unit_grammar(gunpoint):
    model, _ = gunpoint
    d = dream(model, units="conv2:channel=0:2", starts=1, steps=30)
    assert d.names == ["conv2:channel=0", "conv2:channel=1"] and d.classes == [None, None]
    assert d.sequences.shape == (2, 1, 150)


# ---------------------------------------------------------------- the CLI, unchanged
def test_visualize_cli_writes_sequence_plots_and_measures(gunpoint, tmp_path):
    from unifiedviz.cli import main

    out = tmp_path / "run"
    assert main(["visualize", "builtin:gunpoint-cnn", "class=0:2", "--out", str(out), "--steps", "40",
                 "--quiet", "--threads", "1"]) == 0
    assert {"grid.png", "sequences.png", "summary.json"} <= {p.name for p in out.iterdir()}
    summary = json.loads((out / "summary.json").read_text())
    units = summary["units"]
    assert [u["address"] for u in units] == ["class=0", "class=1"]
    for c, u in enumerate(units):
        assert u["class_probability"] > 0.9 and u["class_probabilities"][c] == pytest.approx(u["class_probability"], abs=1e-5)
        assert u["nearest_real_dtw"] <= u["nearest_real_euclidean"] + 1e-4
        assert 0 <= u["hf_energy_above_0.1"] <= 1
    seq = summary["sequences"]
    assert seq["reference"].startswith("GunPoint train (50") and seq["real_to_real_dtw_mean"] > 0
