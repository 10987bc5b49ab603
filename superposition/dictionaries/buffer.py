"""A bounded, shuffling buffer of activation rows streamed through the Adapter.

A layer's canonical activation becomes rows of its feature axis: conv `[B,C,H,W]` -> one row of
C per position, sequence `[B,C,L]` likewise, tokens `[B,T,D]` -> one row per patch token (prefix
tokens such as CLS left out, as everywhere in the toolkit), vector `[B,D]` -> one row per image.
The buffer never holds more than `capacity` rows (plus one model batch while it refills), so a
layer whose full activation set would not fit in memory trains all the same.
"""
from __future__ import annotations

from typing import Callable, Iterable, Iterator

import torch
from torch.utils.data import IterableDataset

from unifiedviz.errors import UnifiedVizError


def rows_of(layout, t: torch.Tensor) -> torch.Tensor:
    """Canonical activation `[B, ...]` -> `[B * positions, features]` (see module doc)."""
    check_layout(layout)
    if layout.kind in ("conv", "sequence"):
        return t.flatten(2).transpose(1, 2).reshape(-1, t.shape[1])
    if layout.kind == "tokens":
        return t[:, layout.prefix:].reshape(-1, t.shape[-1])
    return t.reshape(t.shape[0], -1)


def check_layout(layout) -> None:
    if layout.kind not in READABLE:
        raise UnifiedVizError(f"dictionaries read conv, sequence, token or vector layers, not a {layout.kind} layer: "
                              "pick another layer ('unifiedviz layers MODEL' lists them)")


#: Layout kinds whose activations split into rows of one feature axis.
READABLE = ("conv", "sequence", "tokens", "vector")


def positions_of(layout, t: torch.Tensor) -> int:
    """How many rows each image gives (1 for vectors)."""
    return rows_of(layout, t[:1]).shape[0]


class ActivationBuffer(IterableDataset):
    """Yield shuffled `[batch_size, D]` batches of a layer's rows, holding at most `capacity` rows.

    `images` is a callable returning a fresh iterable of input batches `[B, C, H, W]` (one pass
    over the data); it is called again when a pass ends, for as many passes as training needs.
    Refills happen when half the buffer has been served, so batches mix rows of many images.
    """

    def __init__(self, adapter, layer: str, images: Callable[[], Iterable[torch.Tensor]], *, capacity: int = 65536,
                 batch_size: int = 1024, seed: int = 0, device: torch.device | str = "cpu") -> None:
        if capacity < 2 * batch_size:
            raise UnifiedVizError(f"buffer capacity {capacity} must hold at least two batches ({2 * batch_size} rows)")
        self.adapter, self.layer, self.images = adapter, layer, images
        self.capacity, self.batch_size, self.seed = int(capacity), int(batch_size), seed
        self.device = torch.device(device)
        self.info = adapter.layer(layer)
        self.width = self.info.layout.feature_width(self.info.shape)
        check_layout(self.info.layout)
        self.peak_rows = 0  # the most rows held at once, for the bench and tests
        self.rows_read = 0

    def stream_rows(self) -> Iterator[torch.Tensor]:
        """Rows per model batch, forever (passes over the data repeat)."""
        with torch.no_grad(), self.adapter.session([self.layer]) as run:
            while True:
                empty = True
                for x in self.images():
                    empty = False
                    t = run(x.to(self.device))[self.layer]
                    r = rows_of(self.info.layout, t).detach().float()
                    self.rows_read += len(r)
                    yield r
                if empty:
                    raise UnifiedVizError("the data source gave no images")

    def __iter__(self) -> Iterator[torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        source = self.stream_rows()
        store = torch.empty(0, self.width)
        while True:
            pending = []
            held = len(store)
            while held < self.capacity:
                r = next(source).cpu()
                pending.append(r)
                held += len(r)
                self.peak_rows = max(self.peak_rows, held)
            store = torch.cat([store, *pending])[: self.capacity]
            store = store[torch.randperm(len(store), generator=g)]
            half = len(store) // 2
            for i in range(0, half - self.batch_size + 1, self.batch_size):
                yield store[i:i + self.batch_size]
            store = store[half:]

    def sample(self, n: int) -> torch.Tensor:
        """The first `n` rows of one fresh pass (for fitting the normalisation)."""
        got, held = [], 0
        for r in self.stream_rows():
            got.append(r.cpu())
            held += len(r)
            if held >= n:
                break
        return torch.cat(got)[:n]
