"""TCAV time and scores: unifiedviz.probes.tcav against Captum's TCAV (captum.concept).

Same model (the planted-concept CNN of scripts/probes_benchmark.py, trained once), same layer
(`relu2`), same target inputs (100 images, class "patch"), and the same concept / negative /
random sets: run r is the concept set vs negatives N_r and random set R_r vs N_r, both drawn by
our `tcav` design, handed to Captum as experimental sets [[C, N_r], ..., [R_r, N_r], ...].

Captum is given two classifiers:
  * `pooled-logistic`: scikit-learn LogisticRegression on the position-averaged features (our
    `logistic` CAV), broadcast back over positions. Captum's directional derivative is then a
    positive multiple of ours, so its scores must equal ours exactly (a correctness check).
  * `default`: Captum's own DefaultClassifier (SGD on flattened activations, a 2/3 train split).

Timing is interleaved (ours, Captum, ours, Captum, ...) on one thread; each Captum call gets a
fresh save directory (Captum caches activations and CAVs on disk). Ratio = Captum / ours per pair.

    python bench/probes.py [--threads 1] [--runs 20] [--repeats 4]

Captum is a dev-only reference (`pip install captum`); the package never imports it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch


def sets(seed: int = 0, runs: int = 10, m: int = 50):
    from unifiedviz.probes.planted import planted_images

    s = seed * 100
    concept, _, _, _ = planted_images(200, concept=True, spurious=0.9, split="test", seed=s + 10)
    negs, _, _, _ = planted_images(200, concept=False, spurious=False, split="test", seed=s + 11)
    targets, _, _, _ = planted_images(100, concept=True, spurious=0.5, split="test", seed=s + 15)
    g = np.random.default_rng(seed)  # the draws of unifiedviz.probes.tcav (random_pool = negatives)
    draws = []
    for _ in range(runs):
        perm = g.permutation(len(negs))
        draws.append((perm[:m], perm[m:2 * m]))
    return concept[:m], negs, targets, draws


def pooled_logistic_classifier(seed: int = 0):
    from captum.concept._utils.classifier import Classifier
    from sklearn.linear_model import LogisticRegression

    class PooledLogistic(Classifier):
        """Logistic regression on channel means of [C, H, W] activations, broadcast back to C*H*W."""

        def __init__(self, channels: int) -> None:
            self.c = channels

        def train_and_eval(self, dataloader, **kwargs):
            xs, ys = zip(*dataloader)
            x, y = torch.cat(xs), torch.cat(ys)
            pooled = x.reshape(len(x), self.c, -1).mean(-1).double().numpy()
            self.hw = x.shape[1] // self.c
            self.clf = LogisticRegression(C=1.0, max_iter=2000, random_state=seed).fit(pooled, y.numpy())
            return {"accs": torch.tensor(self.clf.score(pooled, y.numpy()))}

        def weights(self):
            w = torch.as_tensor(self.clf.coef_[0], dtype=torch.float32)
            full = w[:, None].expand(self.c, self.hw).reshape(-1) / self.hw
            return torch.stack([-full, full])

        def classes(self):
            return [int(c) for c in self.clf.classes_]

    return PooledLogistic


def captum_tcav(model, layer, targets, target, concept, negs, draws, classifier=None):
    from captum.concept import TCAV, Concept

    m = len(draws[0][0])

    def loader(x):
        return torch.utils.data.DataLoader(x, batch_size=len(x))

    c = Concept(0, "concept", loader(concept))
    exps = []
    for r, (n_idx, r_idx) in enumerate(draws):
        n = Concept(1 + r, f"neg{r}", loader(negs[torch.as_tensor(n_idx)]))
        rr = Concept(1 + len(draws) + r, f"rand{r}", loader(negs[torch.as_tensor(r_idx)]))
        exps.append((n, rr))
    sets_ = [[c, n] for n, _ in exps] + [[rr, n] for n, rr in exps]
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {} if classifier is None else {"classifier": classifier}
        tc = TCAV(model, [layer], save_path=d + "/", **kw)
        out = tc.interpret(targets, experimental_sets=sets_, target=target)
    runs = len(draws)
    score = [float(out[f"{s[0].id}-{s[1].id}"][layer]["sign_count"][0]) for s in sets_]
    assert m > 1
    return score[:runs], score[runs:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from unifiedviz.adapters import as_adapter
    from unifiedviz.probes import tcav
    from unifiedviz.probes.planted import train_planted_model
    from unifiedviz.probes.tcav import welch_p

    model, acc = train_planted_model(seed=0)
    ad = as_adapter(model)
    concept, negs, targets, draws = sets(a.seed, a.runs)
    layer, clayer = "relu2", "net.relu2"
    channels = 16
    Pooled = pooled_logistic_classifier(a.seed)

    ours_t, cap_t, cap_def_t = [], [], []
    for rep in range(a.repeats):
        t0 = time.perf_counter()
        ours = tcav(ad, layer, targets, 1, concept, negs, runs=a.runs, set_size=len(concept), seed=a.seed)
        ours_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        cs, cr = captum_tcav(model, clayer, targets, 1, concept, negs, draws, Pooled(channels))
        cap_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ds, dr = captum_tcav(model, clayer, targets, 1, concept, negs, draws)
        cap_def_t.append(time.perf_counter() - t0)

    med = np.median
    print(f"planted CNN (test accuracy {acc:.3f}), layer relu2, 100 target images, concept 50 vs 50 negatives,"
          f" {a.runs} runs, threads {a.threads}, {a.repeats} interleaved repeats")
    print("impl\tTCAV\trandom\tp\tmax |score diff| vs ours\tmedian time s")
    print(f"unifiedviz\t{ours.mean:.3f}\t{np.mean(ours.random_scores):.3f}\t{ours.p_value:.3g}\t-\t{med(ours_t):.3f}")
    for name, (s, r), ts in (("captum pooled-logistic", (cs, cr), cap_t), ("captum default", (ds, dr), cap_def_t)):
        diff = max(np.max(np.abs(np.subtract(s, ours.scores))), np.max(np.abs(np.subtract(r, ours.random_scores))))
        ratios = [c / o for c, o in zip(ts, ours_t)]
        print(f"{name}\t{np.mean(s):.3f}\t{np.mean(r):.3f}\t{welch_p(s, r):.3g}\t{diff:.3f}\t{med(ts):.3f}"
              f"  (captum/ours {med(ratios):.2f}x, range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
