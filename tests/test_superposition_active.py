"""The active-learning loop: round semantics, and resume after a real kill gives identical results."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from superposition.config import load_config
from superposition.experiment import run_experiment
from unifiedviz.errors import UnifiedVizError

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "data.name=synthetic", "data.synthetic.num_train=256", "data.synthetic.num_test=60",
    "data.synthetic.num_classes=3", "data.synthetic.image_size=16", "data.batch_size=16",
    "model.name=timm:test_resnet", "train.epochs=2", "train.accelerator=cpu", "train.devices=1",
    "train.progress_bar=false", "active.initial_size=32", "active.query_size=48", "active.rounds=4",
    "metrics.cosine_layers=[layer4.0.conv2]", "metrics.embeddings=[tsne]",
]


def tiny_yaml(tmp_path: Path, extra=()) -> Path:
    cfg = load_config(None, TINY + list(extra))
    path = tmp_path / "tiny.yaml"
    path.write_text(cfg.to_yaml())
    return path


def rounds_of(out: Path) -> list[Path]:
    return sorted((out / "active").glob("round_*"))


def test_rounds_grow_the_labelled_set_by_queries(tmp_path):
    cfg = load_config(tiny_yaml(tmp_path), ["runs=[active]", "metrics.embeddings=[]"])
    metrics = run_experiment(cfg, tmp_path / "run", progress=False)
    records = metrics["active"]["rounds"]
    assert [r["labeled"] for r in records] == [32, 80, 128, 176]
    assert [r["added"] for r in records] == [0, 48, 48, 48]
    sets = [set(np.load(d / "labeled.npy").tolist()) for d in rounds_of(tmp_path / "run")]
    assert all(a < b for a, b in zip(sets, sets[1:]))  # each round keeps every earlier image
    # only the newest round keeps weights (enough to resume)
    assert [(d / "model.safetensors").exists() for d in rounds_of(tmp_path / "run")] == [False, False, False, True]
    assert all(0.0 <= r["accuracy"] <= 1.0 and "layer4" in r["layers"] for r in records)
    assert "baseline" not in metrics


def test_too_many_rounds_fail_before_training(tmp_path):
    cfg = load_config(tiny_yaml(tmp_path), ["active.rounds=10"])
    with pytest.raises(UnifiedVizError, match=r"32 \+ 9 x 48 images but the training set has 256"):
        run_experiment(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_unknown_strategy_fails_before_round_0_trains(tmp_path):
    from superposition.active import run_active
    from superposition.data import SuperpositionData

    cfg = load_config(None, TINY + ["runs=[active]"])
    cfg.active.strategy = "least_confident"  # past the config check: run_active must still refuse it
    data = SuperpositionData(cfg.data, cfg.seed)
    data.setup()
    with pytest.raises(UnifiedVizError, match=r"unknown active-learning strategy 'least_confident': did you mean "
                                              r"'least_confidence'\? choose one of .*coreset"):
        run_active(cfg, data, tmp_path / "active", device="cpu")
    assert not (tmp_path / "active").exists()


def test_unknown_metric_layer_fails_before_training(tmp_path):
    cfg = load_config(tiny_yaml(tmp_path), ["metrics.layers=[layer5]"])
    with pytest.raises(UnifiedVizError, match=r"metrics.layers: unknown layer 'layer5'; closest: layer4"):
        run_experiment(cfg, tmp_path / "run", progress=False)


def test_resume_after_kill_matches_an_uninterrupted_run(tmp_path):
    config = tiny_yaml(tmp_path)
    whole = run_experiment(load_config(config), tmp_path / "whole", progress=False)

    killed = tmp_path / "killed"
    script = "import sys; from unifiedviz.cli import main; sys.exit(main(sys.argv[1:]))"
    # Same thread count as this process, so that float sums are reduced in the same order.
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    proc = subprocess.Popen([sys.executable, "-c", script, "superposition", "run", str(config), "--out", str(killed),
                             "--quiet"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (killed / "active" / "round_00").exists():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "round 0 never finished"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    finished = len(rounds_of(killed))
    assert finished < 4 and not (killed / "metrics.json").exists(), "the kill came too late to test resuming"

    with pytest.raises(UnifiedVizError, match="already exists"):
        run_experiment(load_config(config), killed, progress=False)
    kept = [killed / "baseline" / "model.safetensors"] + [d / "round.json" for d in rounds_of(killed)]
    stamps = [p.stat().st_mtime_ns for p in kept]
    resumed = run_experiment(load_config(config), killed, resume=True, progress=False)
    assert [p.stat().st_mtime_ns for p in kept] == stamps  # finished work was reused, not redone

    assert resumed == whole  # every metric, every round record
    for a, b in zip(rounds_of(tmp_path / "whole"), rounds_of(killed), strict=True):
        np.testing.assert_array_equal(np.load(a / "labeled.npy"), np.load(b / "labeled.npy"))
    final_a = load_file(str(rounds_of(tmp_path / "whole")[-1] / "model.safetensors"))
    final_b = load_file(str(rounds_of(killed)[-1] / "model.safetensors"))
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    assert json.loads((killed / "metrics.json").read_text())["active"]["rounds"][-1]["labeled"] == 176
