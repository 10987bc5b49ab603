"""Toy model of superposition: does a sparse autoencoder recover the planted features the neurons mix?

    python bench/dictionary_toy.py [--steps 1500] [--threads 1]

32 sparse features in 16 dimensions (superposition.dictionaries.toy); TopK (k=3) and ReLU+L1
SAEs with 32 latents, the settings of tests/test_dictionaries.py. Prints the mean best-match
cosine of the planted features with the decoder atoms, and with the neuron axes.
"""
from __future__ import annotations

import argparse

import torch

from superposition.dictionaries import SparseAutoencoder
from superposition.dictionaries.metrics import best_match, evaluate
from superposition.dictionaries.toy import ToyFeatures
from superposition.dictionaries.train import train_dictionary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print("| SAE | best-match cosine, atoms (mean / min) | neurons (mean) | explained variance | L0 |")
    print("| --- | --- | --- | --- | --- |")
    for kind, l1 in (("topk", 0.0), ("relu", 0.1)):
        toy = ToyFeatures(32, 16, seed=0)
        sae = SparseAutoencoder(16, expansion=2, kind=kind, k=3, l1=l1, seed=0)
        train_dictionary(sae, toy, steps=args.steps, lr=3e-3, progress=False, resample_every=250,
                         resample_after_rows=20000)
        atoms = best_match(toy.features, sae.W_dec.detach())
        neurons = best_match(toy.features, torch.eye(16))
        m = evaluate(sae, [toy.rows(2048) for _ in range(2)])
        name = "TopK k=3" if kind == "topk" else f"ReLU + L1 {l1:g}"
        print(f"| {name} | {atoms.mean():.3f} / {atoms.min():.3f} | {neurons.mean():.3f} | "
              f"{m['explained_variance']:.3f} | {m['l0']:.2f} |")


if __name__ == "__main__":
    main()
