"""Several processes share a layer's units (`unifiedviz.distributed`, `visualize --processes N`).

Two CPU processes on gloo (the second spawned by the test's own call) write the folder one
process writes: bitwise the same PNGs and per-unit numbers when the ranks render one process's
batches. A rank that dies fails the run at once, naming the process, instead of hanging.
Each rank moves its model to its own device; inputs follow the model's device and dtype, shown
here with a bfloat16 model (no GPU in CI).
"""
from __future__ import annotations

import json
import time

import pytest
import torch

from unifiedviz.cli import main
from unifiedviz.distributed import plan_batches, render_batches, run_in_processes
from unifiedviz.errors import UnifiedVizError

pytestmark = pytest.mark.usefixtures("one_thread")

# 6 units in batches of 2: rank 0 renders batches 0 and 2, rank 1 batch 1 (results must come back in order).
RUN = ["visualize", "builtin:digits-cnn", "conv2:channel=0:5", "class=3", "--steps", "6", "--batch-size", "2",
       "--reference", "digits", "--quiet", "--threads", "1"]


def test_two_processes_write_the_folder_that_one_process_writes(tmp_path, capsys):
    one, two = tmp_path / "one", tmp_path / "two"
    assert main([*RUN, "--out", str(one)]) == 0
    started = time.perf_counter()
    assert main([*RUN, "--out", str(two), "--processes", "2"]) == 0
    print(f"2-process run: {time.perf_counter() - started:.1f}s")
    assert "wrote 6 images" in capsys.readouterr().out

    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # rank 1 wrote nothing anywhere
    files = sorted(p.name for p in one.iterdir())
    assert files == sorted(p.name for p in two.iterdir()) and "unit_005.png" in files
    for name in files:
        if name.endswith(".png"):
            assert (one / name).read_bytes() == (two / name).read_bytes(), name
    single, shared = (json.loads((d / "summary.json").read_text()) for d in (one, two))
    assert shared["units"] == single["units"]  # addresses in order, objectives, activations, reference maxima
    assert shared["history_mean"] == single["history_mean"]
    assert shared["metadata"]["processes"] == 2 and shared["metadata"]["batches"] == 3
    assert len({(one / f"unit_{i:03d}.png").read_bytes() for i in range(6)}) == 6  # six different renders


@pytest.mark.parametrize("n, batch_size, world, keep, cuts", [
    (6, 2, 2, 1, [(0, 2), (2, 4), (4, 6)]),  # enough batches: one process's cuts
    (5, 2, 1, 1, [(0, 2), (2, 4), (4, 5)]),
    (6, 8, 2, 1, [(0, 3), (3, 6)]),  # one batch for two processes: cut so both work
    (8, 8, 3, 2, [(0, 4), (4, 8)]),  # a unit's 2 images stay together
    (6, 8, 4, 2, [(0, 2), (2, 4), (4, 6)]),  # no cut splits a unit, even if a process idles
])
def test_batches_are_one_process_cuts_unless_processes_would_idle(n, batch_size, world, keep, cuts):
    assert [(r.start, r.stop) for r in plan_batches(n, batch_size, world, keep)] == cuts


def _rank_1_fails(ranks):
    if ranks.rank == 1:
        raise ValueError("rank 1 broke")
    return render_batches(list(range(4)), 1, lambda batch: batch.items, ranks=ranks)


def test_a_failing_process_fails_the_run_without_hanging():
    started = time.perf_counter()
    with pytest.raises(UnifiedVizError, match="process 1 of 2 failed"):
        run_in_processes(2, _rank_1_fails)
    assert time.perf_counter() - started < 60
    assert not torch.distributed.is_initialized()  # rank 0 left the group: a next run can start one


@pytest.mark.skipif(torch.cuda.device_count() >= 2, reason="this machine has the GPUs")
def test_more_gpu_processes_than_gpus_is_one_line_exit_2(tmp_path, capsys):
    assert main([*RUN, "--out", str(tmp_path / "run"), "--device", "cuda", "--processes", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert "one process per GPU: 2 need 2 GPU(s)" in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_a_bfloat16_model_renders_like_its_float32_self(tmp_path):
    import unifiedviz as uv

    units = "conv2:channel=0:3"
    full = uv.visualize(uv.load_model("builtin:digits-cnn"), units, steps=8, progress=False)
    half = uv.visualize(uv.load_model("builtin:digits-cnn").to(torch.bfloat16), units, steps=8, progress=False)
    half.save(tmp_path / "run")
    assert half.images.dtype == torch.float32  # the param stays float32; the model's input is cast to it
    assert torch.allclose(half.activations.float(), full.activations, rtol=0.05, atol=0.05)
    assert (half.history[-1].float() > half.history[0].float()).all()  # every unit rose
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [u["activation"] for u in summary["units"]] == half.activations.float().tolist()
