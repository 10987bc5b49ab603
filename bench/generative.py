"""Learned image priors (DGN-AM) against Fourier AM: recognisability, naturalness, activation reached.

    python bench/generative.py [--shared ../shared/models] [--steps 256] [--json out.json]

- digits: class images made for digits-cnn judged by digits-vit, and for digits-vit judged by
  digits-cnn (Fourier AM vs DGN-AM through builtin:digits-gen); the maximised logit reached.
- CIFAR (needs --shared with cifar10_resnet20.th and mango_snn_cifar10.pt): class images made for
  the ResNet-20 judged by the spiking CIFAR network (128 time steps, forward only, LIF written here);
  naturalness = the VQ-VAE's reconstruction MSE in [0, 1] (encode, quantise, decode), Fourier vs
  DGN-AM (builtin:cifar10-vqvae, continuous and snapped) with scikit-image photo crops as reference.
All on one CPU thread, seed 0, `visualize` defaults otherwise (lr 0.05, standard transforms).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unifiedviz.visualize import visualize  # noqa: E402

VARIANTS = {"fourier": dict(param="fourier"),
            "dgn-am": dict(param="generator", param_options={"generator": "builtin:digits-gen"})}


def hits(judge, images) -> int:
    with torch.no_grad():
        return int((judge(images).argmax(-1) == torch.arange(len(images))).sum())


def digits(steps: int) -> dict:
    from unifiedviz.models.builtin import digits_cnn, digits_vit

    models = {"digits-cnn": digits_cnn(), "digits-vit": digits_vit()}
    out = {}
    for maker, judge in (("digits-cnn", "digits-vit"), ("digits-vit", "digits-cnn")):
        for name, kw in VARIANTS.items():
            t = time.time()
            r = visualize(models[maker], "class=0:10", steps=steps, progress=False, **kw)
            out[f"{maker}/{name}"] = {"judge": judge, "judged_as_class": hits(models[judge], r.images),
                                      "self_as_class": hits(models[maker], r.images),
                                      "mean_logit": round(float(r.activations.mean()), 3),
                                      "seconds": round(time.time() - t, 1)}
            print(maker, name, out[f"{maker}/{name}"], flush=True)
    return out


class _SNN(nn.Module):
    """mango's spiking CIFAR net, forward only: LIF beta 0.9, threshold 1, reset by subtraction."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0, self.conv1 = nn.Conv2d(3, 200, 5), nn.Conv2d(200, 64, 5)
        self.linear1, self.linear2 = nn.Linear(1600, 100), nn.Linear(100, 10)
        self.register_buffer("mean", torch.tensor((0.4914, 0.4822, 0.4465)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor((0.2471, 0.2435, 0.2616)).view(1, 3, 1, 1), persistent=False)

    @staticmethod
    def _lif(mem, x):
        reset = (mem > 1.0).float()
        mem = 0.9 * mem + x - reset
        return (mem > 1.0).float(), mem

    @torch.no_grad()
    def forward(self, images: torch.Tensor, steps: int = 128) -> torch.Tensor:
        x = (images - self.mean) / self.std
        c0 = F.max_pool2d(self.conv0(x), 3, 2, 1)
        mems = [torch.zeros(()) for _ in range(4)]
        total = 0
        for _ in range(steps):
            s0, mems[0] = self._lif(mems[0], c0)
            s1, mems[1] = self._lif(mems[1], F.max_pool2d(self.conv1(s0), 2, 2))
            s2, mems[2] = self._lif(mems[2], self.linear1(s1.flatten(1)))
            s3, mems[3] = self._lif(mems[3], F.relu(self.linear2(s2)))
            total = total + s3
        return total / steps  # spike rates [N, 10]


def cifar(shared: Path, steps: int) -> dict:
    from unifiedviz.generators import as_generator
    from unifiedviz.generators.photos import photo_crops
    from unifiedviz.models.builtin import cifar_resnet20

    resnet = cifar_resnet20(load_weights=False)
    state = torch.load(shared / "cifar10_resnet20.th", weights_only=True, map_location="cpu")["state_dict"]
    resnet.net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
    snn = _SNN()
    snn.load_state_dict({k: v for k, v in torch.load(shared / "mango_snn_cifar10.pt", weights_only=True,
                                                      map_location="cpu").items()
                         if k.split(".")[0] in ("conv0", "conv1", "linear1", "linear2")})
    vq = as_generator("builtin:cifar10-vqvae").module.module.vqvae

    def mse(images):
        with torch.no_grad():
            return round(float(((vq.reconstruct(images).clamp(0, 1) - images) ** 2).mean()), 5)

    crops = photo_crops(256, seed=1)
    out = {"photo_crops": {"vqvae_mse": mse(crops)}}
    variants = {"fourier": dict(param="fourier"),
                "dgn-am": dict(param="generator", param_options={"generator": "builtin:cifar10-vqvae"}),
                "dgn-am-snap": dict(param="generator",
                                    param_options={"generator": "builtin:cifar10-vqvae", "snap": True})}
    for name, kw in variants.items():
        t = time.time()
        r = visualize(resnet, "class=0:10", steps=steps, progress=False, **kw)
        with torch.no_grad():
            p = resnet(r.images).softmax(-1)
        out[name] = {"snn_judged_as_class": hits(snn, r.images), "resnet_as_class": hits(resnet, r.images),
                     "resnet_mean_p": round(float(p[torch.arange(10), torch.arange(10)].mean()), 4),
                     "mean_logit": round(float(r.activations.mean()), 3), "vqvae_mse": mse(r.images),
                     "seconds": round(time.time() - t, 1)}
        print("cifar", name, out[name], flush=True)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=None, help="folder with cifar10_resnet20.th and mango_snn_cifar10.pt")
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = {"steps": args.steps, "digits": digits(args.steps)}
    if args.shared:
        results["cifar"] = cifar(Path(args.shared), args.steps)
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
