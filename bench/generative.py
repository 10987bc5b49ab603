"""Learned image priors (DGN-AM, network inversion) against Fourier AM: recognisability, naturalness,
activation reached.

    python bench/generative.py [--shared ../shared/models] [--steps 256] [--recipes] [--inversion]
                               [--inversion-steps N] [--json out.json]

- digits: class images made for digits-cnn judged by digits-vit, and for digits-vit judged by
  digits-cnn (Fourier AM vs DGN-AM through builtin:digits-gen); the maximised logit reached;
  naturalness = the mean pixel cosine of each image to its nearest training digit.
- CIFAR (needs --shared with cifar10_resnet20.th and mango_snn_cifar10.pt): class images made for
  the ResNet-20 judged by the spiking CIFAR network (128 time steps, forward only, LIF written here);
  naturalness = the VQ-VAE's reconstruction MSE in [0, 1] (encode, quantise, decode), Fourier vs
  DGN-AM (builtin:cifar10-vqvae, continuous and snapped) with scikit-image photo crops as reference.
- `--recipes`: DGN-AM recipe variants, each changing one thing: no transforms (are the jitter/scale
  transforms after decoding doing work?), best of 4 copies by the maker's own logit (never the
  judge's), twice the steps (schedule stretched), latent decay 0.001 and 0.05, lr 0.1, lr 0.1 with
  best of 4. `--variants a,b` runs only the named variants (e.g. "dgn-am lr-0.1 best-of-4").
- `--inversion`: network inversion (`unifiedviz invert`'s config, configs/inversion/digits.yaml for
  digits and configs/inversion/cifar10.yaml for the ResNet-20, both through a generator prior; steps
  from the config or `--inversion-steps`): the class images are the first sample of each class,
  judged and measured like the AM images; `share` is the judge's reading of 100 samples per class.
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


def variants(generator: str, steps: int, recipes: bool) -> dict[str, dict]:
    """visualize() keyword sets: Fourier AM, DGN-AM through `generator`, and (`recipes`) one-change variants."""
    dgn = dict(param="generator", param_options={"generator": generator})
    out = {"fourier": dict(param="fourier"), "dgn-am": dgn}
    if recipes:
        out.update({
            "dgn-am no-transforms": {**dgn, "transforms": None},
            "dgn-am best-of-4": {**dgn, "per_unit": 4},
            "dgn-am 2x-steps": {**dgn, "steps": 2 * steps,
                                "param_options": {**dgn["param_options"], "schedule": 2 * steps}},
            "dgn-am decay-0.001": {**dgn, "param_options": {**dgn["param_options"], "decay": 0.001}},
            "dgn-am decay-0.05": {**dgn, "param_options": {**dgn["param_options"], "decay": 0.05}},
            "dgn-am lr-0.1": {**dgn, "lr": 0.1},
            "dgn-am lr-0.1 best-of-4": {**dgn, "lr": 0.1, "per_unit": 4},
        })
    return {k: v for k, v in out.items() if ONLY is None or k in ONLY}


ONLY: set[str] | None = None  # --variants


def class_images(maker, steps: int, kw: dict) -> tuple[torch.Tensor, float]:
    """One image per class 0..9 and the mean maximised logit; with per_unit > 1 the copy the maker scores
    highest (its own logit: the judge never chooses)."""
    kw = {"steps": steps, **kw}
    copies = kw.get("per_unit", 1)
    r = visualize(maker, "class=0:10", progress=False, **kw)
    best = r.activations.view(10, copies).argmax(1) + torch.arange(10) * copies
    return r.images[best], float(r.activations[best].mean())


def hits(judge, images) -> int:
    with torch.no_grad():
        return int((judge(images).argmax(-1) == torch.arange(len(images))).sum())


def inverted_class_images(maker, config: Path, steps: int | None, **extra) -> tuple[torch.Tensor, dict]:
    """Train a network inversion of `maker` with `config` (YAML); the first sample of each class and 100 per class."""
    import dataclasses

    import yaml

    from unifiedviz.inversion import InversionConfig, sample, train_inversion

    cfg = dataclasses.replace(InversionConfig(), **yaml.safe_load(config.read_text()), **extra)
    if steps:
        cfg = dataclasses.replace(cfg, steps=steps)
    run = train_inversion(maker, cfg, progress=False)
    images, labels = sample(run.generator, 10, 100, cfg.seed)
    first = images[labels.argsort(stable=True)][::100]
    return first, {"images": images, "labels": labels, "steps": run.steps}


def share(judge, many: dict) -> float:
    with torch.no_grad():
        preds = torch.cat([judge(many["images"][i:i + 500]).argmax(-1) for i in range(0, len(many["images"]), 500)])
    return round(float((preds == many["labels"]).float().mean()), 3)


def digits(steps: int, recipes: bool, inversion: bool, inversion_steps: int | None) -> dict:
    from unifiedviz.datasets import load_digits_images
    from unifiedviz.models.builtin import digits_cnn, digits_vit

    train = F.normalize(load_digits_images("train")[0].flatten(1), dim=1)

    def nearest_train(images):  # naturalness on digits: pixel cosine to the nearest training digit
        return round(float((F.normalize(images.flatten(1), dim=1) @ train.T).max(1).values.mean()), 3)

    models = {"digits-cnn": digits_cnn(), "digits-vit": digits_vit()}
    out = {}
    for maker, judge in (("digits-cnn", "digits-vit"), ("digits-vit", "digits-cnn")):
        for name, kw in variants("builtin:digits-gen", steps, recipes).items():
            t = time.time()
            images, logit = class_images(models[maker], steps, kw)
            out[f"{maker}/{name}"] = {"judge": judge, "judged_as_class": hits(models[judge], images),
                                      "self_as_class": hits(models[maker], images), "mean_logit": round(logit, 3),
                                      "nearest_train_cosine": nearest_train(images),
                                      "seconds": round(time.time() - t, 1)}
            print(maker, name, out[f"{maker}/{name}"], flush=True)
        if inversion:
            t = time.time()
            images, many = inverted_class_images(models[maker], ROOT / "configs/inversion/digits.yaml", inversion_steps)
            with torch.no_grad():
                logit = float(models[maker](images)[torch.arange(10), torch.arange(10)].mean())
            out[f"{maker}/inversion"] = {"judge": judge, "judged_as_class": hits(models[judge], images),
                                         "self_as_class": hits(models[maker], images), "mean_logit": round(logit, 3),
                                         "nearest_train_cosine": nearest_train(images),
                                         "judge_share": share(models[judge], many),
                                         "self_share": share(models[maker], many), "steps": many["steps"],
                                         "seconds": round(time.time() - t, 1)}
            print(maker, "inversion", out[f"{maker}/inversion"], flush=True)
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


def cifar(shared: Path, steps: int, recipes: bool, inversion: bool, inversion_steps: int | None) -> dict:
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
    kinds = variants("builtin:cifar10-vqvae", steps, recipes)
    if ONLY is None or "dgn-am snap" in ONLY:
        kinds["dgn-am snap"] = dict(param="generator", param_options={"generator": "builtin:cifar10-vqvae", "snap": True})
    for name, kw in [*kinds.items(), *([("inversion", None)] if inversion else [])]:
        t = time.time()
        extra = {}
        if kw is None:
            images, many = inverted_class_images(resnet, ROOT / "configs/inversion/cifar10.yaml", inversion_steps)
            extra = {"snn_share": share(snn, many), "resnet_share": share(resnet, many), "steps": many["steps"]}
        else:
            images, _ = class_images(resnet, steps, kw)
        with torch.no_grad():
            logits = resnet(images)
        diag = torch.arange(10)
        out[name] = {"snn_judged_as_class": hits(snn, images), "resnet_as_class": hits(resnet, images),
                     "resnet_mean_p": round(float(logits.softmax(-1)[diag, diag].mean()), 4),
                     "mean_logit": round(float(logits[diag, diag].mean()), 3), "vqvae_mse": mse(images), **extra,
                     "seconds": round(time.time() - t, 1)}
        print("cifar", name, out[name], flush=True)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=None, help="folder with cifar10_resnet20.th and mango_snn_cifar10.pt")
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--recipes", action="store_true", help="also the DGN-AM recipe variants")
    ap.add_argument("--inversion", action="store_true", help="also network inversion (trains one generator per maker)")
    ap.add_argument("--inversion-steps", type=int, default=None, help="inversion steps (default: the config's)")
    ap.add_argument("--only", choices=["digits", "cifar"], default=None)
    ap.add_argument("--variants", default=None, help="comma-separated variant names to run (default: all)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    global ONLY
    ONLY = set(args.variants.split(",")) if args.variants else None
    torch.set_num_threads(1)
    results: dict = {"steps": args.steps}
    if args.only != "cifar":
        results["digits"] = digits(args.steps, args.recipes, args.inversion, args.inversion_steps)
    if args.shared and args.only != "digits":
        results["cifar"] = cifar(Path(args.shared), args.steps, args.recipes, args.inversion, args.inversion_steps)
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
