"""The superposition experiment under DDP (`train.strategy: ddp`): two CPU processes on gloo.

digits_smoke.yaml shrunk with --set (active learning only, 2 rounds of 1 epoch on 16x16 images, no
t-SNE/UMAP or cosine plots):
Lightning re-runs the command in a second process, both train, rank 0 alone writes the run
folder and its metrics are finite. Run as a subprocess: Lightning launches the second rank by
re-running the command line, which inside pytest would be pytest's.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from unifiedviz.report.run_folder import read_manifest

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "superposition" / "digits_smoke.yaml"
SMALL = ["runs=[active]", "train.epochs=1", "active.rounds=2", "active.initial_size=100", "active.query_size=100",
         "metrics.embeddings=[]", "metrics.cosine_layers=[]", "metrics.max_samples=100",
         "data.image_size=16", "train.progress_bar=false"]
DDP = ["train.strategy=ddp", "train.accelerator=cpu", "train.devices=2"]


def _numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, float):
        yield tree


def test_digits_smoke_trains_under_ddp_with_two_processes_and_rank_0_alone_writes(tmp_path):
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "unifiedviz", "superposition", "run", str(CONFIG), "--out", str(out),
            "--quiet", "--threads", "1"]
    for item in SMALL + DDP:
        argv += ["--set", item]
    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in proc.stderr  # a second process really trained

    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no logs or checkpoints of Lightning's own
    manifest = read_manifest(out)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != ".unifiedviz-run.json")
    assert manifest["complete"] and sorted(manifest["files"]) == written  # one writer: everything listed, once
    metrics = json.loads((out / "metrics.json").read_text())
    assert [r["labeled"] for r in metrics["active"]["rounds"]] == [100, 200]
    assert metrics["active"]["accuracy"] > 0.1  # better than guessing one of ten classes
    numbers = list(_numbers(metrics))
    assert numbers and all(math.isfinite(x) for x in numbers)
    assert "strategy: ddp" in (out / "config.yaml").read_text()
