"""Issue 10, benchmark (a): gradient-free class AM of the real CIFAR-10 ResNet-20 through the VQ-VAE.

    OMP_NUM_THREADS=1 .venv/bin/python bench/gradient_free.py [--budgets 1000 5000 10000] \
        [--classes 0:10] [--methods protes uniform-search random-search nevergrad] [--models DIR] \
        [--protes K TOP] [--protes-lr LR] [--no-qtt] [--protes-mutations M] [--score logprob|logit] [--seed S]
    OMP_NUM_THREADS=1 .venv/bin/python bench/gradient_free.py --synthetic 64 512 10000 [--seeds 1 2 3]
    OMP_NUM_THREADS=1 .venv/bin/python bench/gradient_free.py --classify D [--model builtin:digits-cnn]

At equal query budgets (images scored per class unit), the best class logit and probability
reached by PROTES (MANGO's defaults: k = 10, top 1, lr 0.05, rank 5) and uniform random search
over the VQ-VAE's 8x8 grid of 512 codes (`codes` param), the (1+1)-ES over the same decoder's
continuous latent snapped to the codebook (`generator` param, snap=True), and nevergrad's
Portfolio over the code grid (when nevergrad is installed: `pip install nevergrad`). Each method
runs once per unit set at the largest budget; the value at a smaller budget is that run's best
so far when it had spent that many queries (nevergrad's Portfolio is told the largest budget,
which can change its early moves). No transforms; the objective is the class log-probability
(`--score logprob`, the default: MANGO maximises the softmax probability, and a search only ranks
its candidates, so log or not is the same search) or the class logit (`--score logit`).
Reference: gradient-based DGN-AM through the same decoder (`generator` param, Adam, the
generator's recipe, standard transforms, `--dgn-steps` steps); the table gives each method's
logit as a fraction of DGN-AM's for the same class (mean over classes). Queries per second
count images scored, at a batch of (classes x k) images per forward.

The ResNet-20 weights are read from `--models` (default $UNIFIEDVIZ_SHARED_MODELS, else
/work/shared/models: `cifar10_resnet20.th`, a DataParallel checkpoint), into the package's
`builtin:cifar_resnet20` architecture; when the file is absent the shipped weights are used.
`run_methods(adapter, units, budgets, ...)` is the reusable part (e.g. for another model).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unifiedviz.adapters import Adapter  # noqa: E402
from unifiedviz.engine import render  # noqa: E402
from unifiedviz.models import load_model  # noqa: E402
from unifiedviz.objectives import OnePerImage, UnitObjective  # noqa: E402
from unifiedviz.optimizers import Protes, SearchOptimizer, make_optimizer  # noqa: E402
from unifiedviz.params import make_param  # noqa: E402
from unifiedviz.visualize import image_seeds  # noqa: E402

#: method -> (param, param options, lr)
METHODS = {
    "protes": ("codes", {}, 0.05),
    "uniform-search": ("codes", {}, 0.0),
    "nevergrad": ("codes", {}, 0.0),
    "random-search": ("generator", {"generator": "builtin:cifar10-vqvae", "snap": True}, 0.5),
}


def resnet20(models: Path) -> Adapter:
    path = models / "cifar10_resnet20.th"
    if path.is_file():
        return Adapter(load_model("builtin:cifar_resnet20", weights=path))
    print(f"({path} absent: using the shipped builtin:cifar_resnet20 weights)")
    return Adapter(load_model("builtin:cifar_resnet20"))


def class_values(adapter: Adapter, images: torch.Tensor, classes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i's logit and probability of class classes[i] (no transforms)."""
    with torch.no_grad():
        logits = adapter.model(images)
    rows = torch.arange(len(classes))
    target = torch.tensor(classes)
    return logits[rows, target], logits.softmax(1)[rows, target]


def run_methods(adapter: Adapter, units: list[str], budgets: list[int], methods: list[str], *, seed: int = 0,
                progress: bool = True, score: str = "logprob", protes: dict | None = None) -> dict[str, dict]:
    """Each method once at max(budgets); per budget its best images' logit/probability; queries/s.
    `protes` are `Protes` options (e.g. {"candidates": 25, "top": 5}).

    Returns {method: {"logit": {budget: [N]}, "prob": {budget: [N]}, "qps": float, "batch": int, "seconds": float}}.
    """
    resolved = [adapter.resolve(u) for u in units]
    classes = [r.unit.index for r in resolved]
    names = [r.unit.address() for r in resolved]
    seeds = image_seeds(seed, names)
    out = {}
    for method in methods:
        param_name, options, lr = METHODS[method]
        opt = make_optimizer(method, lr) if method != "protes" else Protes(**{"lr": lr, **(protes or {})})
        param = make_param(param_name, len(units), adapter.model.spec, seed=seeds, **options)
        objective = OnePerImage([UnitObjective(r, batch=i, score=score) for i, r in enumerate(resolved)])
        checkpoints = sorted(budgets)
        found: dict[str, dict] = {"logit": {}, "prob": {}}
        searching = isinstance(opt, SearchOptimizer)

        def callback(info) -> None:
            used = info.step * opt.candidates if searching else info.step + 1  # the ES's first step scores twice
            following = info.step * opt.candidates + opt.candidates if searching else used + 1
            for b in checkpoints:
                if b not in found["logit"] and used <= b < following:  # the last step within budget b
                    logit, prob = class_values(adapter, param().detach(), classes)
                    found["logit"][b], found["prob"][b] = logit, prob

        started = time.perf_counter()
        result = render(adapter, objective, param, optimizer=opt, lr=lr, transforms="none", seed=seeds,
                        budget=max(budgets), callback=callback, progress=progress)
        seconds = time.perf_counter() - started
        batch = len(units) * (opt.candidates if searching else 1)
        out[method] = {**found, "qps": result.metadata["queries_total"] / seconds, "batch": batch,
                       "seconds": seconds, "nan": result.metadata["nan_candidates"]}
        print(f"{method}: {seconds:.0f} s, {out[method]['qps']:.0f} queries/s at batch {batch}; "
              f"at {max(budgets)}: p {[round(float(p), 3) for p in found['prob'][max(budgets)]]}", flush=True)
    return out


def dgn_am(adapter: Adapter, units: list[str], steps: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Gradient-based DGN-AM through the same VQ-VAE decoder: (logits, probabilities, seconds)."""
    from unifiedviz.visualize import visualize

    started = time.perf_counter()
    result = visualize(adapter, units, steps=steps, param="generator", seed=seed, progress=False,
                       param_options={"generator": "builtin:cifar10-vqvae"})
    classes = [adapter.resolve(u).unit.index for u in units]
    logit, prob = class_values(adapter, result.images, classes)
    return logit, prob, time.perf_counter() - started


def synthetic(dims: int, levels: int, budget: int, seeds: list[int]) -> None:
    """A known discrete function with a unique optimum: a sum over positions of per-position scores
    (1 at a hidden target value, U[0, 0.5) elsewhere). Prints, per method and seed, the positions
    right and the queries at which the argmax was first found (the test runs 6 x 16)."""
    from types import SimpleNamespace

    from unifiedviz.optimizers import Protes, UniformSearch
    from unifiedviz.params.seeding import RowGenerators

    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, levels, (dims,), generator=g)
    table = torch.rand(dims, levels, generator=g) * 0.5
    table[torch.arange(dims), target] = 1.0
    print(f"synthetic: {dims} positions x {levels} values, budget {budget}, seeds {seeds}", flush=True)
    variants = (Protes(mutations=0), Protes(qtt=False, mutations=0), Protes(), Protes(qtt=False),
                Protes(lr=1e-9), UniformSearch())  # lr 1e-9: the train frozen at its start, the mutants alone
    for opt in variants:
        started, used, hit = time.perf_counter(), 0, [None] * len(seeds)
        opt.setup_space(SimpleNamespace(n=len(seeds), dims=dims, levels=levels,
                                        indices=torch.zeros(len(seeds), dims, dtype=torch.long)),
                        RowGenerators(seeds), budget)
        while used + opt.queries_per_step() <= budget:
            opt.step(lambda idx: table[torch.arange(dims), idx].sum(-1))
            used += opt.queries_per_step()
            for i, row in enumerate(opt.best_indices):
                if hit[i] is None and torch.equal(row, target):
                    hit[i] = used
        right = (opt.best_indices == target).sum(1).tolist()
        name = type(opt).__name__ + (f" (qtt={opt.qtt}, mutations={opt.mutations}, lr={opt.lr})"
                                     if isinstance(opt, Protes) else "")
        print(f"  {name}: positions right {right} of {dims}; argmax found at queries {hit} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)


def classify_run(folder: Path, model: str) -> None:
    """Must-show (b): classify a class-unit run's written PNGs (unit_000.png ... in `names` order) with `model`."""
    import json

    from unifiedviz.inputs import load_inputs

    vm = load_model(model)
    units = json.loads((folder / "summary.json").read_text())["units"]
    images = torch.cat([load_inputs(str(folder / u["image"]), vm.spec).images for u in units])
    classes = torch.tensor([Adapter(vm).resolve(u["address"]).unit.index for u in units])
    with torch.no_grad():
        probs = vm(images).softmax(1)
    right = probs.argmax(1) == classes
    print(f"{folder}: {int(right.sum())}/{len(units)} classified as their class; predicted {probs.argmax(1).tolist()}, "
          f"p(class) {[round(float(p), 3) for p in probs[torch.arange(len(units)), classes]]}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budgets", type=int, nargs="+", default=[1000, 5000, 10000])
    ap.add_argument("--classes", default="0:10", help="class range, as in the unit grammar")
    ap.add_argument("--methods", nargs="+", default=["protes", "uniform-search", "random-search", "nevergrad"])
    ap.add_argument("--models", type=Path, default=Path(os.environ.get("UNIFIEDVIZ_SHARED_MODELS", "/work/shared/models")))
    ap.add_argument("--dgn-steps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protes", type=int, nargs=2, metavar=("K", "TOP"), default=[10, 1],
                    help="PROTES's samples per step and how many best it learns from (MANGO: 10 1; its variants 5 1, 25 5)")
    ap.add_argument("--protes-lr", type=float, default=0.05, help="PROTES's Adam step (MANGO: 0.05)")
    ap.add_argument("--protes-mutations", type=int, default=3, metavar="M",
                    help="of PROTES's K samples per step, M are the best so far with one code changed (default 3; MANGO: 0)")
    ap.add_argument("--no-qtt", action="store_true", help="PROTES over the 512 codes directly, not their binary digits")
    ap.add_argument("--score", choices=["logprob", "logit"], default="logprob", help="what the searches maximise")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--synthetic", type=int, nargs=3, metavar=("DIMS", "LEVELS", "BUDGET"),
                    help="only the known-argmax check, e.g. 64 512 10000 (seeds: --seeds)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="searches side by side in --synthetic")
    ap.add_argument("--classify", type=Path, metavar="RUN", help="only classify a visualize run's images with --model")
    ap.add_argument("--model", default="builtin:digits-cnn")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.classify:
        return classify_run(args.classify, args.model)
    if args.synthetic:
        return synthetic(*args.synthetic, seeds=args.seeds)
    methods = list(args.methods)
    if "nevergrad" in methods:
        try:
            import nevergrad  # noqa: F401
        except ImportError:
            print("nevergrad not installed (pip install nevergrad): left out")
            methods.remove("nevergrad")
    adapter = resnet20(args.models)
    lo, hi = (int(v) for v in args.classes.split(":"))
    units = [f"class={c}" for c in range(lo, hi)]
    started = time.perf_counter()
    dgn_logit, dgn_prob, dgn_seconds = dgn_am(adapter, units, args.dgn_steps, args.seed)
    print(f"DGN-AM ({args.dgn_steps} Adam steps, {dgn_seconds:.0f} s): logit {[round(float(v), 1) for v in dgn_logit]}, "
          f"p {[round(float(p), 3) for p in dgn_prob]}", flush=True)
    print(f"\nResNet-20 class units {args.classes} through the VQ-VAE (seed {args.seed}, searches maximise the "
          f"{args.score}); "
          f"DGN-AM: mean logit {dgn_logit.mean():.2f}, p >= 0.98 for {int((dgn_prob >= 0.98).sum())}/{len(units)}\n")
    print("| budget | method | mean p | classes p >= 0.98 | mean logit | logit / DGN-AM | queries/s (batch) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |", flush=True)
    results = {}
    for method in methods:  # each method's rows as soon as it is done (a long run can be cut short)
        results.update(run_methods(adapter, units, args.budgets, [method], seed=args.seed, progress=not args.quiet,
                                   score=args.score, protes={"candidates": args.protes[0], "top": args.protes[1],
                                                                   "qtt": not args.no_qtt, "lr": args.protes_lr,
                                                                   "mutations": args.protes_mutations}))
        r = results[method]
        for b in sorted(args.budgets):
            logit, prob = r["logit"][b], r["prob"][b]
            print(f"| {b} | {method} | {prob.mean():.3f} | {int((prob >= 0.98).sum())}/{len(units)} | "
                  f"{logit.mean():.2f} | {(logit / dgn_logit).mean():.2f} | {r['qps']:.0f} ({r['batch']}) |", flush=True)
    b = max(args.budgets)
    print(f"\nPer class at {b} queries: probability (logit)\n")
    print("| class | " + " | ".join(results) + " | DGN-AM |")
    print("| --- |" + " ---: |" * (len(results) + 1))
    for i, unit in enumerate(units):
        cells = [f"{float(r['prob'][b][i]):.3f} ({float(r['logit'][b][i]):.1f})" for r in results.values()]
        print(f"| {unit} | " + " | ".join(cells) + f" | {float(dgn_prob[i]):.3f} ({float(dgn_logit[i]):.1f}) |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
