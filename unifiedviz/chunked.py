"""Run a frozen model's forward and backward over a batch in chunks: same step, smaller working set.

On the CPU a conv net's forward+backward costs more per image at batch 32 than at batch 8 (the
activations of 32 images no longer stay in cache: `bench/am_speed.py` section (c)). The engine
therefore runs the model on chunks of at most `chunk` images: every chunk goes forward on its
own (the captured activations are concatenated, so the objective still sees the whole batch,
diversity terms included), and on the way back each chunk's backward runs on its own.

Exact because a frozen model in eval mode treats the images of a batch independently: the same
gradients, up to the float rounding a different batch size gives a conv kernel. Memory is
that of the whole batch (every chunk's graph is kept until the backward).
"""
from __future__ import annotations

from typing import Callable

import torch

Run = Callable[[torch.Tensor], dict[str, torch.Tensor]]

#: Chunk size when none is given: 8 images on the CPU (the per-image cost is flat up to 8 and grows
#: after: bench/am_speed.py (c)); on accelerators the whole batch (they want large batches).
CPU_CHUNK = 8


def default_chunk(device: torch.device) -> int:
    return CPU_CHUNK if device.type == "cpu" else 0


def chunked(run: Run, chunk: int) -> Run:
    """`run` as a function of the whole batch that calls the model on at most `chunk` images at a time
    (0: never split). Splits only when `x` needs a gradient and is larger than one chunk."""
    if chunk <= 0:
        return run

    whole_only = False  # set once a capture proves not batch-first: later steps skip the wasted chunk

    def run_in_chunks(x: torch.Tensor) -> dict[str, torch.Tensor]:
        nonlocal whole_only
        if whole_only or len(x) <= chunk or not x.requires_grad or not torch.is_grad_enabled():
            return run(x)
        box: dict = {}
        try:
            outputs = _Chunks.apply(run, chunk, box, x)
        except _NotBatchFirst:  # a capture that folds something into the batch axis: run it whole
            whole_only = True
            return run(x)
        return dict(zip(box["names"], outputs))

    return run_in_chunks


class _NotBatchFirst(Exception):
    pass


class _Chunks(torch.autograd.Function):
    """forward: `run` on each chunk of `x` under its own graph; backward: each chunk's graph in turn."""

    @staticmethod
    def forward(ctx, run: Run, chunk: int, box: dict, x: torch.Tensor):
        pieces = []
        with torch.enable_grad():
            for part in x.split(chunk):
                leaf = part.detach().requires_grad_()
                acts = run(leaf)
                if not all(isinstance(a, torch.Tensor) and a.shape[:1] == leaf.shape[:1] for a in acts.values()):
                    raise _NotBatchFirst
                pieces.append((leaf, acts))
        names = list(pieces[0][1])
        box["names"] = names
        ctx.pieces = [(leaf, [acts[n] for n in names]) for leaf, acts in pieces]
        return tuple(torch.cat([acts[n] for _, acts in pieces]).detach() for n in names)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads):
        out, start = [], 0
        for leaf, acts in ctx.pieces:
            n = len(leaf)
            pairs = [(a, g[start:start + n]) for a, g in zip(acts, grads) if g is not None and a.requires_grad]
            if pairs:
                torch.autograd.backward([a for a, _ in pairs], [g for _, g in pairs])
            out.append(leaf.grad if leaf.grad is not None else torch.zeros_like(leaf))
            start += n
        ctx.pieces = None  # free the chunks' graphs
        return None, None, None, torch.cat(out)
