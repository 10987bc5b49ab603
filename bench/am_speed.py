"""How much an activation-maximisation step costs, as ratios to a bare forward+backward.

    .venv/bin/python bench/am_speed.py            # full run (a few minutes on an idle 2-core VM)
    .venv/bin/python bench/am_speed.py --quick    # smoke run
    .venv/bin/python bench/am_speed.py --only ad --threads 2

Random-init timm resnet18 and vit_tiny_patch16_224 at 224, batch 8, no network.

(a) AM step (one image per unit, Fourier param, standard transforms, Adam) over the bare
    `model(x).sum().backward()` with the weights requiring grad (what a user, or Lucent,
    writes), and over the same with frozen weights (the honest floor).
(b) early stop: a step for an early unit with stop_early over without.
(c) throughput: 64 channels of resnet18 layer3 rendered in batches of 8/16/32 (the engine runs the model
    8 images at a time on the CPU: `unifiedviz/chunked.py`), and batch 32 in one piece (chunk=0) beside.
(d) torch-lucent's render_vis step on torchvision resnet18, same unit/batch, as a reference.
(e) where a step goes, interleaved A/B on resnet18 layer4: the standard transforms as six
    separate passes (pad and parts one by one) over the composed single warp; one generator
    for the batch over one generator per image (what `visualize` uses).
(f) Horama's MACO (`pip install horama`, optional): its step (one unit, 8 crops of a 1280 px
    image per step, its defaults otherwise) over the bare step at batch 8.

Every AM run seeds per image as `visualize` does. On CUDA (when available) the models run on
the GPU, the clock synchronises, and the median step times in ms are printed beside the ratios.

Timing is interleaved per step (bench/_timing.py): engine steps are timed through
`render(callback=...)`, and right after every step the callback runs and times one bare
step on a deep copy of the model, so each AM step has a reference taken seconds later.
Ratios are medians of those per-step ratios (A-vs-B engine cases: of per-round ratios).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import PairedClock, describe, med, pooled, rounds_ratio

from unifiedviz import Adapter, load_model, parse_units, render
from unifiedviz.objectives import OnePerImage, unit
from unifiedviz.params import make_param
from unifiedviz.transforms import Compose, standard_transforms
from unifiedviz.visualize import image_seeds

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

MODELS = {
    # source: (mid/late unit for (a), early unit for (b)); {b} is the batch size
    "timm:resnet18": ("layer4:channel=0:{b}", "layer1.0:channel=0:{b}"),
    "timm:vit_tiny_patch16_224": ("blocks.11.mlp.fc1:neuron=0:{b}", "blocks.1:channel=0:{b}"),
}


def bare_step(net: torch.nn.Module, shape, *, frozen: bool):
    """`net(x).sum().backward()` on a private copy of `net` (eval mode), x requiring grad.

    Weights require grad unless `frozen`; their grads are dropped each step (set_to_none).
    """
    net = copy.deepcopy(net).eval()
    for p in net.parameters():
        p.requires_grad_(not frozen)
    x = torch.rand(shape, device=DEVICE).requires_grad_(True)

    def step() -> None:
        x.grad = None
        net.zero_grad(set_to_none=True)
        net(x).sum().backward()

    return step


def am_run(adapter: Adapter, address: str, refs: dict, steps: int, *, stop_early: bool = True,
           transforms="standard", per_image_seeds: bool = True, chunk: int | None = None) -> PairedClock:
    """One render of `steps` steps, one image per unit of `address`, seeded per image as
    `visualize` does (or with one int seed), timed step by step."""
    units = parse_units(address)
    objective = OnePerImage([unit(adapter, u, batch=i) for i, u in enumerate(units)])
    seed = image_seeds(0, [u.address() for u in units]) if per_image_seeds else 0
    param = make_param("fourier", len(units), adapter.model.spec, seed=seed)
    clock = PairedClock(refs, sync=_sync)
    render(adapter, objective, param, steps=steps, transforms=transforms, progress=False, seed=seed,
           callback=clock, stop_early=stop_early, chunk=chunk)
    return clock


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def model_on_device(source: str):
    model = load_model(source)
    return model.to(DEVICE)


def compare(cases: dict, rounds: int, ref: str, skip: int) -> dict[str, list[list[float]]]:
    """Run each case (a function returning a PairedClock) once per round, rotating the order;
    return each case's per-round lists of step/reference ratios."""
    names = list(cases)
    out: dict[str, list[list[float]]] = {n: [] for n in names}
    for r in range(rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            out[n].append(cases[n]().ratios(ref, skip))
    return out


def line(label: str, text: str) -> None:
    print(f"  {label:<46s} {text}", flush=True)


def section_a(source: str, args) -> None:
    late = MODELS[source][0].format(b=args.batch)
    model = model_on_device(source)
    adapter = Adapter(model)
    shape = (args.batch, *model.spec.shape)
    refs = {"bare": bare_step(model.net, shape, frozen=False), "frozen": bare_step(model.net, shape, frozen=True)}
    clocks = [am_run(adapter, late, refs, args.warmup + args.steps) for _ in range(args.rounds)]
    w = args.warmup
    am = pooled([c.times(w) for c in clocks])
    bare = pooled([c.refs["bare"][w:] for c in clocks])
    frozen = pooled([c.refs["frozen"][w:] for c in clocks])
    print(f"\n(a) {source}  {late}  batch {args.batch}   "
          f"[median step: AM {1000 * med(am):.0f} ms, bare {1000 * med(bare):.0f} ms, frozen {1000 * med(frozen):.0f} ms]")
    line("AM step / bare fwd+bwd (weights need grad)", describe(pooled([c.ratios("bare", w) for c in clocks])))
    line("AM step / bare fwd+bwd (frozen weights)", describe(pooled([c.ratios("frozen", w) for c in clocks])))


def section_b(source: str, args) -> None:
    early = MODELS[source][1].format(b=args.batch)
    model = model_on_device(source)
    adapter = Adapter(model)
    refs = {"bare": bare_step(model.net, (args.batch, *model.spec.shape), frozen=False)}
    n = args.warmup + args.steps
    res = compare({"early": lambda: am_run(adapter, early, refs, n, stop_early=True),
                   "full": lambda: am_run(adapter, early, refs, n, stop_early=False)},
                  args.rounds, "bare", args.warmup)
    print(f"\n(b) {source}  {early}  batch {args.batch}")
    line("step with stop_early / without", describe(rounds_ratio(res["early"], res["full"])))
    line("step with stop_early / bare fwd+bwd", describe(pooled(res["early"])))
    line("step without stop_early / bare fwd+bwd", describe(pooled(res["full"])))


def section_c(args) -> None:
    model = model_on_device("timm:resnet18")
    adapter = Adapter(model)
    # Yardstick: a frozen bare step at batch 8, so batch sizes compare despite drift.
    refs = {"ref": bare_step(model.net, (8, *model.spec.shape), frozen=True)}
    n = args.warmup + args.steps
    # (batch, chunk): the engine's default chunking (None: 8 images at a time on the CPU), and the
    # largest batch also in one piece (chunk 0), the engine before chunking
    cases = [(b, None) for b in args.batches] + [(max(args.batches), 0)]
    clocks: dict[tuple, list[PairedClock]] = {c: [] for c in cases}
    for r in range(args.rounds):
        for b, chunk in cases[r % len(cases):] + cases[: r % len(cases)]:
            clocks[b, chunk].append(am_run(adapter, f"layer3:channel=0:{b}", refs, n, chunk=chunk))
    total, w, b0 = 64, args.warmup, cases[0]
    norm = {c: [[x / c[0] for x in k.ratios("ref", w)] for k in ks] for c, ks in clocks.items()}
    print(f"\n(c) timm:resnet18 layer3, {total} channels; units/s assume {args.render_steps} steps per image")
    for case in cases:
        b, chunk = case
        step = med(pooled([c.times(w) for c in clocks[case]]))
        per_image = describe(rounds_ratio(norm[case], norm[b0]))
        label = f"batch {b:>3d}" + (" in one piece (chunk=0)" if chunk == 0 else "")
        print(f"  {label}: step {1000 * step:6.0f} ms = {med(pooled(norm[case])) * b:4.2f} frozen bare "
              f"batch-8 steps; {b / step:5.1f} image-steps/s, {b / (step * args.render_steps):.3f} units/s "
              f"({total} units in {total / b * step * args.render_steps / 60:.1f} min); "
              f"cost per image vs batch {b0[0]}: {per_image}", flush=True)


def section_d(args) -> None:
    try:
        from lucent.optvis import objectives as lobj
        from lucent.optvis import param as lparam
        from lucent.optvis import render as lrender
    except Exception as exc:  # noqa: BLE001 - optional reference
        print(f"\n(d) torch-lucent not importable ({type(exc).__name__}: {exc}); skipped")
        return
    import numpy as np

    model = model_on_device("torchvision:resnet18")
    adapter = Adapter(model)
    b, n = args.batch, args.warmup + args.steps
    refs = {"bare": bare_step(model.net, (b, 3, 224, 224), frozen=False)}
    luc_net = copy.deepcopy(model.net).eval()  # Lucent never removes its hooks: keep them off ours

    def lucent_run() -> PairedClock:
        np.random.seed(0)
        torch.manual_seed(0)
        clock = PairedClock(refs, sync=_sync)

        class TimedAdam(torch.optim.Adam):
            def step(self, closure=None):
                loss = super().step(closure)
                clock()
                return loss

        objective = lobj.Objective.sum([lobj.channel("layer4", i, batch=i) for i in range(b)])
        try:
            lrender.render_vis(luc_net, objective, lambda: lparam.image(224, batch=b),
                               optimizer=lambda params: TimedAdam(params, lr=0.05),
                               thresholds=(n,), show_image=False, progress=False)
        finally:
            for m in luc_net.modules():  # one hook per module per call, never removed by Lucent
                m._forward_hooks.clear()
        return clock

    res = compare({"lucent": lucent_run, "ours": lambda: am_run(adapter, f"layer4:channel=0:{b}", refs, n)},
                  args.rounds, "bare", args.warmup)
    print(f"\n(d) torchvision:resnet18 layer4 channels 0:{b}, batch {b} (Lucent: its default transforms, "
          "which feed the model 248-273 px images; ours crop back to 224)")
    line("Lucent render_vis step / bare fwd+bwd", describe(pooled(res["lucent"])))
    line("our step / bare fwd+bwd", describe(pooled(res["ours"])))
    line("our step / Lucent step", describe(rounds_ratio(res["ours"], res["lucent"])))


def section_e(args) -> None:
    model = model_on_device("timm:resnet18")
    adapter = Adapter(model)
    address = MODELS["timm:resnet18"][0].format(b=args.batch)
    refs = {"frozen": bare_step(model.net, (args.batch, *model.spec.shape), frozen=True)}
    chain = standard_transforms(model.spec)
    pad, composed = chain.transforms
    separate = Compose([pad, *composed.parts])  # the same parts and draws, one pass each (the chain before)
    n = args.warmup + args.steps
    res = compare({"composed": lambda: am_run(adapter, address, refs, n, transforms=chain),
                   "separate": lambda: am_run(adapter, address, refs, n, transforms=separate),
                   "one-generator": lambda: am_run(adapter, address, refs, n, transforms=chain,
                                                   per_image_seeds=False)},
                  args.rounds, "frozen", args.warmup)
    print(f"\n(e) timm:resnet18  {address}  batch {args.batch}: interleaved A/B, steps over the frozen bare step")
    line("composed transforms (standard) / frozen bare", describe(pooled(res["composed"])))
    line("transforms as 6 separate passes / frozen bare", describe(pooled(res["separate"])))
    line("composed / separate", describe(rounds_ratio(res["composed"], res["separate"])))
    line("per-image generators / one generator", describe(rounds_ratio(res["composed"], res["one-generator"])))


def section_f(args) -> None:
    try:
        import horama
    except Exception as exc:  # noqa: BLE001 - optional reference
        print(f"\n(f) horama not importable ({type(exc).__name__}: {exc}); skipped")
        return
    from am_quality import horama_maco

    model = model_on_device("timm:resnet18")
    adapter = Adapter(model)
    b, n = args.batch, args.warmup + args.steps
    refs = {"bare": bare_step(model.net, (b, *model.spec.shape), frozen=False),
            "frozen": bare_step(model.net, (b, *model.spec.shape), frozen=True)}
    hnet = copy.deepcopy(model)  # Horama keeps the weights' grads on: keep them off ours

    def horama_run() -> PairedClock:
        clock = PairedClock(refs, sync=_sync)
        horama_maco(hnet, "layer4", 0, steps=n, image_size=1280, input_size=224, crops=b, device=DEVICE,
                    on_step=clock)
        return clock

    res = compare({"horama": horama_run, "ours": lambda: am_run(adapter, f"layer4:channel=0:{b}", refs, n)},
                  args.rounds, "bare", args.warmup)
    print(f"\n(f) horama {horama.__version__ if hasattr(horama, '__version__') else ''} maco on timm:resnet18 layer4 "
          f"channel 0: 1 unit per step, {b} crops of a 1280 px image; ours: {b} units per step")
    line("Horama maco step / bare fwd+bwd", describe(pooled(res["horama"])))
    line("our step / bare fwd+bwd", describe(pooled(res["ours"])))
    line("our step / Horama step", describe(rounds_ratio(res["ours"], res["horama"])))
    line(f"per unit-step: ours / Horama (ours / {b})", describe([r / b for r in rounds_ratio(res["ours"], res["horama"])]))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="AM step time as ratios to a bare forward+backward")
    p.add_argument("--quick", action="store_true", help="fast smoke run (2 rounds of 2 timed steps)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: on a shared 2-core VM, 2 threads swing 1.5-5x)")
    p.add_argument("--rounds", type=int, default=3, help="renders per case")
    p.add_argument("--steps", type=int, default=6, help="timed steps per render")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (step 1 carries render's setup)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--render-steps", type=int, default=256, help="steps per image assumed for units/s in (c)")
    p.add_argument("--only", default="abcdef", help="sections to run, e.g. 'ad'")
    args = p.parse_args(argv)
    args.batches = [8, 16, 32]
    if args.quick:
        args.rounds, args.steps, args.warmup, args.batches = 2, 2, 1, [8, 16]
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} on {DEVICE}{' (' + torch.cuda.get_device_name() + ')' if DEVICE.type == 'cuda' else ''}, "
          f"{torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.rounds} renders x {args.steps} timed "
          f"steps (+{args.warmup} untimed) per case")
    started = time.perf_counter()
    for source in MODELS:
        if "a" in args.only:
            section_a(source, args)
        if "b" in args.only:
            section_b(source, args)
    if "c" in args.only:
        section_c(args)
    if "d" in args.only:
        section_d(args)
    if "e" in args.only:
        section_e(args)
    if "f" in args.only:
        section_f(args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s, load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
