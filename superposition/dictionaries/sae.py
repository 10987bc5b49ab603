"""Sparse autoencoders: TopK (Gao et al. 2024) and ReLU with an L1 penalty (Bricken et al. 2023).

    z     = act(W_enc ((x - mean) / scale - b_dec) + b_enc)       [N, n_latents]
    x_hat = (z W_dec + b_dec) * scale + mean                       W_dec rows are unit-norm atoms

`mean` and `scale` (a scalar: the RMS norm of centred rows) are buffers fitted once on the first
rows seen, so one learning rate and one L1 weight serve any layer. Dead latents (no firing for
`resample_after` steps of rows) are resampled onto the worst-reconstructed inputs of a batch.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from unifiedviz.errors import UnifiedVizError

KINDS = ("topk", "relu")


class SparseAutoencoder(nn.Module):
    def __init__(self, d_in: int, *, expansion: float = 4.0, kind: str = "topk", k: int = 8,
                 l1: float = 1e-3, seed: int = 0) -> None:
        super().__init__()
        if kind not in KINDS:
            raise UnifiedVizError(f"unknown dictionary kind {kind!r}: use one of {', '.join(KINDS)}")
        n = max(1, int(round(d_in * expansion)))
        if kind == "topk" and not 0 < k <= n:
            raise UnifiedVizError(f"k={k} must be between 1 and the number of latents ({n})")
        self.d_in, self.n_latents, self.kind, self.k, self.l1 = d_in, n, kind, int(k), float(l1)
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(n, d_in, generator=g)
        w = w / w.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w.clone())
        self.W_enc = nn.Parameter(w.clone())  # tied initialisation, trained untied
        self.b_enc = nn.Parameter(torch.zeros(n))
        self.b_dec = nn.Parameter(torch.zeros(d_in))
        self.register_buffer("mean", torch.zeros(d_in))
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("since_fired", torch.zeros(n, dtype=torch.long))  # rows since each latent fired

    # ------------------------------------------------------------------ normalisation
    @torch.no_grad()
    def fit_normalisation(self, x: torch.Tensor) -> None:
        """Centre and scale from a sample of rows (once, before training)."""
        self.mean.copy_(x.mean(0))
        self.scale.copy_((x - self.mean).norm(dim=1).pow(2).mean().sqrt().clamp_min(1e-8))
        self.fitted.fill_(True)

    def config(self) -> dict:
        return {"d_in": self.d_in, "n_latents": self.n_latents, "kind": self.kind, "k": self.k, "l1": self.l1}

    # ------------------------------------------------------------------ forward
    def pre_activation(self, x: torch.Tensor) -> torch.Tensor:
        xn = (x - self.mean) / self.scale - self.b_dec
        return xn @ self.W_enc.T + self.b_enc

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.pre_activation(x)
        if self.kind == "relu":
            return torch.relu(pre)
        top = pre.topk(self.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, top.indices, torch.relu(top.values))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.W_dec + self.b_dec) * self.scale + self.mean

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encode(x)
        return z, self.decode(z)

    def loss(self, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Normalised-space MSE (+ L1 on z weighted by atom norms for ReLU); also updates firing counts."""
        z, x_hat = self(x)
        mse = ((x_hat - x) / self.scale).pow(2).sum(-1).mean()
        loss = mse
        parts = {"mse": mse.detach()}
        if self.kind == "relu":
            sparsity = (z * self.W_dec.norm(dim=1)).sum(-1).mean()
            loss = loss + self.l1 * sparsity
            parts["l1"] = sparsity.detach()
        with torch.no_grad():
            fired = (z > 0).any(0)
            self.since_fired.add_(x.shape[0]).masked_fill_(fired, 0)
            parts["l0"] = (z > 0).sum(-1).float().mean()
        return loss, parts

    # ------------------------------------------------------------------ upkeep
    @torch.no_grad()
    def normalise_decoder(self) -> None:
        self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8))

    @torch.no_grad()
    def dead(self, after_rows: int) -> torch.Tensor:
        return self.since_fired >= after_rows

    @torch.no_grad()
    def resample(self, x: torch.Tensor, dead: torch.Tensor, optimizer: torch.optim.Optimizer | None = None) -> int:
        """Point each dead latent at an input the dictionary reconstructs worst (Bricken et al.).

        Atoms become the normalised residuals of the worst rows of `x`; encoder rows the same
        direction at 0.2 x the mean live encoder norm; biases 0; their Adam moments are zeroed.
        """
        idx = dead.nonzero().flatten()
        if len(idx) == 0:
            return 0
        _, x_hat = self(x)
        resid = (x - x_hat) / self.scale
        worst = resid.pow(2).sum(-1).topk(min(len(idx), len(x))).indices
        idx = idx[: len(worst)]
        d = resid[worst]
        d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-8)
        live = ~dead
        enc_norm = self.W_enc[live].norm(dim=1).mean() if live.any() else torch.tensor(1.0)
        self.W_dec[idx] = d
        self.W_enc[idx] = d * 0.2 * enc_norm
        self.b_enc[idx] = 0.0
        self.since_fired[idx] = 0
        if optimizer is not None:
            for p in (self.W_dec, self.W_enc, self.b_enc):
                state = optimizer.state.get(p, {})
                for key in ("exp_avg", "exp_avg_sq"):
                    if key in state:
                        state[key][idx] = 0.0
        return len(idx)


# ---------------------------------------------------------------------- files
def save_dictionary(sae: SparseAutoencoder, path: str | Path, *, layer: str, model: str = "") -> None:
    """Weights and buffers as safetensors; the config (and layer) in its metadata."""
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in sae.state_dict().items()}
    tensors["fitted"] = tensors["fitted"].to(torch.uint8)
    meta = {"config": json.dumps(sae.config()), "layer": layer, "model": model, "format": "unifiedviz-dictionary/1"}
    save_file(tensors, str(path), metadata=meta)


def load_dictionary(path: str | Path) -> tuple[SparseAutoencoder, dict]:
    """(the autoencoder, its metadata: layer, model) from a file written by `save_dictionary`."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UnifiedVizError(f"dictionary file {str(path)!r} not found: train one with 'unifiedviz dictionary train'")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise UnifiedVizError(f"cannot read dictionary file {str(path)!r}: {exc}") from None
    if meta.get("format") != "unifiedviz-dictionary/1":
        raise UnifiedVizError(f"{str(path)!r} is not a unifiedviz dictionary: write it with save_dictionary")
    cfg = json.loads(meta["config"])
    sae = SparseAutoencoder(cfg["d_in"], expansion=cfg["n_latents"] / cfg["d_in"], kind=cfg["kind"], k=cfg["k"],
                            l1=cfg["l1"])
    tensors["fitted"] = tensors["fitted"].bool()
    sae.load_state_dict(tensors)
    return sae.eval(), meta
