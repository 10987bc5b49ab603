"""Issue 10, benchmark (b): gradient-free activation maximisation of the spiking CIFAR-10 CNN.

    OMP_NUM_THREADS=1 .venv/bin/python bench/gradient_free_spiking.py \
        [--budgets 250 500] [--steps 128] [--units "class=1" "class=6" "spiking1#*:channel=5" "spiking2#*:neuron=7"] \
        [--optimizers protes uniform-search random-search] [--protes-mutations M]

`builtin:cifar10-snn` at its trained setting (128 time steps). Each optimiser runs once per
unit set at the largest budget (queries = images scored per unit); the best-so-far curve gives
the best value at every smaller budget of the list. PROTES (MANGO's defaults: k = 10, top 1,
lr 0.05, rank 5, QTT; plus our default 3 mutations of the best per step, `--protes-mutations`)
and uniform search (10 samples per step) search the VQ-VAE's 8x8 code grid
(`--param codes`, 512 codes per cell); the (1+1)-ES (`random-search`) moves the same decoder's
continuous latent (`--param generator`, its clip kept, no L2 decay), one query per step. No transforms. All units of a
run share each forward pass (a batch of units x k images).

Units: class units read the output spike rate (spikes / steps, in [0, 1]); `spiking1#*:channel=c`
the channel's spike count summed over the 128 steps, averaged over its 5x5 positions;
`spiking2#*:neuron=j` one neuron's spike count (0..128). Printed for reference: each unit's
maximum over 64 scikit-image photo crops. Prints a Markdown table and the time taken,
with queries per second at the batch size used.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unifiedviz.adapters import Adapter  # noqa: E402
from unifiedviz.engine import render  # noqa: E402
from unifiedviz.generators.photos import photo_crops  # noqa: E402
from unifiedviz.models.builtin.cifar_snn import cifar10_snn  # noqa: E402
from unifiedviz.objectives import OnePerImage, UnitObjective  # noqa: E402
from unifiedviz.optimizers import OPTIMIZERS, Protes  # noqa: E402
from unifiedviz.params import make_param  # noqa: E402
from unifiedviz.visualize import image_seeds, reference_max  # noqa: E402

SPACE = {"protes": ("codes", {}), "uniform-search": ("codes", {}), "nevergrad": ("codes", {}),
         # decay 0: the recipe's L2 decay would shrink the ES's accepted latent after every step
         "random-search": ("generator", {"generator": "builtin:cifar10-vqvae", "decay": 0.0})}
LR = {"protes": 0.05, "uniform-search": 0.0, "nevergrad": 0.0, "random-search": 0.5}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budgets", type=int, nargs="+", default=[250, 500])
    ap.add_argument("--steps", type=int, default=128, help="time steps of the spiking network (trained: 128)")
    ap.add_argument("--units", nargs="+", default=["class=1", "class=6", "spiking1#*:channel=5", "spiking2#*:neuron=7"])
    ap.add_argument("--optimizers", nargs="+", default=["protes", "uniform-search", "random-search"])
    ap.add_argument("--protes-mutations", type=int, default=3, metavar="M",
                    help="PROTES's mutants of the best per step (default 3; MANGO: 0)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    adapter = Adapter(cifar10_snn(num_steps=args.steps))
    resolved = [adapter.resolve(u) for u in args.units]
    names = [r.unit.address() for r in resolved]
    seeds = image_seeds(args.seed, names)
    photos = photo_crops(64, seed=0)
    started = time.perf_counter()
    ref = reference_max(adapter, resolved, photos, batch_size=64)
    photo_s = time.perf_counter() - started
    print(f"builtin:cifar10-snn at {args.steps} steps, 1 thread: 64 photo crops in {photo_s:.1f} s "
          f"({64 / photo_s:.1f} images/s at batch 64)", flush=True)
    budget = max(args.budgets)
    rows = {}
    for name in args.optimizers:
        if name not in OPTIMIZERS:
            print(f"{name}: not registered, skipped")
            continue
        param_name, options = SPACE[name]
        param = make_param(param_name, len(resolved), adapter.model.spec, seed=seeds, **options)
        objective = OnePerImage([UnitObjective(r, batch=i) for i, r in enumerate(resolved)])
        # The (1+1)-ES scores one image per unit per step (two on the first): budget - 1 steps.
        kwargs = {"budget": budget} if param_name == "codes" else {"steps": budget - 1}
        t0 = time.perf_counter()
        optimizer = Protes(LR[name], mutations=args.protes_mutations) if name == "protes" else name
        result = render(adapter, objective, param, optimizer=optimizer, lr=LR[name], transforms=None, seed=seeds,
                        names=names, progress=False, **kwargs)
        seconds = time.perf_counter() - t0
        queries = result.queries if result.queries is not None else torch.arange(1, len(result.history) + 1)
        best = {}
        for b in args.budgets:
            reached = (queries <= b).nonzero()
            best[b] = result.history[int(reached[-1])] if len(reached) else torch.full((len(names),), float("nan"))
        used = int(queries[-1])
        per_step = max(1, used // len(queries))  # images per unit in one forward pass
        rows[name] = (best, seconds, used, per_step, result.final)
        print(f"{name} ({param_name}): {used} queries per unit x {len(names)} units in {seconds:.0f} s = "
              f"{used * len(names) / seconds:.1f} queries/s at batch {per_step * len(names)}; final {result.final.tolist()}; "
              + "; ".join(f"best @{b}: {best[b].tolist()}" for b in args.budgets), flush=True)
    print()
    header = "| unit | photo max | " + " | ".join(f"{o} @{b}" for o in rows for b in args.budgets) + " |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for i, unit in enumerate(names):
        cells = [f"{rows[o][0][b][i]:.3g}" for o in rows for b in args.budgets]
        print(f"| `{unit}` | {ref[i]:.3g} | " + " | ".join(cells) + " |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
