"""Global sensitivity: Sobol first-order (S1) and total (ST) indices with confidence intervals.

SALib does the sampling (Saltelli's scheme on a scrambled Sobol sequence, `N * (D + 2)` points
for D variables or groups) and the analysis (bootstrap confidence intervals); this module
evaluates the model in batches.

- `sobol_indices(f, ...)`: any function of `[n, D]` inputs (Ishigami, a tabular model's unit).
- `image_sobol(model, x, unit, patch=...)`: each square patch of an image is one variable, a
  mask value m in [0, 1] that blends the patch between a baseline (0: black) and the image;
  ST of a patch is the share of the unit's variance over random maskings that involves it.
  The `sobol` explainer blends towards mid-grey (0.5): towards black, patches without ink
  on the black-background digits get ST = 0 for any weights, and the map mostly shows where
  the ink is (randomisation check: Spearman 0.82 / 0.62 on digits-cnn / digits-vit, fails;
  with grey 0.23 / 0.31, passes; tests/test_explain.py).
- `tabular_sobol(model, unit)`: a `[B, F]` model's unit over its inputs' box (uniform [0, 1]
  per feature by default), optionally with groups of features.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..adapters import as_adapter
from ..errors import UnifiedVizError
from .base import EXPLAINERS, is_vector, unit_scorer


@dataclass
class SobolResult:
    """Indices per variable (or group) in `names`; `*_conf` are half-widths of the `conf_level` CI."""

    names: list[str]
    S1: np.ndarray
    S1_conf: np.ndarray
    ST: np.ndarray
    ST_conf: np.ndarray
    evaluations: int
    conf_level: float = 0.95
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"names": self.names, "S1": self.S1.tolist(), "S1_conf": self.S1_conf.tolist(),
                "ST": self.ST.tolist(), "ST_conf": self.ST_conf.tolist(), "evaluations": self.evaluations,
                "conf_level": self.conf_level}

    def ranking(self) -> list[str]:
        """Names by total index, largest first."""
        return [self.names[i] for i in np.argsort(-self.ST, kind="stable")]


def sobol_indices(
    f: Callable[[np.ndarray], np.ndarray],
    bounds: Sequence[Sequence[float]],
    *,
    names: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    samples: int = 1024,
    seed: int = 0,
    batch_size: int = 4096,
    num_resamples: int = 200,
    conf_level: float = 0.95,
) -> SobolResult:
    """S1 and ST of `f` ([n, D] -> [n]) for inputs uniform in `bounds` (one [lo, hi] per variable).

    `groups` (one name per variable) makes the indices per group. `samples` is SALib's N (a
    power of two): `f` is evaluated `N * (D + 2)` times (D: variables or groups), in batches.
    """
    from SALib.analyze import sobol as analyze
    from SALib.sample import sobol as sample

    d = len(bounds)
    if d < 2:
        raise UnifiedVizError(f"Sobol indices need at least 2 variables, got {d}")
    if samples < 2 or samples & (samples - 1):
        raise UnifiedVizError(f"Sobol samples must be a power of two (>= 2), got {samples}")
    names = list(names) if names is not None else [f"x{i}" for i in range(d)]
    problem = {"num_vars": d, "names": names, "bounds": [list(map(float, b)) for b in bounds]}
    if groups is not None:
        if len(groups) != d:
            raise UnifiedVizError(f"groups has {len(groups)} entries for {d} variables: give one group name per variable")
        problem["groups"] = list(groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SALib warns about things it then handles
        X = sample.sample(problem, samples, calc_second_order=False, seed=seed)
    Y = np.concatenate([np.asarray(f(X[i:i + batch_size]), dtype=np.float64).reshape(-1)
                        for i in range(0, len(X), batch_size)])
    if len(Y) != len(X):
        raise UnifiedVizError(f"the function returned {len(Y)} values for {len(X)} inputs: return one per row")
    if not np.isfinite(Y).all():
        raise UnifiedVizError("the function returned NaN or inf values; Sobol indices need finite outputs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Si = analyze.analyze(problem, Y, calc_second_order=False, num_resamples=num_resamples,
                             conf_level=conf_level, seed=seed)
    out_names = list(dict.fromkeys(groups)) if groups is not None else names
    return SobolResult(out_names, np.asarray(Si["S1"]), np.asarray(Si["S1_conf"]), np.asarray(Si["ST"]),
                       np.asarray(Si["ST_conf"]), len(X), conf_level)


def _model_fn(model, unit: str, make_input: Callable[[torch.Tensor], torch.Tensor]):
    """numpy [n, D] -> unit values [n], through one open session."""
    def f(X: np.ndarray) -> np.ndarray:
        with unit_scorer(model, unit) as score, torch.no_grad():
            v = torch.as_tensor(X, dtype=torch.float32)
            return score(make_input(v))[0].double().cpu().numpy()
    return f


def default_patch(adapter) -> int:
    """A patch size giving about an 8 x 8 grid."""
    return max(1, min(adapter.model.spec.size) // 8)


def image_sobol(model, x: torch.Tensor, unit: str, *, patch: int | None = None, samples: int = 64,
                baseline: float = 0.0, seed: int = 0, batch_size: int = 256) -> list[SobolResult]:
    """Sobol indices of `unit` over the square patches of each image (`x` `[B, C, H, W]`).

    Each result's `extra["grid"]` is (rows, cols) of the patch grid; names are `r{row}c{col}`.
    """
    adapter = as_adapter(model)
    if is_vector(adapter):
        raise UnifiedVizError("image_sobol needs an image model; use tabular_sobol for [B, F] models")
    patch = patch or default_patch(adapter)
    h, w = x.shape[-2:]
    rows, cols = -(-h // patch), -(-w // patch)
    if rows * cols < 2:
        raise UnifiedVizError(f"patch {patch} leaves fewer than 2 patches on a {h}x{w} image: use a smaller --patch")
    names = [f"r{r}c{c}" for r in range(rows) for c in range(cols)]
    dev = x.device
    results = []
    for img in x:
        def blend(m: torch.Tensor, img=img) -> torch.Tensor:
            mask = m.to(dev).view(-1, 1, rows, cols)
            mask = mask.repeat_interleave(patch, 2).repeat_interleave(patch, 3)[..., :h, :w]
            return baseline + mask * (img.unsqueeze(0) - baseline)

        res = sobol_indices(_model_fn(adapter, unit, blend), [[0.0, 1.0]] * len(names), names=names,
                            samples=samples, seed=seed, batch_size=batch_size)
        res.extra.update(grid=(rows, cols), patch=patch)
        results.append(res)
    return results


def tabular_sobol(model, unit: str, *, bounds: Sequence[Sequence[float]] | None = None,
                  names: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                  samples: int = 1024, seed: int = 0, batch_size: int = 4096) -> SobolResult:
    """Sobol indices of `unit` of a `[B, F]` model over its F inputs (uniform in `bounds`, default [0, 1])."""
    adapter = as_adapter(model)
    if not is_vector(adapter):
        raise UnifiedVizError("tabular_sobol needs a model taking [B, F] vectors; use image_sobol for images")
    nf = adapter.model.spec.channels
    bounds = bounds or [[0.0, 1.0]] * nf
    return sobol_indices(_model_fn(adapter, unit, lambda v: v.to(next(adapter.model.parameters()).device)),
                         bounds, names=names, groups=groups, samples=samples, seed=seed, batch_size=batch_size)


@EXPLAINERS.register("sobol", help="total Sobol index of each image patch (or input feature)")
def sobol_map(adapter, unit: str, x: torch.Tensor, *, patch: int | None = None, samples: int = 32,
              seed: int = 0, baseline: float = 0.5, batch_size: int = 256) -> torch.Tensor:
    if is_vector(adapter):
        st = torch.as_tensor(tabular_sobol(adapter, unit, samples=max(samples, 256), seed=seed).ST, dtype=x.dtype)
        return st.unsqueeze(0).expand(len(x), -1).clone()
    maps = []
    for res in image_sobol(adapter, x, unit, patch=patch, samples=samples, baseline=baseline, seed=seed,
                           batch_size=batch_size):
        rows, cols = res.extra["grid"]
        p = res.extra["patch"]
        grid = torch.as_tensor(res.ST, dtype=x.dtype).view(1, 1, rows, cols)
        maps.append(grid.repeat_interleave(p, 2).repeat_interleave(p, 3)[0, 0, :x.shape[-2], :x.shape[-1]])
    return torch.stack(maps).to(x.device)


sobol_map.cli_options = {"samples": "sobol_samples"}  # `explain --sobol-samples N`
sobol_map.gradient_free = True  # forward passes only
