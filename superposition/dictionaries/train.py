"""Train a sparse autoencoder with Lightning on rows from an `ActivationBuffer`.

Progress: Lightning's bar (loss, mse, l0). Checkpoints: `last.ckpt` in `checkpoint_dir` every
`checkpoint_every` steps and at the end; `resume=True` continues from it (weights, Adam state,
firing counters, step). The data stream itself restarts from its seed: resumed training sees a
fresh shuffle of the same data, not the exact rows the stopped run would have seen next.
"""
from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader

from .buffer import ActivationBuffer
from .sae import SparseAutoencoder


class DictionaryModule(L.LightningModule):
    def __init__(self, sae: SparseAutoencoder, *, lr: float = 1e-3, resample_every: int = 500,
                 resample_after_rows: int = 100_000) -> None:
        super().__init__()
        self.sae, self.lr = sae, lr
        self.resample_every, self.resample_after_rows = resample_every, resample_after_rows
        self.resampled = 0

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss, parts = self.sae.loss(batch)
        self.log("loss", loss.detach(), prog_bar=True, on_step=True, on_epoch=False)
        self.log("l0", parts["l0"], prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def on_train_batch_end(self, outputs, batch: torch.Tensor, batch_idx: int) -> None:
        self.sae.normalise_decoder()
        step = self.global_step
        if self.resample_every and step > 0 and step % self.resample_every == 0:
            dead = self.sae.dead(self.resample_after_rows)
            self.resampled += self.sae.resample(batch, dead, self.optimizers().optimizer)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.sae.parameters(), lr=self.lr)


def train_dictionary(sae: SparseAutoencoder, buffer: ActivationBuffer, *, steps: int, lr: float = 1e-3,
                     checkpoint_dir: str | Path | None = None, checkpoint_every: int = 200, resume: bool = False,
                     resample_every: int = 500, resample_after_rows: int = 100_000, progress: bool = True,
                     seed: int = 0, accelerator: str = "cpu", normalise_rows: int = 8192) -> DictionaryModule:
    """Fit `sae` in place for `steps` batches of `buffer`; returns the Lightning module."""
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    L.seed_everything(seed, workers=True, verbose=False)
    if not bool(sae.fitted):
        sae.fit_normalisation(buffer.sample(normalise_rows))
    module = DictionaryModule(sae, lr=lr, resample_every=resample_every, resample_after_rows=resample_after_rows)
    callbacks, ckpt = [], None
    if checkpoint_dir is not None:
        from lightning.pytorch.callbacks import ModelCheckpoint

        callbacks.append(ModelCheckpoint(dirpath=str(checkpoint_dir), filename="step{step}", save_last=True,
                                         save_top_k=0, every_n_train_steps=checkpoint_every))
        last = Path(checkpoint_dir) / "last.ckpt"
        ckpt = str(last) if resume and last.is_file() else None
    trainer = L.Trainer(max_steps=steps, max_epochs=-1, accelerator=accelerator, devices=1, logger=False,
                        enable_checkpointing=bool(callbacks), callbacks=callbacks, enable_model_summary=False,
                        enable_progress_bar=progress, num_sanity_val_steps=0)
    loader = DataLoader(buffer, batch_size=None, num_workers=0)
    trainer.fit(module, train_dataloaders=loader, ckpt_path=ckpt)
    sae.eval()
    return module
