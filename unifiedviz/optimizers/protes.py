"""PROTES (Batsheva et al. 2023, "PROTES: probabilistic optimization with tensor sampling") in torch.

Per image, a distribution over the `dims`-dimensional grid of `levels` values is held as a
tensor train (TT) of rank r: p(i) proportional to |G_1[i_1] G_2[i_2] ... G_d[i_d]| (boundary
vectors of ones). Each step draws k multi-indices from it, one coordinate at a time from the
exact conditionals (right "interface" vectors make them cheap), the engine scores them in
one batched forward, and Adam takes one step up the mean log-likelihood of the k_top best,
so the distribution moves towards them. The cores start uniform in [0, 1), as in the paper.

Written from the paper and the authors' reference code (anabatsh/PROTES, used by MANGO); the
defaults are MANGO's: k = 10, k_top = 1, lr = 0.05, rank 5, and the quantized tensor train
(QTT): when the number of levels is a power of two, each coordinate is searched as its
log2(levels) binary digits (least significant first, as teneva's `ind_qtt_to_tt`), so a
512-value code is 9 two-valued dims of the train rather than one 512-valued one (`qtt=False`:
the values directly; docs/gradient_free.md measures both).

One addition to MANGO's defaults, from the same reference code (its `k_rnd`): `mutations=3` of
the k candidates per step are the image's best so far with one coordinate set to another
value, a local search beside the train's global one (the train learns from all k). It does
better on the ResNet-20 classes (10/10 at p >= 0.98 against 8/10), the real spiking net and the
synthetic argmax, and worse on a tiny spiking net whose rates move in coarse steps
(docs/gradient_free.md); `mutations=0` is MANGO's PROTES exactly.

All N images of a batch run side by side (cores `[N, d, r, levels, r]`); with per-image
seeds each image's cores, draws and mutants come from its own stream and Adam acts elementwise, so an image's search does not depend on
its batch neighbours.
"""
from __future__ import annotations

import torch

from ..errors import UnifiedVizError
from ..transforms import rand, randint
from .base import OPTIMIZERS, SearchOptimizer


@OPTIMIZERS.register("protes", help="PROTES: k=10 samples/step (3 of them mutants of the best) from a rank-5 "
                                     "tensor-train distribution moved (Adam, lr) towards the best; needs a discrete param")
class Protes(SearchOptimizer):
    def __init__(self, lr: float = 0.05, candidates: int = 10, top: int = 1, rank: int = 5,
                 qtt: bool = True, mutations: int = 3) -> None:
        if not 1 <= top <= candidates:
            raise UnifiedVizError(f"PROTES needs 1 <= top <= candidates, got top={top}, candidates={candidates}")
        if not 0 <= mutations < candidates:
            raise UnifiedVizError(f"PROTES needs 0 <= mutations < candidates, got mutations={mutations}, "
                                  f"candidates={candidates}")
        if rank < 1 or lr <= 0:
            raise UnifiedVizError(f"PROTES needs rank >= 1 and lr > 0, got rank={rank}, lr={lr}")
        self.lr, self.candidates, self.top, self.rank, self.qtt = lr, candidates, top, rank, qtt
        self.mutations = mutations

    def setup_space(self, space, generator, budget: int) -> None:
        super().setup_space(space, generator, budget)
        bits = self.levels.bit_length() - 1
        self.bits = bits if self.qtt and self.levels > 2 and self.levels == 1 << bits else 0
        # the train's own grid: dims x levels, or (dims * bits) x 2 in QTT
        self.tt_dims, self.tt_levels = (self.dims * self.bits, 2) if self.bits else (self.dims, self.levels)
        r = self.rank
        self.cores = rand((self.n, self.tt_dims, r, self.tt_levels, r), self.generator).requires_grad_()
        self.adam = torch.optim.Adam([self.cores], lr=self.lr, fused=True)  # one kernel: ~25% faster on CPU

    def _to_train(self, indices: torch.Tensor) -> torch.Tensor:
        """`[..., dims]` grid indices -> `[..., tt_dims]` indices of the train (binary digits in QTT)."""
        if not self.bits:
            return indices
        digits = (indices.unsqueeze(-1) >> torch.arange(self.bits)) & 1
        return digits.flatten(-2)

    def _from_train(self, indices: torch.Tensor) -> torch.Tensor:
        if not self.bits:
            return indices
        digits = indices.unflatten(-1, (self.dims, self.bits))
        return (digits << torch.arange(self.bits)).sum(-1)

    def _marginals(self, cores: torch.Tensor) -> torch.Tensor:
        """`[N, d, r, levels]`: core j contracted on the right with cores j+1..d-1 summed over their index
        (times the right boundary of ones), normalised; p(i_j | i_<j) is q . marginal[j] up to a constant."""
        sums = cores.sum(3).unbind(1)  # d x [N, r, r]; unbind: one gradient copy, not one per dim
        z = cores.new_ones(self.n, self.rank)
        right = [z]
        for j in range(self.tt_dims - 1, 0, -1):
            z = torch.einsum("nrq,nq->nr", sums[j], z)
            z = z / z.norm(dim=1, keepdim=True).clamp_min(1e-30)
            right.append(z)
        return torch.einsum("ndriq,ndq->ndri", cores, torch.stack(right[::-1], 1))

    def _walk(self, cores: torch.Tensor, given: torch.Tensor | None, uniform: torch.Tensor | None):
        """Go through the train's dims left to right: sample (given None) or score `given` `[N, k, tt_dims]`.

        Returns (indices `[N, k, tt_dims]`, log-probabilities `[N, k]`).
        """
        marginals = self._marginals(cores).unbind(1)
        per_dim = cores.unbind(1)
        k = given.shape[1] if given is not None else uniform.shape[1]
        rows = torch.arange(self.n).view(-1, 1)
        q = cores.new_ones(self.n, k, self.rank)
        logp = cores.new_zeros(self.n, k)
        chosen = []
        for j in range(self.tt_dims):
            p = torch.einsum("nkr,nri->nki", q, marginals[j]).abs()
            p = p / p.sum(-1, keepdim=True).clamp_min(1e-30)
            if given is None:
                cdf = p.cumsum(-1)
                i = (cdf < uniform[:, :, j : j + 1] * cdf[..., -1:]).sum(-1).clamp(max=self.tt_levels - 1)
            else:
                i = given[:, :, j]
            chosen.append(i)
            logp = logp + p.gather(2, i.unsqueeze(-1)).squeeze(-1).clamp_min(1e-30).log()
            picked = per_dim[j].permute(0, 2, 1, 3)[rows, i]  # [N, k, r, r]
            q = torch.einsum("nkr,nkrq->nkq", q, picked)
            q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-30)
        return torch.stack(chosen, -1), logp

    def propose(self) -> torch.Tensor:
        with torch.no_grad():
            uniform = rand((self.n, self.candidates - self.mutations, self.tt_dims), self.generator)
            drawn = self._from_train(self._walk(self.cores.detach(), None, uniform)[0])
        return torch.cat([self._mutants(), drawn], 1) if self.mutations else drawn

    def _mutants(self) -> torch.Tensor:
        """`[N, mutations, dims]`: each image's best so far with one random coordinate set to another value."""
        shape = (self.n, self.mutations, 1)
        where = randint(0, self.dims, shape, self.generator)
        shift = randint(1, self.levels, shape, self.generator)  # never 0: the value always changes
        mutants = self.best_indices.unsqueeze(1).repeat(1, self.mutations, 1)
        return mutants.scatter(2, where, (mutants.gather(2, where) + shift) % self.levels)

    def update(self, indices: torch.Tensor, scores: torch.Tensor) -> None:
        best = scores.argsort(dim=1, descending=True, stable=True)[:, : self.top]  # NaN arrived as -inf: never here first
        top = indices.gather(1, best.unsqueeze(-1).expand(-1, -1, self.dims))
        with torch.enable_grad():
            self.adam.zero_grad(set_to_none=True)
            _, logp = self._walk(self.cores, self._to_train(top), None)
            (-logp.mean(1).sum()).backward()  # images are independent: the sum keeps each one's gradient
            self.adam.step()
