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


def test_train_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("x")
    assert main([*ARGS, "--out", str(tmp_path)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
