"""Interleaved timing for bench scripts.

This VM's speed drifts from second to second (other jobs share its 2 cores), so never compare
numbers taken minutes apart. `PairedClock` interleaves at step level: after every optimisation
step it runs one step of each reference ("yardstick", e.g. a bare forward+backward on a copy of
the model) and times it, so each step has a reference measured seconds later. Ratios are
medians of those per-step ratios; two optimisers are compared through their per-round
normalised times (`rounds_ratio`).
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


class PairedClock:
    """A per-step hook (`render(callback=clock)`, or called from an optimiser's step).

    `gaps` are the wall times of the optimisation steps (between consecutive calls, minus the
    references); `refs[name]` the reference step run right after each of them.
    """

    def __init__(self, refs: dict[str, Callable[[], object]] | None = None,
                 sync: Callable[[], None] = lambda: None) -> None:
        self.ref_fns = refs or {}
        self.sync = sync  # e.g. torch.cuda.synchronize: GPU work must finish inside its own timing
        self.gaps: list[float] = []
        self.refs: dict[str, list[float]] = {k: [] for k in self.ref_fns}
        self.last = time.perf_counter()

    def __call__(self, info=None) -> None:
        self.sync()
        self.gaps.append(time.perf_counter() - self.last)
        for name, fn in self.ref_fns.items():
            t0 = time.perf_counter()
            fn()
            self.sync()
            self.refs[name].append(time.perf_counter() - t0)
        self.last = time.perf_counter()

    def ratios(self, ref: str, skip: int) -> list[float]:
        """Per-step ratio step/reference, dropping the first `skip` steps (>= 1 drops setup)."""
        return [a / b for a, b in zip(self.gaps[skip:], self.refs[ref][skip:])]

    def times(self, skip: int) -> list[float]:
        return self.gaps[skip:]


def med(xs) -> float:
    return statistics.median(xs)


def pooled(rounds: list[list[float]]) -> list[float]:
    return [x for r in rounds for x in r]


def rounds_ratio(a: list[list[float]], b: list[list[float]]) -> list[float]:
    """Per-round ratio of median normalised step times, case a over case b."""
    return [med(x) / med(y) for x, y in zip(a, b)]


def describe(ratios: list[float]) -> str:
    """'1.07x  (n=20, quartiles 1.02-1.11)' for a list of ratios."""
    if len(ratios) < 2:
        return f"{ratios[0]:5.2f}x  (n=1)"
    q = statistics.quantiles(ratios, n=4)
    return f"{med(ratios):5.2f}x  (n={len(ratios)}, quartiles {q[0]:.2f}-{q[2]:.2f})"
