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
3. If horama is importable (`pip install horama`, optional): the same units rendered by
   Horama's MACO (`horama.maco`, one unit per run, its defaults but 32 px image and input,
   crop boxes of 0.9-1.0 of the side like our crop, values in [0, 1] through the model's own
   normalisation), scored the same way. No network: Horama downloads an ImageNet amplitude
   spectrum on first use; here it gets the 1/f prior (`power_law`) written where it looks.
   Step for step it is a closer match to Horama than our "maco" param (NAdam lr 1, its noise).
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


def horama_maco(model, layer: str, channel: int, *, steps: int, image_size: int, input_size: int, crops: int,
                device="cpu", box_size=(0.2, 0.25), seed: int = 0, on_step=None) -> torch.Tensor:
    """Horama's `maco` rendering channel `channel` (mean) of `layer`; the final image `[1, 3, S, S]` in [0, 1].

    `on_step()` runs at the start of each of its steps (for bench/am_speed.py's clock).
    """
    import tempfile

    import numpy as np
    from horama import maco, maco_fv

    from unifiedviz.params._spectral import power_law

    seen = {}
    handle = model.net.get_submodule(layer).register_forward_hook(lambda m, i, o: seen.update(out=o))

    def objective(crops_batch: torch.Tensor) -> torch.Tensor:
        if on_step is not None:
            on_step()
        model(crops_batch)  # [0, 1] in, the model normalises
        return seen["out"][:, channel].mean()

    maco_fv.tqdm = lambda steps, **_: steps  # Horama's progress bar has no switch
    magnitude = power_law((image_size, image_size), 1.0).expand(3, -1, -1).numpy()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "spectrum_decorrelated.npy"), magnitude)  # the file Horama would download
        os.chdir(tmp)
        try:
            torch.manual_seed(seed)
            image, _ = maco(objective, total_steps=steps, image_size=image_size, model_input_size=input_size,
                            crops_per_iteration=crops, box_size=box_size, values_range=(0.0, 1.0), device=str(device))
        finally:
            os.chdir(cwd)
            handle.remove()
            model.zero_grad(set_to_none=True)  # Horama leaves the weights' grads on
    return image.detach()[None]


def compare_units(label: str, args, steps: int, render_units) -> None:
    """Print ours / theirs per unit for `render_units(layer, channels, steps, seed) -> images`."""
    adapter = Adapter(args.model)
    print(f"\nunit activation reached, ours vs {label}, {steps} steps; per unit: ours / theirs (mean over seeds)")
    ratios, ours_all, ref_all, wins = [], [], [], 0
    for address in args.units:
        units = parse_units(address)
        layer = units[0].layer
        channels = [u.index for u in units]
        ours = torch.zeros(len(units))
        ref = torch.zeros(len(units))
        for seed in args.seeds:
            key = (address, steps, seed)  # our images are the same for every comparison: render once
            if key not in args.ours:
                args.ours[key] = visualize(adapter, address, steps=steps, param="fourier", seed=seed,
                                           batch_size=len(units), progress=False).images
            ours += block_values(args.model, layer, channels, args.ours[key]) / len(args.seeds)
            ref += block_values(args.model, layer, channels, render_units(layer, channels, steps, seed)) / len(args.seeds)
        for u, a, b in zip(units, ours.tolist(), ref.tolist()):
            r = a / b if b > 0 else float("inf")
            ratios.append(r)
            wins += a >= b
            print(f"  {u.address():<22s} {a:8.3f} / {b:8.3f}  = {r:5.2f}")
        ours_all += ours.tolist()
        ref_all += ref.tolist()
        print(f"  {layer}: ratio of means {sum(ours.tolist()) / sum(ref.tolist()):.2f}", flush=True)
    finite = [r for r in ratios if r != float("inf")]
    print(f"  all {len(ratios)} units: mean ratio {statistics.mean(finite):.2f}, median "
          f"{statistics.median(finite):.2f}, min {min(finite):.2f}, ratio of means {sum(ours_all) / sum(ref_all):.2f}; "
          f"ours >= {label} for {wins}/{len(ratios)}; stuck at exactly 0: ours "
          f"{sum(v == 0 for v in ours_all)}, {label} {sum(v == 0 for v in ref_all)}", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="AM quality on the CIFAR-10 ResNet-20")
    p.add_argument("--weights", default=DEFAULT_WEIGHTS, help="akamaster ResNet-20 checkpoint (.th)")
    p.add_argument("--steps", type=int, nargs="+", default=[64, 256], help="step counts to compare at")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--units", nargs="+", default=UNITS, help="addresses, channel ranges of block outputs")
    p.add_argument("--class-scores", nargs="+", default=["logit", "logprob"], help="none: skip part 1")
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
    for score in [s for s in args.class_scores if s != "none"]:
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

    # 2. versus Lucent, 3. versus Horama
    args.model, args.ours = model, {}
    side = model.spec.size[0]
    try:
        import lucent.optvis.render  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - optional reference
        print(f"\ntorch-lucent not importable ({type(exc).__name__}: {exc}); comparison skipped")
    else:
        for steps in args.steps:
            compare_units(f"Lucent ({args.lucent_transforms} transforms)", args, steps,
                          lambda layer, channels, n, seed: lucent_images(model, layer, channels, n, seed,
                                                                         args.lucent_transforms))
    try:
        import horama  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - optional reference
        print(f"\nhorama not importable ({type(exc).__name__}: {exc}); comparison skipped")
    else:
        def horama_images(layer, channels, n, seed):
            return torch.cat([horama_maco(model, layer, c, steps=n, image_size=side, input_size=side, crops=6,
                                          box_size=(0.8, 0.9), seed=seed) for c in channels])

        for steps in args.steps:
            compare_units("Horama maco", args, steps, horama_images)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
