"""The README's feature-visualisation quality table on the shipped digits models.

    python bench/digits_quality.py [--steps 128] [--threads 1]

For each model: the class visualisations' own-class probability (min / mean over the 10
classes), and how many sampled intermediate units the rendered images drive above their maximum
over all 1,797 digits (with the median ratio). The same units and settings as
tests/test_visualize_quality.py, which asserts the thresholds.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_visualize_quality import INTERMEDIATE, MODELS  # noqa: E402

import unifiedviz as uv  # noqa: E402
from unifiedviz.datasets import load_digits_images  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    images, _ = load_digits_images("all")
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.steps} steps, Fourier param, standard transforms")
    print("| model | class images: own-class p (min / mean) | units above their digits maximum (median ratio) |")
    print("| --- | --- | --- |")
    for source in MODELS:
        model = uv.load_model(source)
        classes = uv.visualize(model, "class=0:10", steps=args.steps, progress=False)
        with torch.no_grad():
            own = torch.softmax(model(classes.images), 1)[torch.arange(10), torch.arange(10)]
        units = uv.visualize(model, INTERMEDIATE[source], steps=args.steps, reference=images, progress=False)
        above = units.activations > units.reference_max
        ratio = (units.activations / units.reference_max.clamp(min=1e-12)).median()
        print(f"| {source} | {own.min():.3f} / {own.mean():.3f} | {int(above.sum())} / {len(above)} "
              f"(median {ratio:.1f}x) |")


if __name__ == "__main__":
    main()
