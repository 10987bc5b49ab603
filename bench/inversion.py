"""Network inversion of digits-cnn, measured: the must-show recognisability and the paper's applications.

    python bench/inversion.py --run runs/invert/digits [--json out.json]

`--run` is the folder of `unifiedviz invert builtin:digits-cnn --out runs/invert/digits` (the
default config, configs/inversion/digits.yaml); if it holds no finished run, that command is run
first. Then, on its samples.safetensors (100 samples per class):
- recognisability: share of samples digits-cnn (the inverted model) and digits-vit (never seen by
  the training) read as their conditioning label, overall and per class;
- diversity: mean pairwise cosine of same-class samples' digits-cnn features (dropout layer), with
  real test digits as reference;
- training-data reconstruction: each sample's nearest training digit by pixel cosine (mean, and
  share above 0.9), with test digits' nearest-training similarity as reference;
- out-of-distribution detection: score = 1 - the largest feature cosine of an input to the inverted
  samples of its predicted class (higher = more out of distribution); AUROC of test digits (in)
  against the same digits rotated by 90 degrees, and against inverted (1 - x) digits.
One CPU thread.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unifiedviz.adapters import as_adapter  # noqa: E402
from unifiedviz.datasets import load_digits_images  # noqa: E402
from unifiedviz.inversion import diversity, read_as  # noqa: E402


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float:
    """P(score of an out sample > score of an in sample), ties half (Mann-Whitney)."""
    a, b = np.asarray(in_scores)[:, None], np.asarray(out_scores)[None, :]
    return float((b > a).mean() + 0.5 * (b == a).mean())


@torch.no_grad()
def features(adapter, x: torch.Tensor, layer: str) -> torch.Tensor:
    return torch.cat([adapter.capture(x[i:i + 500], layer)[layer].flatten(1) for i in range(0, len(x), 500)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", default="runs/invert/digits")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    run = Path(args.run)
    if not (run / "metrics.json").is_file():
        subprocess.run([sys.executable, "-m", "unifiedviz", "invert", "builtin:digits-cnn", "--threads", "1",
                        "--out", str(run)], check=True)
    from safetensors.torch import load_file

    d = load_file(str(run / "samples.safetensors"))
    x, y = d["images"], d["labels"]
    meta = json.loads((run / "metrics.json").read_text())
    res: dict = {"run": str(run), "steps": meta["steps"], "samples": len(x)}
    for name in ["builtin:digits-cnn", "builtin:digits-vit"]:
        p = read_as(name, x)
        res[name] = {"accuracy": float((p == y).float().mean()),
                     "per_class": [round(float((p[y == k] == k).float().mean()), 3) for k in range(10)]}
    cnn = as_adapter("builtin:digits-cnn")
    layer = meta["feature_layer"]
    xt, yt = load_digits_images("test")
    xtr, _ = load_digits_images("train")
    res["feature_cosine_within_class"] = {"inverted": diversity(cnn, x, y, layer),
                                          "test_digits": diversity(cnn, xt, yt, layer)}
    # training-data reconstruction
    tr = F.normalize(xtr.flatten(1), dim=1)
    nn_gen = (F.normalize(x.flatten(1), dim=1) @ tr.T).max(1).values
    nn_test = (F.normalize(xt.flatten(1), dim=1) @ tr.T).max(1).values
    res["nearest_training_cosine"] = {"inverted_mean": float(nn_gen.mean()), "inverted_share_above_0.9":
                                      float((nn_gen > 0.9).float().mean()), "test_mean": float(nn_test.mean()),
                                      "test_share_above_0.9": float((nn_test > 0.9).float().mean())}
    # OOD: feature cosine to the inverted samples of the predicted class
    bank = F.normalize(features(cnn, x, layer), dim=1)

    def score(inputs: torch.Tensor) -> np.ndarray:
        f = F.normalize(features(cnn, inputs, layer), dim=1)
        pred = read_as(cnn, inputs)
        sim = f @ bank.T
        sim[pred[:, None] != y[None, :]] = -2.0
        return (1 - sim.max(1).values).numpy()

    s_in = score(xt)
    res["ood_auroc"] = {"rotated_90": auroc(s_in, score(torch.rot90(xt, 1, (2, 3)))),
                        "inverted_1_minus_x": auroc(s_in, score(1 - xt))}
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
