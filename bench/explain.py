"""Grad-CAM time against pytorch-grad-cam, interleaved, and the CAM equality on the same inputs.

    .venv/bin/python bench/explain.py --threads 1                      # timm resnet18, batch 8 at 224
    .venv/bin/python bench/explain.py --threads 1 --model cifar        # CIFAR ResNet-20 (../shared) on skimage photos
    .venv/bin/python bench/explain.py --threads 1 --model quality      # Ishigami, deletion/insertion, randomisation

Each round times one unifiedviz Grad-CAM call and one pytorch-grad-cam call on the same batch,
model, layer and targets, in alternating order; the ratio is the median of the per-round
ratios (this VM's speed drifts, so only interleaved numbers compare). Random timm weights are
fine for timing; the max |difference| of the two maps is printed too.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unifiedviz.explain import explain
from unifiedviz.inputs import fit_to_spec
from unifiedviz.models import load_model

CIFAR_WEIGHTS = os.environ.get("UNIFIEDVIZ_CIFAR_RESNET20", str(Path(__file__).resolve().parents[2] / "shared/models/cifar10_resnet20.th"))


def photos(n: int) -> torch.Tensor:
    """scikit-image's sample photos (offline), as [n, 3, H, W] in [0, 1] at their own size, cropped square."""
    from skimage import data

    names = ["astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "camera",
             "cat"]
    out = []
    for name in names[:n]:
        arr = getattr(data, name)()
        arr = arr[..., :3] if arr.ndim == 3 else np.stack([arr] * 3, -1)
        s = min(arr.shape[:2])
        t = torch.from_numpy(arr[:s, :s].astype(np.float32) / 255.0).permute(2, 0, 1)
        out.append(torch.nn.functional.interpolate(t[None], size=(256, 256), mode="bilinear", antialias=True)[0])
    while len(out) < n:
        out.append(out[len(out) % len(names)].flip(-1))
    return torch.stack(out)


def quality() -> None:
    """Ishigami Sobol indices, and on the digits models: deletion/insertion AUC and randomisation Spearman."""
    from unifiedviz.explain import (
        deletion_insertion,
        randomisation_check,
        sobol_indices,
    )
    from unifiedviz.explain.faithfulness import edge_map, random_maps
    from unifiedviz.inputs import load_inputs

    def ishigami(X, a=7.0, b=0.1):
        return np.sin(X[:, 0]) + a * np.sin(X[:, 1]) ** 2 + b * X[:, 2] ** 4 * np.sin(X[:, 0])

    r = sobol_indices(ishigami, [[-np.pi, np.pi]] * 3, samples=4096, seed=1, batch_size=1000)
    print("Ishigami (N=4096, 20480 evaluations); analytic S1 0.314 0.442 0.000, ST 0.558 0.442 0.244")
    print("  S1 " + "  ".join(f"{v:.3f}+-{c:.3f}" for v, c in zip(r.S1, r.S1_conf)))
    print("  ST " + "  ".join(f"{v:.3f}+-{c:.3f}" for v, c in zip(r.ST, r.ST_conf)))
    methods = ["gradcam", "gradcam++", "scorecam", "saliency", "grad_x_input", "smoothgrad", "integrated",
               "occlusion", "sobol"]
    vit_only = {"gradrollout": ("gradrollout", {}), "gradcam@norm1": ("gradcam", {"layer": "blocks.3.norm1"})}
    for name in ("builtin:digits-cnn", "builtin:digits-vit"):
        model = load_model(name)
        inp = load_inputs("digits", model.spec, limit=32)
        x, y = inp.images, inp.labels
        print(f"{name}: 32 test digits, each explained for its own label (class probability curves, 16 steps); "
              f"ink (> 0.3) covers {float((x > 0.3).float().mean()):.2f} of the pixels; grey = mean pixel "
              f"{float(x.mean()):.2f}")
        grey = float(x.mean())  # a second deletion baseline: the mean pixel, so deleting background changes it too
        extra = list(vit_only) if name.endswith("vit") else []
        for label in [*methods, *extra, "random"]:
            method, base_opts = vit_only.get(label, (label, {}))
            dele, ins, ink, dele_grey = [], [], [], []
            for c in range(10):
                idx = (y == c).nonzero().flatten()
                if not len(idx):
                    continue
                opts = {"patch": 4, "samples": 32} if method == "sobol" else base_opts
                mp = random_maps(x[idx], spatial=(32, 32), seed=c) if method == "random" else \
                    explain(model, x[idx], f"class={c}", method, **opts)
                res = deletion_insertion(model, x[idx], mp, f"class={c}", steps=16)
                dele += res["deletion"].tolist()
                ins += res["insertion"].tolist()
                dele_grey += deletion_insertion(model, x[idx], mp, f"class={c}", steps=16, baseline=grey)["deletion"].tolist()
                # where the map's top fifth lies: the share of it on ink (black deletion of background does nothing)
                top = mp >= mp.flatten(1).quantile(0.8, dim=1).view(-1, 1, 1)
                ink += ((x[idx, 0] > 0.3) & top).flatten(1).sum(1).div(top.flatten(1).sum(1)).tolist()
            line = (f"  {label:<13} deletion {np.mean(dele):.3f}  insertion {np.mean(ins):.3f}  "
                    f"deletion to grey {np.mean(dele_grey):.3f}  ink in top 20% {np.mean(ink):.2f}")
            if method != "random":
                opts = {"patch": 8, "samples": 16} if method == "sobol" else base_opts
                chk = randomisation_check(model, x[:8], "class=3", method, **opts)
                line += f"  randomisation Spearman {chk.mean:+.3f} ({'pass' if chk.passed else 'FAIL'})"
            print(line)
        chk = randomisation_check(model, x[:8], "class=3", edge_map)
        print(f"  {'edge map':<13} randomisation Spearman {chk.mean:+.3f} ({'pass' if chk.passed else 'FAIL'})")
        chk = randomisation_check(model, x[:8], "class=3", "sobol", patch=8, samples=16, baseline=0.0)
        print(f"  {'sobol, black':<13} randomisation Spearman {chk.mean:+.3f} ({'pass' if chk.passed else 'FAIL'})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["resnet18", "cifar", "quality"], default="resnet18")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.model == "quality":
        quality()
        return 0
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if args.model == "resnet18":
        model = load_model("timm:resnet18")
        layer_name = "layer4"
    else:
        model = load_model("builtin:cifar_resnet20", weights=CIFAR_WEIGHTS)
        layer_name = "layer3"
    layer = model.net.get_submodule(layer_name)
    x = fit_to_spec(photos(args.batch), model.spec)
    with torch.no_grad():
        targets = model(x).argmax(1).tolist()
    units = [f"class={t}" for t in targets]

    def ours():  # one unit per image (a list of addresses): one forward/backward for the batch
        return explain(model, x, units, "gradcam", layer=layer_name)

    def ours_batched():  # one unit for the whole batch (the first image's class): a single forward/backward
        return explain(model, x, units[0], "gradcam", layer=layer_name)

    cam = GradCAM(model=model, target_layers=[layer])

    def ref():
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(t) for t in targets])

    def ref_batched():
        return cam(input_tensor=x, targets=[ClassifierOutputTarget(targets[0])] * len(x))

    diff = float(np.abs(ours().numpy() - ref()).max())
    diff_b = float(np.abs(ours_batched().numpy() - ref_batched()).max())
    for name, a, b in (("per-image targets", ours, ref), ("one target", ours_batched, ref_batched)):
        ratios, ta, tb = [], [], []
        for r in range(args.rounds + 1):
            pair = [(a, ta), (b, tb)] if r % 2 == 0 else [(b, tb), (a, ta)]
            for fn, store in pair:
                t0 = time.perf_counter()
                fn()
                store.append(time.perf_counter() - t0)
            if r:  # round 0 warms up
                ratios.append(ta[-1] / tb[-1])
        q = statistics.quantiles(ratios, n=4)
        print(f"{args.model} batch {args.batch} at {tuple(model.spec.size)}, {name}: unifiedviz {statistics.median(ta[1:]):.3f}s, "
              f"pytorch-grad-cam {statistics.median(tb[1:]):.3f}s, ratio {statistics.median(ratios):.2f}x "
              f"(n={len(ratios)}, quartiles {q[0]:.2f}-{q[2]:.2f})")
    print(f"max |map difference|: per-image targets {diff:.2e}, one target {diff_b:.2e}")
    cam.__exit__(None, None, None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
