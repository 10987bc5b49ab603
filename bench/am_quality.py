"""Does activation maximisation reach what it should, on a real trained model?

    .venv/bin/python bench/am_quality.py --weights /work/shared/models/cifar10_resnet20.th
    .venv/bin/python bench/am_quality.py --weights PATH --quick

On the CIFAR-10 ResNet-20 (akamaster checkpoint, loaded into `builtin:cifar_resnet20`):

1. Class visualisations: for each of the 10 classes, the softmax confidence the model gives
   its own class on the final image (no transforms), per `class_score` (logit, logprob).
2. If torch-lucent is importable: the unit activation our engine reaches versus Lucent's
   `render_vis` at equal steps, for channels of intermediate blocks, one image per unit, both
   with a colour-decorrelated Fourier image (sd 0.01), Adam lr 0.05. Both final images are
   scored by the same plain forward hook (channel mean of the block output). Lucent gets its
   standard transforms with pixel amounts scaled from 224 to 32 px as ours are
   (`--lucent-transforms default` keeps its 224-px amounts), and `fixed_image_size=32` so it
   does not upsample the CIFAR input to 224.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from unifiedviz import Adapter, load_model, parse_units, visualize

DEFAULT_WEIGHTS = os.environ.get("UNIFIEDVIZ_CIFAR_RESNET20", "/work/shared/models/cifar10_resnet20.th")
UNITS = ["layer2.2:channel=0:8", "layer3.0:channel=0:8", "layer3.2:channel=0:8"]


def class_confidence(model, steps: int, score: str, seed: int) -> list[tuple[float, int]]:
    """(softmax of its own class, top-1 class) for each class's visualisation."""
    res = visualize(model, "class=0:10", steps=steps, param="fourier", class_score=score, seed=seed,
                    batch_size=10, progress=False)
    with torch.no_grad():
        probs = model(res.images).softmax(-1)
    return [(float(probs[i, i]), int(probs[i].argmax())) for i in range(10)]


def block_values(model, layer: str, channels: list[int], images: torch.Tensor) -> torch.Tensor:
    """Image i's mean of channel channels[i] at `layer`, via a plain forward hook."""
    seen = {}
    handle = model.net.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.update(out=o.detach()))
    try:
        with torch.no_grad():
            model(images)
    finally:
        handle.remove()
    out = seen["out"]
    return torch.stack([out[i, c].mean() for i, c in enumerate(channels)])


def lucent_images(model, layer: str, channels: list[int], steps: int, seed: int, transforms: str) -> torch.Tensor:
    import numpy as np
    from lucent.optvis import objectives as lobj
    from lucent.optvis import param as lparam
    from lucent.optvis import render as lrender
    from lucent.optvis import transform as ltr

    spec = model.spec
    assert tuple(spec.mean) == (0.485, 0.456, 0.406) and tuple(spec.std) == (0.229, 0.224, 0.225), \
        "Lucent normalises with ImageNet statistics; this model must use the same"
    side = spec.size[0]

    def px(at_224: int) -> int:
        return max(1, round(at_224 * side / 224))

    if transforms == "scaled":
        chain = [ltr.pad(px(12), mode="constant", constant_value=0.5), ltr.jitter(max(2, px(8))),
                 ltr.random_scale([1 + (i - 5) / 50.0 for i in range(11)]),
                 ltr.random_rotate(list(range(-10, 11)) + 5 * [0]), ltr.jitter(max(2, px(4)))]
    else:
        chain = list(ltr.standard_transforms)
    np.random.seed(seed)
    torch.manual_seed(seed)
    net = model.net.eval()
    name = layer.replace(".", "_")  # Lucent names nested modules with '_'
    objective = lobj.Objective.sum([lobj.channel(name, c, batch=i) for i, c in enumerate(channels)])
    try:
        out = lrender.render_vis(net, objective, lambda: lparam.image(side, batch=len(channels)),
                                 optimizer=lambda params: torch.optim.Adam(params, lr=0.05),
                                 transforms=chain, thresholds=(steps,), show_image=False, progress=False,
                                 fixed_image_size=side)
    finally:
        for m in net.modules():  # Lucent never removes its hooks
            m._forward_hooks.clear()
        net.zero_grad(set_to_none=True)  # nor the weight grads it accumulated
    return torch.from_numpy(out[-1]).permute(0, 3, 1, 2).contiguous()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="AM quality on the CIFAR-10 ResNet-20")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS, help="akamaster ResNet-20 checkpoint (.th)")
    p.add_argument("--steps", type=int, nargs="+", default=[64, 256], help="step counts to compare at")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--units", nargs="+", default=UNITS, help="addresses, channel ranges of block outputs")
    p.add_argument("--class-scores", nargs="+", default=["logit", "logprob"])
    p.add_argument("--lucent-transforms", choices=["scaled", "default"], default="scaled")
    p.add_argument("--quick", action="store_true", help="smoke run: 32 steps, one seed, one unit group")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: small convs under contention)")
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.seeds, args.units = [32], [0], args.units[:1]
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    model = load_model("builtin:cifar_resnet20", weights=args.weights)
    names = model.class_names
    print(f"model builtin:cifar_resnet20 <- {args.weights}; steps {args.steps}, seeds {args.seeds}")

    # 1. class visualisations
    for score in args.class_scores:
        for steps in args.steps:
            rows = [class_confidence(model, steps, score, seed) for seed in args.seeds]
            print(f"\nclass visualisations, class_score={score}, {steps} steps: softmax of own class "
                  f"(seeds {' / '.join(map(str, args.seeds))})")
            for c in range(10):
                vals = " / ".join(f"{r[c][0]:.3f}" for r in rows)
                tops = " / ".join(names[r[c][1]] for r in rows)
                print(f"  {c} {names[c]:<11s} {vals}   top-1: {tops}")
            confs = [r[c][0] for r in rows for c in range(10)]
            hits = sum(r[c][1] == c for r in rows for c in range(10))
            print(f"  mean {statistics.mean(confs):.3f}, median {statistics.median(confs):.3f}, min {min(confs):.3f}; "
                  f"top-1 is the own class for {hits}/{len(confs)}", flush=True)

    # 2. versus Lucent
    try:
        import lucent.optvis.render  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - optional reference
        print(f"\ntorch-lucent not importable ({type(exc).__name__}: {exc}); comparison skipped")
        return
    adapter = Adapter(model)
    for steps in args.steps:
        print(f"\nunit activation reached, ours vs Lucent ({args.lucent_transforms} transforms), {steps} steps; "
              "per unit: ours / lucent (mean over seeds)")
        ratios, ours_all, luc_all, wins = [], [], [], 0
        for address in args.units:
            units = parse_units(address)
            layer = units[0].layer
            channels = [u.index for u in units]
            ours = torch.zeros(len(units))
            luc = torch.zeros(len(units))
            for seed in args.seeds:
                res = visualize(adapter, address, steps=steps, param="fourier", seed=seed, batch_size=len(units),
                                progress=False)
                ours += block_values(model, layer, channels, res.images) / len(args.seeds)
                imgs = lucent_images(model, layer, channels, steps, seed, args.lucent_transforms)
                luc += block_values(model, layer, channels, imgs) / len(args.seeds)
            for u, a, b in zip(units, ours.tolist(), luc.tolist()):
                r = a / b if b > 0 else float("inf")
                ratios.append(r)
                wins += a >= b
                print(f"  {u.address():<22s} {a:8.3f} / {b:8.3f}  = {r:5.2f}")
            ours_all += ours.tolist()
            luc_all += luc.tolist()
            print(f"  {layer}: ratio of means {sum(ours.tolist()) / sum(luc.tolist()):.2f}", flush=True)
        finite = [r for r in ratios if r != float("inf")]
        print(f"  all {len(ratios)} units: mean ratio {statistics.mean(finite):.2f}, median "
              f"{statistics.median(finite):.2f}, ratio of means {sum(ours_all) / sum(luc_all):.2f}; "
              f"ours >= Lucent for {wins}/{len(ratios)}; stuck at exactly 0: ours "
              f"{sum(v == 0 for v in ours_all)}, Lucent {sum(v == 0 for v in luc_all)}")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
