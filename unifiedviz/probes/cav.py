"""Concept activation vectors: linear probes on a layer's canonical activations.

A probe is one direction `w` in the layer's feature space (channels of a conv map, the model
width of a token layer, the width of a vector layer) and a bias. It scores an image either on
the features averaged over positions (`pool="mean"`, the usual CAV), or per position and then
max-pooled (`pool="max"`: segmentation and translation-invariant probes). The direction is what
`LAYER:direction=cav.npy` reads, so a saved CAV renders and attacks like any unit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import UnifiedVizError
from ..registry import Registry

#: Probe kinds: name -> fit(pos: Acts, neg: Acts, *, masks, seed) -> Probe.
PROBES: Registry = Registry("probe kind")


@dataclass
class Acts:
    """A layer's canonical activations for N images, with the layout that reads them."""

    t: torch.Tensor  # canonical [N, ...]
    layout: object
    layer: str = ""

    def __len__(self) -> int:
        return len(self.t)

    def pooled(self) -> np.ndarray:
        """[N, F]: each feature's mean over positions (what `channel=` and `direction=` read)."""
        return self.layout.unit_means(self.t).reshape(len(self.t), -1).double().numpy()

    def has_positions(self) -> bool:
        return self.layout.kind in ("conv", "tokens", "sequence")

    def positions(self) -> torch.Tensor:
        """[N, P, F]: the feature vector at every spatial position (prefix tokens dropped)."""
        kind = self.layout.kind
        if kind == "conv":
            return self.t.flatten(2).transpose(1, 2)
        if kind == "tokens":
            return self.t[:, getattr(self.layout, "prefix", 0):]
        if kind == "sequence":
            return self.t.transpose(1, 2)
        raise UnifiedVizError(
            f"layer {self.layer!r} is a {kind} layer with no spatial axes: segmentation and translation-invariant "
            "probes need a conv or token layer (pick an earlier layer)")

    def grid(self) -> tuple[int, ...]:
        """The positions' spatial shape: (H, W) for conv, a square (or (1, T)) grid for tokens."""
        kind = self.layout.kind
        if kind == "conv":
            return tuple(self.t.shape[2:])
        n = self.positions().shape[1]
        side = math.isqrt(n)
        return (side, side) if side * side == n else (1, n)

    def position_map(self, v: torch.Tensor) -> torch.Tensor:
        """[N, *grid]: every position's features projected on `v`."""
        p = self.positions().double() @ v.double()
        return p.reshape(len(self.t), *self.grid())

    def select(self, idx) -> Acts:
        return Acts(self.t[idx], self.layout, self.layer)


@torch.no_grad()
def activations(adapter, layer: str, images: torch.Tensor, *, batch: int = 128) -> Acts:
    """`layer`'s canonical activations for `images` ([N, C, H, W] in [0, 1]), detached, on the CPU."""
    info = adapter.layer(layer)
    parts = [adapter.capture(images[i:i + batch], info.name)[info.name].detach().float().cpu()
             for i in range(0, len(images), batch)]
    return Acts(torch.cat(parts), info.layout, info.name)


@dataclass
class Probe:
    """A linear concept probe: `direction` (unit length, [F]), `bias`, and how images are scored."""

    kind: str
    direction: np.ndarray
    bias: float = 0.0
    pool: str = "mean"  # "mean": score pooled features; "max": max over per-position scores
    info: dict = field(default_factory=dict)

    def scores(self, acts: Acts) -> np.ndarray:
        """[N]: the probe's logit per image (> 0: the concept is predicted present)."""
        v = torch.as_tensor(self.direction, dtype=torch.float64)
        if self.pool == "max":
            return (acts.position_map(v).flatten(1).amax(1) + self.bias).numpy()
        return acts.pooled() @ self.direction.astype(np.float64) + self.bias

    def predict(self, acts: Acts) -> np.ndarray:
        return (self.scores(acts) > 0).astype(np.int64)

    def save(self, path: str | Path) -> Path:
        """The direction as a 1-D float32 .npy (what `LAYER:direction=FILE.npy` reads)."""
        path = Path(path)
        np.save(path, self.direction.astype(np.float32))
        return path


def _unit(w: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, float]:
    w = np.asarray(w, dtype=np.float64).ravel()
    n = float(np.linalg.norm(w))
    if n == 0:
        raise UnifiedVizError("the probe found no direction (all weights zero): give more varied concept images")
    return w / n, scale / n


def _check_sets(pos: Acts, neg: Acts, minimum: int = 2) -> None:
    for name, a in (("concept", pos), ("negative", neg)):
        if len(a) < minimum:
            raise UnifiedVizError(f"the {name} set has {len(a)} image(s): give at least {minimum}")


def _labels(pos: Acts, neg: Acts) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([pos.pooled(), neg.pooled()])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    return x, y


def fit_probe(kind: str, pos: Acts, neg: Acts, *, masks: torch.Tensor | None = None, seed: int = 0) -> Probe:
    """Fit probe `kind` (a `PROBES` name) separating `pos` (concept) from `neg` activations."""
    fit = PROBES.get(kind)
    _check_sets(pos, neg)
    probe = fit(pos, neg, masks=masks, seed=seed)
    probe.kind = kind
    return probe


@PROBES.register("logistic", help="logistic regression on position-averaged features (the TCAV CAV)")
def fit_logistic(pos: Acts, neg: Acts, *, masks=None, seed: int = 0, C: float = 1.0) -> Probe:
    from sklearn.linear_model import LogisticRegression

    x, y = _labels(pos, neg)
    clf = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(x, y)
    w, s = _unit(clf.coef_[0])
    return Probe("logistic", w, float(clf.intercept_[0]) * s)


@PROBES.register("svm", help="linear SVM on position-averaged features (Kim et al.'s default)")
def fit_svm(pos: Acts, neg: Acts, *, masks=None, seed: int = 0, C: float = 1.0) -> Probe:
    from sklearn.svm import LinearSVC

    x, y = _labels(pos, neg)
    clf = LinearSVC(C=C, max_iter=20000, random_state=seed).fit(x, y)
    w, s = _unit(clf.coef_[0])
    return Probe("svm", w, float(clf.intercept_[0]) * s)


@PROBES.register("pattern", help="pattern CAV: the class-mean difference (Cov(x, y) for binary labels)")
def fit_pattern(pos: Acts, neg: Acts, *, masks=None, seed: int = 0) -> Probe:
    mp, mn = pos.pooled().mean(0), neg.pooled().mean(0)
    w, _ = _unit(mp - mn)
    # bias: the midpoint of the two class means along w
    return Probe("pattern", w, -float((mp + mn) @ w) / 2)


def _position_labels(pos: Acts, neg: Acts, masks: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-position features and labels: concept-mask positions of `pos` vs every other position."""
    import torch.nn.functional as F

    if masks is None:
        raise UnifiedVizError("a segmentation probe needs concept masks: give --masks DIR (same-named mask files)")
    if len(masks) != len(pos):
        raise UnifiedVizError(f"{len(masks)} masks for {len(pos)} concept images: give one mask per concept image")
    grid = pos.grid()
    m = masks.float()
    m = m.unsqueeze(1) if m.dim() == 3 else m[:, :1]
    small = F.adaptive_avg_pool2d(m, grid).flatten(1) >= 0.5 if len(grid) == 2 else None
    if small is None or not bool(small.any()):
        raise UnifiedVizError(f"the masks cover no position of the {grid} grid at this layer: use bigger masks "
                              "or an earlier layer")
    xp, xn = pos.positions(), neg.positions()
    x = torch.cat([xp.reshape(-1, xp.shape[-1]), xn.reshape(-1, xn.shape[-1])]).double().numpy()
    y = np.concatenate([small.reshape(-1).numpy().astype(float), np.zeros(xn.shape[0] * xn.shape[1])])
    return x, y


@PROBES.register("segmentation", help="per-position logistic probe trained against concept masks")
def fit_segmentation(pos: Acts, neg: Acts, *, masks=None, seed: int = 0, C: float = 1.0) -> Probe:
    from sklearn.linear_model import LogisticRegression

    pos.positions()  # a layer with no spatial axes fails here, before the masks are read
    x, y = _position_labels(pos, neg, masks)
    clf = LogisticRegression(C=C, max_iter=2000, class_weight="balanced", random_state=seed).fit(x, y)
    w, s = _unit(clf.coef_[0])
    return Probe("segmentation", w, float(clf.intercept_[0]) * s, pool="max")


def _fit_pooled(pos: Acts, neg: Acts, how: str, seed: int, steps: int = 300, l2: float = 1e-3) -> Probe:
    """One linear probe applied at every position, pooled by `how`, trained on image labels."""
    xp, xn = pos.positions(), neg.positions()
    x = torch.cat([xp, xn]).double()
    y = torch.cat([torch.ones(len(xp)), torch.zeros(len(xn))]).double()
    scale = float(x.abs().mean()) or 1.0
    x = x / scale
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(x.shape[-1], generator=g, dtype=torch.float64) * 0.01).requires_grad_(True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    with torch.enable_grad():
        for _ in range(steps):
            s = x @ w + b  # [N, P]
            z = s.amax(1) if how == "max" else s.mean(1)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y) + l2 * (w * w).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    wn, k = _unit(w.detach().numpy())
    return Probe(f"ti-{how}", wn, float(b.detach()) * k, pool=how, info={"feature_scale": scale})


@PROBES.register("ti-max", help="translation-invariant: one per-position probe, max-pooled, image labels")
def fit_ti_max(pos: Acts, neg: Acts, *, masks=None, seed: int = 0) -> Probe:
    p = _fit_pooled(pos, neg, "max", seed)
    p.bias = p.bias * p.info["feature_scale"]  # back to unscaled activations
    return p


@PROBES.register("ti-mean", help="translation-invariant: one per-position probe, mean-pooled, image labels")
def fit_ti_mean(pos: Acts, neg: Acts, *, masks=None, seed: int = 0) -> Probe:
    p = _fit_pooled(pos, neg, "mean", seed)
    p.bias = p.bias * p.info["feature_scale"]
    return p


def spurious_probe(false_pos: Acts, true_neg: Acts, *, kind: str = "logistic", seed: int = 0) -> Probe:
    """The diagnostic "false-positive" CAV: images that carry the spurious feature but not the
    concept, against true negatives. Accurate on correlated data, not aligned with the concept."""
    p = fit_probe(kind, false_pos, true_neg, seed=seed)
    p.kind = f"spurious-{kind}"
    return p


def cured_direction(cav: Probe, spurious: Probe, pos: Acts | None = None, neg: Acts | None = None) -> Probe:
    """`cav` with its component along `spurious` removed (unit length), with `cav`'s pooling; the bias
    is refit to the midpoint of the two class means along it when `pos` and `neg` are given."""
    v = np.asarray(cav.direction, dtype=np.float64)
    s = np.asarray(spurious.direction, dtype=np.float64)
    s = s / np.linalg.norm(s)
    w, k = _unit(v - (v @ s) * s)
    out = Probe(f"cured-{cav.kind}", w, cav.bias * k, pool=cav.pool)
    if pos is not None and neg is not None:
        out.bias = 0.0
        out.bias = -float(out.scores(pos).mean() + out.scores(neg).mean()) / 2
    return out


__all__ = ["PROBES", "Acts", "Probe", "activations", "cured_direction", "fit_probe", "spurious_probe"]
