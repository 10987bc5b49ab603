"""Sequence Dreaming on the built-in `gunpoint-cnn`: the numbers in docs/sequences.md.

    python bench/sequences.py [--steps 300] [--starts 4] [--json out.json]

For each regulariser setting: every class x `starts` seeded starts, centred-class AM; reports
the lowest class probability, the mean high-frequency energy (share of power above 0.1
cycles/step) and its factor against the unregularised run, and the mean distance (data units,
z-values) from each dreamed sequence to the nearest real training sequence of its class,
Euclidean and DTW, next to the real-to-real baseline. Then border AM at 0.5/0.5 and 0.3/0.7.
One thread, deterministic seeds; about a minute on one core.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unifiedviz.models.builtin import build_builtin
from unifiedviz.sequences.data import from_unit_range, model_sequences
from unifiedviz.sequences.dream import border_dream, dream
from unifiedviz.sequences.measures import hf_energy, nearest_real, real_to_real

SETTINGS = {
    "unregularised": {},
    "smoothing 0.2": {"smoothing": 0.2},
    "gaussian sigma 2 (w 1)": {"gaussian": 1.0, "sigma": 2.0},
    "l2 0.5 + tv 2": {"l2": 0.5, "tv": 2.0},
    "realism k=3 (w 2)": {"realism": 2.0, "k": 3},
    "realism k=1 (w 20)": {"realism": 20.0},
    "smoothing 0.2 + realism (w 20)": {"smoothing": 0.2, "realism": 20.0},
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--starts", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = build_builtin("gunpoint-cnn")
    train = model_sequences(model.source, model.spec, "train")
    test = model_sequences(model.source, model.spec, "test")
    with torch.no_grad():
        acc = (model(test.x).argmax(1) == test.y).float().mean().item()
    real = from_unit_range(train.x, model.spec)
    out = {"test_accuracy": acc, "test_cases": len(test), "steps": args.steps, "starts": args.starts,
           "real_to_real": {"euclidean": real_to_real(real, train.y).mean().item(),
                            "dtw": real_to_real(real, train.y, "dtw").mean().item()},
           "runs": {}, "border": {}}
    print(f"gunpoint-cnn test accuracy {acc:.4f} on {len(test)} sequences")
    print(f"real-to-real nearest same-class distance: euclidean {out['real_to_real']['euclidean']:.3f}, "
          f"dtw {out['real_to_real']['dtw']:.3f}")
    print("| setting | min p(class) | HF energy | HF factor vs unreg. | nearest real (eucl.) | nearest real (DTW) | s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    base_hf = None
    for name, options in SETTINGS.items():
        start = time.perf_counter()
        d = dream(model, starts=args.starts, steps=args.steps, real=train, **options)
        p = d.probabilities[torch.arange(len(d.classes)), torch.tensor(d.classes)]
        hf = hf_energy(d.sequences).mean().item()
        base_hf = hf if base_hf is None else base_hf
        x = from_unit_range(d.sequences, model.spec)
        eu = nearest_real(x, real, train.y, d.classes).mean().item()
        dt = nearest_real(x, real, train.y, d.classes, "dtw").mean().item()
        seconds = time.perf_counter() - start
        out["runs"][name] = {"min_p": p.min().item(), "hf_energy": hf, "hf_factor": base_hf / hf,
                             "nearest_euclidean": eu, "nearest_dtw": dt, "seconds": seconds}
        print(f"| {name} | {p.min().item():.4f} | {hf:.3f} | {base_hf / hf:.1f}x | {eu:.2f} | {dt:.2f} | {seconds:.1f} |")
    for target in (0.5, 0.3):
        b = border_dream(model, pairs=[(0, 1)], target=target, starts=args.starts, steps=args.steps)
        err = (b.probabilities - b.targets).abs().max().item()
        out["border"][f"{target:g}/{1 - target:g}"] = {"max_abs_error": err, "p0": b.probabilities[:, 0].tolist()}
        print(f"border {target:g}/{1 - target:g}: p(class 0) = {[round(v, 3) for v in b.probabilities[:, 0].tolist()]}, "
              f"max |p - target| = {err:.4f}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
