"""Supervised training with Lightning; devices, precision and strategy come from the config,
so several GPUs or nodes (DDP) need no code change."""
from __future__ import annotations

import os

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
