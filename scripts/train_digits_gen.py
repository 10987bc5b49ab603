"""Train `builtin:digits-gen` (a VAE on scikit-learn digits, 8x8) and write its safetensors weights.

    python scripts/train_digits_gen.py [--epochs 300] [--out unifiedviz/generators/weights]

One CPU thread, about a minute. Writes `digits_gen.safetensors` (the decoder only) with metadata:
the latent range measured by encoding the training digits (the DGN-AM clip), and sample
quality: digits-cnn's mean confidence on 1000 prior samples, the share it reads with p > 0.9,
the spread of its predicted classes (entropy, classes seen) and the samples' mean pairwise pixel
distance next to the same figure on real test digits (diversity).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unifiedviz.datasets import _digits_arrays, digits_split  # noqa: E402
from unifiedviz.generators.digits_vae import LATENT, DigitsVAE  # noqa: E402


def sample_quality(decoder, n: int = 1000, seed: int = 1) -> dict:
    from unifiedviz.datasets import load_digits_images
    from unifiedviz.models.builtin import digits_cnn

    cnn = digits_cnn()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        x = decoder(torch.randn(n, LATENT, generator=g))
        p = F.softmax(cnn(x), -1)
        conf, pred = p.max(-1)
        counts = torch.bincount(pred, minlength=10).float() / n
        entropy = float(-(counts[counts > 0] * counts[counts > 0].log()).sum() / math.log(10))
        real, _ = load_digits_images("test")
        div = lambda t: float(torch.pdist(t.flatten(1)[:500]).mean())  # noqa: E731
        return {"samples": n, "cnn_mean_confidence": round(float(conf.mean()), 4),
                "cnn_share_confident_0.9": round(float((conf > 0.9).float().mean()), 4),
                "cnn_class_entropy_norm": round(entropy, 4), "cnn_classes_seen": int((counts > 0).sum()),
                "class_shares": [round(float(c), 3) for c in counts],
                "pairwise_l2_samples": round(div(x), 3), "pairwise_l2_real_test": round(div(real), 3)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "unifiedviz/generators/weights"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    images, _ = _digits_arrays()
    train_idx, _ = digits_split()
    x = torch.tensor(images[train_idx]).view(-1, 64)
    vae = DigitsVAE()
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    t0 = time.time()
    for epoch in range(args.epochs):
        perm = torch.randperm(len(x))
        total = 0.0
        for i in range(0, len(x), 64):
            xb = x[perm[i:i + 64]]
            mu, logvar = vae.encoder(xb.view(-1, 1, 8, 8))
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
            logits = vae.decoder.net(z)
            rec = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum") / len(xb)
            kl = -0.5 * (1 + logvar - mu ** 2 - logvar.exp()).sum() / len(xb)
            loss = rec + args.beta * kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(xb)
        sched.step()
        if epoch % 50 == 0 or epoch == args.epochs - 1:
            print(f"epoch {epoch} loss {total / len(x):.2f} ({time.time() - t0:.0f}s)", flush=True)
    vae.eval()
    with torch.no_grad():
        mu, _ = vae.encoder(x.view(-1, 1, 8, 8))
    lo, hi = mu.min(0).values, mu.max(0).values
    quality = sample_quality(vae.decoder)
    print(json.dumps(quality))
    from safetensors.torch import save_file

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"decoder.{k}": v.contiguous() for k, v in vae.decoder.state_dict().items()}
    tensors["latent_lo"], tensors["latent_hi"] = lo.contiguous(), hi.contiguous()
    meta = {"model": "VAE, MLP 64-256-256-2x16 / 16-256-256-64, sigmoid, bilinear 8->32",
            "data": "sklearn load_digits train split (unifiedviz.datasets), 8x8", "epochs": str(args.epochs),
            "beta": str(args.beta), "seed": str(args.seed), "train_seconds": f"{time.time() - t0:.0f}",
            "sample_quality": json.dumps(quality)}
    save_file(tensors, str(out / "digits_gen.safetensors"), metadata=meta)
    print("wrote", out / "digits_gen.safetensors")


if __name__ == "__main__":
    main()
