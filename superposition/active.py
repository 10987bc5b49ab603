"""The pool-based active-learning loop, checkpointed after every round.

Round r trains on the labelled set; before every round but the first, the previous round's
model picks `query_size` more images. Everything random in a round (initialisation, shuffle,
dropout, random queries) is seeded from (seed, stage, round), and a finished round is
committed as one folder (`round_XX/`: labelled indices, weights, metrics) by an atomic
rename, so a killed run resumes from its last finished round and ends exactly where an
uninterrupted run would.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from unifiedviz.errors import UnifiedVizError
from unifiedviz.report import write_json

from .config import ExperimentConfig
from .data import SuperpositionData
from .io import load_weights, save_weights
from .models import build_model
from .strategies import STRATEGIES, query
from .train import Progress, fit

_STAGES = {"init": 0, "shuffle": 1, "fit": 2, "query": 3, "initial": 4, "measure": 5, "baseline_shuffle": 6,
           "baseline_fit": 7}


def stage_seed(seed: int, stage: str, round_: int = 0) -> int:
    """Independent seeds per (stage, round) from the experiment seed."""
    return int(np.random.SeedSequence([seed, _STAGES[stage], round_]).generate_state(1)[0])


def new_model(cfg: ExperimentConfig, data: SuperpositionData, round_: int = 0) -> nn.Module:
    """A freshly initialised model; round 0 of active learning and the baseline start identical."""
    torch.manual_seed(stage_seed(cfg.seed, "init", round_))
    return build_model(cfg.model, data.num_classes, data.image_size)


def check_budget(cfg: ExperimentConfig, n_train: int) -> None:
    """Fail before any training if the rounds ask for more images than the training set has."""
    a = cfg.active
    if a.initial_size + (a.rounds - 1) * a.query_size > n_train:
        raise UnifiedVizError(
            f"active learning asks for {a.initial_size} + {a.rounds - 1} x {a.query_size} images but the training set "
            f"has {n_train}: lower active.rounds, active.query_size or active.initial_size"
        )


def initial_pool(cfg: ExperimentConfig, pool_size: int) -> np.ndarray:
    rng = np.random.default_rng(stage_seed(cfg.seed, "initial"))
    return np.sort(rng.choice(pool_size, size=cfg.active.initial_size, replace=False))


def round_dir(folder: Path, round_: int) -> Path:
    return folder / f"round_{round_:02d}"


def finished_rounds(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("round_*") if p.is_dir() and (p / "round.json").is_file())


def run_active(
    cfg: ExperimentConfig,
    data: SuperpositionData,
    folder: Path,
    *,
    device,
    measure_round: Callable[[nn.Module, str], dict] | None = None,
    write: bool = True,
    progress: bool = False,
    stages: Progress | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Run (or resume) every round; returns the last round's model and one record per round."""
    a = cfg.active
    n_train = len(data.train_set)
    check_budget(cfg, n_train)
    STRATEGIES.get(a.strategy)  # an unknown name fails here, before round 0 trains (never a fallback)
    done = finished_rounds(folder)
    if write:
        for stale in folder.glob(".round_*"):  # a round that was being written when the run died
            shutil.rmtree(stale)
    records = [json.loads((d / "round.json").read_text()) for d in done]
    if done:
        labeled = np.load(done[-1] / "labeled.npy", allow_pickle=False)
        model = new_model(cfg, data, len(done) - 1)
        load_weights(model, done[-1] / "model.safetensors")
    else:
        labeled, model = initial_pool(cfg, n_train), None
    stages = stages or Progress(enabled=False)
    if done:
        stages.say(f"active learning: resuming after round {len(done)} of {a.rounds}")
    for r in range(len(done), a.rounds):
        name = f"active round {r + 1} of {a.rounds}"
        added = 0
        if r > 0:
            pool = n_train - len(labeled)
            with stages.stage(f"{name}: {a.strategy} picks {a.query_size} of {pool} unlabelled images",
                              kind="querying", work=pool):
                picked = _from_rank_zero(query(model, data, labeled, a, seed=stage_seed(cfg.seed, "query", r),
                                               device=device, progress=progress))
            labeled, added = np.union1d(labeled, picked), len(picked)
        if model is None or not a.warm_start:
            model = new_model(cfg, data, r)
        data.use(labeled, shuffle_seed=stage_seed(cfg.seed, "shuffle", r))
        with stages.stage(f"{name}: training on {len(labeled)} labelled images, {cfg.train.epochs} epochs",
                          kind="training", work=len(labeled) * cfg.train.epochs):
            fit(model, data, cfg.train, seed=stage_seed(cfg.seed, "fit", r))
        record = {"round": r, "labeled": int(len(labeled)), "added": added}
        if measure_round is not None:
            record.update(measure_round(model, name))
        if write:
            _commit(folder, r, labeled, model, record)
        records.append(record)
    return model, records


def _from_rank_zero(picked: np.ndarray) -> np.ndarray:
    """Under DDP every rank queries with its own copy of the model, and the copies' BatchNorm
    statistics differ (each rank updated them on its own last batch): all ranks take rank 0's
    picks, so they train on the labelled set that rank 0 records."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return picked
    box = [picked]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _commit(folder: Path, r: int, labeled: np.ndarray, model: nn.Module, record: dict) -> None:
    final = round_dir(folder, r)
    tmp = folder / f".{final.name}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    np.save(tmp / "labeled.npy", labeled)
    save_weights(model, tmp / "model.safetensors")
    write_json(tmp / "round.json", record)
    tmp.rename(final)
    # Only the newest weights are needed to resume; earlier rounds keep indices and metrics.
    if r > 0:
        (round_dir(folder, r - 1) / "model.safetensors").unlink(missing_ok=True)
