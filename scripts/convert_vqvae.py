"""Convert the CIFAR-10 VQ-VAE of iabs-neuro/mango (MIT) into the package's `builtin:cifar10-vqvae` weights.

    python scripts/convert_vqvae.py [--src ../shared/models/mango_vqvae_cifar10.pt]

Reads the shared checkpoint once (torch.load, weights_only=True), checks its sha256, loads it into
`unifiedviz.generators.vqvae.VQVAE` (EMA training state dropped), measures on 512 scikit-image photo
crops (a) the reconstruction error in [0, 1] pixel space and (b) the per-channel range, mean and
spread of the continuous latents (the DGN-AM clip and latent scale), and writes `unifiedviz/generators/weights/cifar10_vqvae.safetensors`
with `LICENSE.mango` beside it.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts._checkpoint import read_checkpoint  # noqa: E402

from unifiedviz.generators.photos import photo_crops  # noqa: E402
from unifiedviz.generators.vqvae import VQVAE  # noqa: E402

SHA256 = "339808c6f0ec73496146689cb5dc683db88edd68ee669d421fb464743ef04ad5"


def main(argv=None) -> None:
    args, state = read_checkpoint(argv, "mango_vqvae_cifar10.pt", "unifiedviz/generators/weights", SHA256)
    src = Path(args.src)
    state = {k: v for k, v in state.items() if not k.startswith("_vq_vae._ema")}
    model = VQVAE().eval()
    model.load_state_dict(state, strict=True)
    crops = photo_crops(512, seed=0)
    with torch.no_grad():
        z = model.encode(crops)
        mse = float(((model.reconstruct(crops).clamp(0, 1) - crops) ** 2).mean())
        mse_cont = float(((model.decode(z).clamp(0, 1) - crops) ** 2).mean())
    lo, hi = z.amin((0, 2, 3)), z.amax((0, 2, 3))
    stats = {"photo_crops": 512, "reconstruction_mse_quantised": round(mse, 5),
             "reconstruction_mse_continuous": round(mse_cont, 5),
             "latent_range_min": round(float(lo.min()), 3), "latent_range_max": round(float(hi.max()), 3),
             "latent_abs_mean": round(float(z.abs().mean()), 3)}
    print(json.dumps(stats))
    from safetensors.torch import save_file

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    tensors["latent_lo"], tensors["latent_hi"] = lo.contiguous(), hi.contiguous()
    tensors["latent_mean"], tensors["latent_std"] = z.mean((0, 2, 3)).contiguous(), z.std((0, 2, 3)).contiguous()
    save_file(tensors, str(out / "cifar10_vqvae.safetensors"),
              metadata={"source": "iabs-neuro/mango mango_vqvae_cifar10.pt (MIT, see LICENSE.mango)",
                        "source_sha256": SHA256, "clip": "per-channel min/max of encoded photo crops",
                        "stats": json.dumps(stats)})
    shutil.copyfile(src.parent / "LICENSE.mango", out / "LICENSE.mango")
    print("wrote", out / "cifar10_vqvae.safetensors")


if __name__ == "__main__":
    main()
