"""The planted-concept benchmark (docs/probes.md): digits with a pasted checkerboard (the concept)
and a bright frame (the spurious feature). Trains a small CNN (~4 s), fits every probe kind, the
spurious CAV and the cured direction at one layer, and prints metrics.json-style numbers.

    python scripts/probes_benchmark.py [--layer relu2] [--seed 0] [--runs 20] [--out FILE.json]
    python scripts/probes_benchmark.py --tcav-seeds 0-19   # TCAV only, one model, many data seeds
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch

N = 200  # images per probe set (half to fit, half held out)


def tcav_checks(ad, layer: str = "relu2", *, seed: int = 0, runs: int = 20) -> dict:
    """TCAV of the planted concept for class "patch" and the null check on a random image set.

    The concept CAVs (50 concept images vs 50 negatives drawn per run) and as many random-vs-random
    CAVs (50 vs the same 50 negatives) give `runs` scores each; the random-set check draws its
    pseudo-concept set and its random sets from one pool of patch-free images, so it is a true null."""
    from unifiedviz.probes import tcav
    from unifiedviz.probes.planted import planted_images

    s = seed * 100
    concept, _, _, _ = planted_images(N, concept=True, spurious=0.9, split="test", seed=s + 10)
    negs, _, _, _ = planted_images(N, concept=False, spurious=False, split="test", seed=s + 11)
    targets, _, _, _ = planted_images(100, concept=True, spurious=0.5, split="test", seed=s + 15)
    randoms, _, _, _ = planted_images(N, concept=False, spurious=False, split="test", seed=s + 16)
    return {
        "concept": tcav(ad, layer, targets, 1, concept[:50], negs, runs=runs, set_size=50, seed=seed).as_dict(),
        "random_set": tcav(ad, layer, targets, 1, randoms, negs, random_pool=randoms, runs=runs, set_size=50,
                           seed=seed, resample_concept=True).as_dict(),
    }


def run_benchmark(*, layer: str = "relu2", seed: int = 0, runs: int = 20, model=None) -> dict:
    from unifiedviz.adapters import as_adapter
    from unifiedviz.probes import (
        PROBES,
        accuracy,
        activations,
        augmentation_robustness,
        cosine,
        cured_direction,
        fit_probe,
        hard_accuracy,
        localisation_maps,
        segmentation_score,
        spurious_probe,
    )
    from unifiedviz.probes.planted import planted_images, train_planted_model

    model, test_acc = model if model is not None else train_planted_model(seed=seed)
    ad = as_adapter(model)
    s = seed * 100
    concept, cmask, _, _ = planted_images(N, concept=True, spurious=0.9, split="test", seed=s + 10)
    negs, _, _, _ = planted_images(N, concept=False, spurious=False, split="test", seed=s + 11)
    false_pos, _, _, _ = planted_images(N, concept=False, spurious=True, split="test", seed=s + 12)
    hard_pos, _, _, _ = planted_images(N // 2, concept=True, spurious=False, split="test", seed=s + 13)
    hard_neg, _, _, _ = planted_images(N // 2, concept=False, spurious=True, split="test", seed=s + 14)
    P, Ng, FP, HP, HN = (activations(ad, layer, x) for x in (concept, negs, false_pos, hard_pos, hard_neg))
    tr, te = slice(0, N // 2), slice(N // 2, N)
    probes = {k: fit_probe(k, P.select(tr), Ng.select(tr), masks=cmask[tr], seed=seed) for k in PROBES.names()}
    probes["spurious"] = spurious_probe(FP.select(tr), Ng.select(tr), seed=seed)
    probes["cured"] = cured_direction(probes["logistic"], probes["spurious"], P.select(tr), Ng.select(tr))
    labels = np.r_[np.ones(N // 2), np.zeros(N // 2)]
    out: dict = {"layer": layer, "seed": seed, "model_test_accuracy": test_acc, "probes": {}}
    for name, p in probes.items():
        out["probes"][name] = {
            "accuracy": accuracy(np.r_[p.predict(P.select(te)), p.predict(Ng.select(te))], labels),
            "hard_accuracy": hard_accuracy(p.predict(HP), p.predict(HN)),
            "segmentation": segmentation_score(localisation_maps(P.select(te), p, (32, 32)), cmask[te]),
            "augmentation_robustness": augmentation_robustness(
                lambda x, p=p: p.predict(activations(ad, layer, x)), concept[te], seed=seed)["mean"],
            "cosine_to_logistic": cosine(p, probes["logistic"]),
        }
    out["tcav"] = tcav_checks(ad, layer, seed=seed, runs=runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layer", default="relu2")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out", default=None)
    ap.add_argument("--tcav-seeds", default=None, metavar="A-B",
                    help="only the TCAV checks, for data/run seeds A..B on the model of --seed")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.tcav_seeds:
        from unifiedviz.adapters import as_adapter
        from unifiedviz.probes.planted import train_planted_model

        lo, hi = (int(v) for v in a.tcav_seeds.split("-"))
        ad = as_adapter(train_planted_model(seed=a.seed)[0])
        sig = {"concept": 0, "random_set": 0}
        for sd in range(lo, hi + 1):
            r = tcav_checks(ad, a.layer, seed=sd, runs=a.runs)
            for k, t in r.items():
                sig[k] += t["significant"]
            print(f"seed {sd}: " + "  ".join(f"{k} {t['tcav']:.3f} (random {t['random_mean']:.3f}) p={t['p_value']:.3g}"
                                           for k, t in r.items()))
        n = hi - lo + 1
        print(f"significant (p < 0.05) in {n} seeds: concept {sig['concept']}/{n}, random set {sig['random_set']}/{n}")
        return
    r = run_benchmark(layer=a.layer, seed=a.seed, runs=a.runs)
    print(f"layer {r['layer']}  model test accuracy {r['model_test_accuracy']:.3f}")
    print("probe\taccuracy\thard acc\tIoU@0.5\tpointing\trobustness\tcos(logistic)")
    for k, m in r["probes"].items():
        print(f"{k}\t{m['accuracy']:.3f}\t{m['hard_accuracy']:.3f}\t{m['segmentation']['iou']:.3f}\t"
              f"{m['segmentation']['pointing_game']:.3f}\t{m['augmentation_robustness']:.3f}\t"
              f"{m['cosine_to_logistic']:.3f}")
    for k, t in r["tcav"].items():
        print(f"TCAV {k}: {t['tcav']:.3f} (random {t['random_mean']:.3f}) p={t['p_value']:.3g}")
    if a.out:
        Path(a.out).write_text(json.dumps(r, indent=1))


if __name__ == "__main__":
    main()
