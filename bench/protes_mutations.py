"""PROTES with and without its default mutations on the tiny spiking net of tests/test_spiking.py.

    OMP_NUM_THREADS=1 .venv/bin/python bench/protes_mutations.py [--steps 20 30 50] [--seeds 0 1 2]

Class 0's output spike rate (multiples of 1/6: the net runs 6 time steps) after `steps` PROTES
steps of 10 queries over 6x6 grey levels (`--param lowres`, low=6), no transforms, as the test
does. A case where the local search of the mutations is behind: a one-pixel change rarely moves
a rate quantised in sixths, and only 7 of the 10 candidates then come from the train.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from test_spiking import TinySNN  # noqa: E402

from unifiedviz.adapters import Adapter  # noqa: E402
from unifiedviz.models import InputSpec, load_model  # noqa: E402
from unifiedviz.optimizers import Protes  # noqa: E402
from unifiedviz.visualize import visualize  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[20, 30, 50])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    torch.set_num_threads(1)
    tiny = Adapter(load_model(TinySNN().eval(), spec=InputSpec((12, 12), channels=1)))
    print("| mutations | queries | " + " | ".join(f"seed {s}" for s in args.seeds) + " |")
    print("|---|---|" + "---|" * len(args.seeds))
    for mutations in (0, 3):
        for steps in args.steps:
            rates = [float(visualize(tiny, "class=0", param="lowres", optimizer=Protes(mutations=mutations),
                                     steps=steps, transforms=None, progress=False, param_options={"low": 6},
                                     seed=seed).activations[0]) for seed in args.seeds]
            print(f"| {mutations} | {steps * 10} | " + " | ".join(f"{r:.3f}" for r in rates) + " |", flush=True)


if __name__ == "__main__":
    main()
