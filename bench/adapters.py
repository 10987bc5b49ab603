"""What the Adapter's hooks cost, and what early stop saves, as ratios to a bare forward+backward.

    .venv/bin/python bench/adapters.py                 # resnet18 and vit_tiny at 224, batch 8
    .venv/bin/python bench/adapters.py --reps 5        # quicker, noisier

Random-init timm models (no network), eval mode, frozen weights everywhere (the AM setting);
the input requires grad. Per model, one "round" times, in shuffled order:

  bare        model(x).sum().backward()                       the reference
  bare-again  the same, once more                               A/A check: how far 1.0 drifts on this VM
  late        Adapter.session([late layer], stop_early=False): the hook overhead (target <= 1.05)
  early-full  session([early layer], stop_early=False)         an early unit paying for the whole net
  early-stop  session([early layer])                          early stop (DESIGN measured 0.39 for resnet18)

Each variant's time is divided by the bare time of the same round (this VM's speed swings
from minute to minute), and the medians of those per-round ratios are printed.
"""
from __future__ import annotations

import argparse
import copy
import random
import statistics
import time

import timm
import torch

from unifiedviz.adapters import Adapter
from unifiedviz.models import load_model

# model -> (late layer, early layer)
MODELS = {
    "resnet18": ("layer4", "layer1.0"),
    "vit_tiny_patch16_224": ("blocks.11", "blocks.1"),
}


def _bench(name: str, late: str, early: str, batch: int, reps: int) -> dict[str, float]:
    model = load_model(f"timm:{name}")
    for p in model.parameters():
        p.requires_grad_(False)
    adapter = Adapter(model)
    plain = copy.deepcopy(model)  # same weights, and none of the sessions' (idle) hooks
    x = torch.rand((batch, *model.spec.shape), requires_grad=True)

    def bare() -> None:
        plain(x).sum().backward()

    def hooked(run, layer: str):
        return lambda: run(x)[layer].sum().backward()

    with adapter.session([late], stop_early=False) as run_late, \
            adapter.session([early], stop_early=False) as run_early_full, \
            adapter.session([early]) as run_early_stop:
        variants = {
            "bare": bare,
            "bare-again": bare,
            "late": hooked(run_late, late),
            "early-full": hooked(run_early_full, early),
            "early-stop": hooked(run_early_stop, early),
        }
        for step in variants.values():  # warm-up: allocator, oneDNN kernels
            step()
        ratios: dict[str, list[float]] = {k: [] for k in variants if k != "bare"}
        order = list(variants)
        for _ in range(reps):
            random.shuffle(order)
            times = {}
            for key in order:
                x.grad = None
                start = time.perf_counter()
                variants[key]()
                times[key] = time.perf_counter() - start
            for key in ratios:
                ratios[key].append(times[key] / times["bare"])
    return {key: statistics.median(values) for key, values in ratios.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    torch.manual_seed(0)
    random.seed(0)
    print(f"torch {torch.__version__}, timm {timm.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch} at 224, {args.reps} interleaved rounds; medians of per-round ratios to bare fwd+bwd")
    for name, (late, early) in MODELS.items():
        r = _bench(name, late, early, args.batch, args.reps)
        print(f"{name:22s} A/A {r['bare-again']:.3f}   hooks, late {late:9s} no early stop: {r['late']:.3f}   "
              f"early {early}: {r['early-full']:.2f} without early stop, {r['early-stop']:.2f} with")


if __name__ == "__main__":
    main()
