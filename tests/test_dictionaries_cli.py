"""`unifiedviz dictionary train`: output policy, files, metrics, resume, and a latent that visualizes."""
from __future__ import annotations

import json

import pytest
import torch

from unifiedviz.cli import main

ARGS = ["dictionary", "train", "builtin:digits-cnn", "conv2", "--data", "digits-test", "--limit", "64",
        "--steps", "20", "--batch-size", "256", "--buffer-rows", "2048", "--image-batch", "16", "--quiet",
        "--threads", "1"]


def test_train_writes_dictionary_metrics_plots_and_resumes(tmp_path, one_thread):
    out = tmp_path / "run"
    assert main([*ARGS, "--out", str(out)]) == 0
    for name in ("dictionary.safetensors", "metrics.json", "plots/density.png", "checkpoints/last.ckpt",
                 ".unifiedviz-run.json"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m["steps"] == 20 and m["config"]["n_latents"] == 128
    assert 0 < m["reconstruction"]["l0"] <= 8
    assert m["peak_buffer_rows"] <= 2048 // 2 + 16 * 256  # half the buffer kept + one model batch
    assert set(m["selectivity"]) == {"neurons", "latents"}
    assert main([*ARGS, "--steps", "30", "--out", str(out), "--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == 30
    from unifiedviz.unit_kinds.latent import use_dictionary
    from unifiedviz.adapters import Adapter
    from unifiedviz.models.builtin import build_builtin
    from unifiedviz.objectives import read_unit

    use_dictionary(out / "dictionary.safetensors")
    try:
        adapter = Adapter(build_builtin("digits-cnn", load_weights=False))
        r = adapter.resolve("conv2:latent=3")
        assert read_unit(r, adapter.capture(torch.rand(2, 1, 32, 32), "conv2")["conv2"]).shape == (2,)
    finally:
        use_dictionary(None)


def test_train_with_an_encoder_reports_monosemanticity(tmp_path, capsys, one_thread):
    out = tmp_path / "run"
    assert main([*ARGS, "--steps", "5", "--encoder", "builtin:digits-vit", "--out", str(out)]) == 0
    ms = json.loads((out / "metrics.json").read_text())["monosemanticity"]
    assert ms["encoder"] == "builtin:digits-vit" and ms["encoder_layer"] == "head_drop"
    assert ms["neurons"]["units"] == 32 and ms["latents"]["units"] == 128
    assert -1 <= ms["neurons"]["mean"] <= 1 and -1 <= ms["latents"]["mean"] <= 1
    assert main([*ARGS, "--encoder-layer", "head", "--out", str(tmp_path / "b")]) == 2
    assert "needs --encoder" in capsys.readouterr().err
    assert main([*ARGS, "--encoder", "builtin:digits-vit", "--encoder-layer", "nope", "--out", str(tmp_path / "c")]) == 2
    assert not (tmp_path / "c" / "metrics.json").exists()


def test_train_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("x")
    assert main([*ARGS, "--out", str(tmp_path)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]


@pytest.fixture(scope="module")
def trained_twice(tmp_path_factory):
    """One tiny run with --stability (two seeds): its folder."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("dictionary") / "run"
    assert main([*ARGS, "--steps", "30", "--stability", "--out", str(out)]) == 0
    torch.set_num_threads(before)
    return out


def test_stability_trains_two_seeds_and_reports_matched_cosine(trained_twice):
    m = json.loads((trained_twice / "metrics.json").read_text())
    s = m["stability"]
    assert s["seeds"] == [0, 1]
    for part in ("decoder", "encoder"):
        assert -1 <= s[part]["mean"] <= 1 and 0 <= s[part]["fraction_above_0.9"] <= 1
    # two seeds from different random atoms end closer than two untrained random dictionaries do
    from superposition.dictionaries import SparseAutoencoder
    from superposition.dictionaries.metrics import matched_cosine

    a, b = (SparseAutoencoder(32, expansion=4, seed=s).W_dec.detach() for s in (0, 1))
    assert s["decoder"]["mean"] > matched_cosine(a, b)["mean"]
    assert (trained_twice / "checkpoints" / "stability" / "last.ckpt").is_file()


def test_visualize_renders_a_latent_from_dictionary_option(trained_twice, tmp_path, capsys, one_thread):
    from unifiedviz.unit_kinds import latent

    path = trained_twice / "dictionary.safetensors"
    out = tmp_path / "vis"
    argv = ["visualize", "builtin:digits-cnn", "conv2:latent=3", "--steps", "24", "--out", str(out), "--quiet",
            "--threads", "1"]
    assert main(argv) == 2  # no dictionary named anywhere
    assert "--dictionary FILE" in capsys.readouterr().err
    assert main([*argv, "--dictionary", str(path)]) == 0
    assert latent._current is None  # the choice lasted the run only
    summary = json.loads((out / "summary.json").read_text())
    assert [u["address"] for u in summary["units"]] == ["conv2:latent=3"]
    history = summary["history_mean"]
    assert history[-1] > history[0] + 0.1 * abs(history[0]), history  # the latent's value rose
    assert (out / "unit_000.png").is_file()


def test_superposition_run_puts_dictionary_metrics_side_by_side(tmp_path, capsys, one_thread):
    from pathlib import Path

    smoke = Path(__file__).resolve().parents[1] / "configs" / "superposition" / "digits_smoke.yaml"
    sets = ["train.epochs=1", "runs=[baseline,active]", "metrics.embeddings=[]", "metrics.per_round=false",
            "data.name=synthetic", "data.image_size=null", "data.synthetic.num_train=64",
            "data.synthetic.num_test=32", "active.initial_size=32", "active.query_size=16", "active.rounds=2",
            "dictionary.enabled=true", "dictionary.layer=layer4", "dictionary.expansion=1", "dictionary.steps=15",
            "dictionary.batch_size=32", "dictionary.buffer_rows=128"]
    out = tmp_path / "sp"
    argv = ["superposition", "run", str(smoke), "--quiet", "--threads", "1", "--out", str(out)]
    assert main([*argv, *[a for s in sets for a in ("--set", s)]]) == 0
    m = json.loads((out / "metrics.json").read_text())
    for run in ("baseline", "active"):
        d = m[run]["dictionary"]
        assert d["layer"] == "layer4" and d["steps"] == 15 and d["config"]["n_latents"] == 512
        assert d["reconstruction"]["rows"] == 32 and 0 < d["reconstruction"]["l0"] <= 8
        assert {"neurons", "latents"} == set(d["selectivity"])
    report = (out / "report.md").read_text()
    for row in ("dictionary explained variance (512-latent topk SAE on `layer4`)", "classes per neuron, mean",
                "classes per latent, mean"):
        line = next(x for x in report.splitlines() if row in x)
        assert line.count("|") == 5 and "–" not in line.split("|")[2:4], line  # baseline | active | difference
    assert main([*argv, "--force", "--set", "dictionary.enabled=true", "--set", "dictionary.layer=nope"]) == 2
    assert "dictionary.layer" in capsys.readouterr().err
