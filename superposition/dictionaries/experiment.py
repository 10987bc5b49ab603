"""The `dictionary` section of a superposition experiment: an SAE on one layer of a final model.

`dictionary_metrics` trains a sparse autoencoder on the layer's rows from the training images
(streamed through the bounded buffer), then, on the measured test images, reports reconstruction
and sparsity (`evaluate`), dictionary collinearity, and class selectivity / classes responded to
per latent against per neuron (`latents_vs_neurons`, the rules of `superposition.metrics`).
The report puts the baseline's and the active-learning model's numbers side by side.
"""
from __future__ import annotations

import torch
from torch import nn

from unifiedviz.adapters import Adapter

from .buffer import ActivationBuffer, rows_of
from .metrics import collinearity, evaluate, latents_vs_neurons, per_image
from .sae import SparseAutoencoder
from .train import train_dictionary


def dictionary_metrics(model: nn.Module, train_loader, test_loader, cfg, *, seed: int = 0,
                       device: torch.device | str = "cpu", respond_fraction: float = 0.5) -> dict:
    """`cfg` is a `superposition.config.DictionaryConfig`; loaders yield `(images, labels)`."""
    model = model.to(device).eval()
    adapter = Adapter(model)
    info = adapter.layer(cfg.layer)

    def images():
        for batch in train_loader:
            yield batch[0]

    buffer = ActivationBuffer(adapter, cfg.layer, images, capacity=cfg.buffer_rows,
                              batch_size=min(cfg.batch_size, cfg.buffer_rows // 2), seed=seed, device=device)
    sae = SparseAutoencoder(buffer.width, expansion=cfg.expansion, kind=cfg.kind, k=cfg.k, l1=cfg.l1, seed=seed)
    module = train_dictionary(sae, buffer, steps=cfg.steps, lr=cfg.lr, resample_every=cfg.resample_every,
                              resample_after_rows=20 * cfg.batch_size, progress=False, seed=seed)
    neurons, latents, labels = [], [], []

    def test_rows():  # streamed: evaluate() sums as it goes; per-image means kept for selectivity
        with torch.no_grad(), adapter.session([cfg.layer]) as run:
            for x, y in test_loader:
                r = rows_of(info.layout, run(x.to(device))[cfg.layer]).float().cpu()
                n, z = per_image(sae, r, len(r) // len(x))
                neurons.append(n)
                latents.append(z)
                labels.append(torch.as_tensor(y))
                yield r

    reconstruction = evaluate(sae, test_rows())
    return {"layer": cfg.layer, "config": sae.config(), "steps": module.global_step, "resampled": module.resampled,
            "peak_buffer_rows": buffer.peak_rows, "reconstruction": reconstruction,
            "collinearity": collinearity(sae.W_dec.detach()),
            "selectivity": latents_vs_neurons(torch.cat(neurons), torch.cat(latents), torch.cat(labels),
                                              respond_fraction=respond_fraction)}
