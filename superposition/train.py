"""Supervised training with Lightning; devices, precision and strategy come from the config,
so several GPUs or nodes (DDP) need no code change."""
from __future__ import annotations

import math
import os
import sys
import time
from contextlib import contextmanager
from typing import Iterator, TextIO

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig
from .data import SuperpositionData


class Classifier(L.LightningModule):
    """Cross-entropy training of any classifier that maps [0, 1] images to logits."""

    def __init__(self, model: nn.Module, cfg: TrainConfig) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self.model(x), y)
        self.log("loss", loss, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        params, c = self.model.parameters(), self.cfg
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        if c.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)


def make_trainer(cfg: TrainConfig) -> L.Trainer:
    """A Trainer that keeps no checkpoints or logs of its own: the experiment checkpoints rounds."""
    return L.Trainer(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        strategy=cfg.strategy,
        num_nodes=cfg.num_nodes,
        precision=cfg.precision,
        deterministic=cfg.deterministic,
        enable_checkpointing=False,
        logger=False,
        enable_model_summary=False,
        enable_progress_bar=cfg.progress_bar,
        num_sanity_val_steps=0,
    )


def fit(model: nn.Module, data: SuperpositionData, cfg: TrainConfig, *, seed: int) -> None:
    """Train `model` in place on the DataModule's current `labeled` indices."""
    L.seed_everything(seed, workers=True, verbose=False)
    model.train()  # Lightning keeps the modes it is given: loaded models arrive in eval mode
    make_trainer(cfg).fit(Classifier(model, cfg), datamodule=data)
    model.eval()


def inference_device(cfg: TrainConfig) -> torch.device:
    """Where to score and measure: this process's GPU if training uses GPUs, else the CPU."""
    if cfg.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))  # set per process by DDP launchers
    return torch.device("cpu")


class Progress:
    """One line per stage of a run (stderr): which model trains (baseline, active round k of
    n), measuring, t-SNE, UMAP, with an estimate of the stage's time from the stages of the same
    kind this run has already timed (training: seconds per image-epoch; an embedding: seconds
    per n log n points), and the elapsed time when it ends."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.enabled, self.stream = enabled, stream
        self.rates: dict[str, float] = {}  # kind -> seconds per unit of work
        self.started = time.perf_counter()

    def estimate(self, kind: str, work: float) -> float | None:
        rate = self.rates.get(kind)
        return None if rate is None else rate * work

    @contextmanager
    def stage(self, text: str, *, kind: str, work: float) -> Iterator[None]:
        """Announce `text`, time it, and learn the kind's rate (work: the stage's size in units)."""
        guess = self.estimate(kind, work)
        eta = f"estimate {_duration(guess)} from this run's earlier {kind}" if guess is not None else \
            f"no estimate yet (first {kind} of this run)"
        self.say(f"{text} ... {eta}")
        t0 = time.perf_counter()
        yield
        took = time.perf_counter() - t0
        self.rates[kind] = took / max(work, 1e-9)
        self.say(f"{text}: done in {_duration(took)}")

    def say(self, line: str) -> None:
        if self.enabled:
            elapsed = _duration(time.perf_counter() - self.started)
            print(f"[superposition {elapsed}] {line}", file=self.stream or sys.stderr, flush=True)


def embedding_work(n: int) -> float:
    """The size of a 2-D embedding of n points for `Progress` estimates (n log n)."""
    return n * math.log(max(n, 2))


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"
