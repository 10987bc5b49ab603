"""Sparse-dictionary training: bounded memory on a large layer, and Lightning against a bare loop.

    python bench/dictionary.py [--threads 1] [--rounds 5] [--steps 200] [--sizes 1000 4000]

(a) memory: a TopK SAE (128 latents) on digits-cnn conv2 (32 channels x 16 x 16 positions: 256
    rows of 32 floats per image, 8 images per forward pass) streamed through `ActivationBuffer` with
    a 4096-row buffer, for
    two data-set sizes whose full activation sets (256k and 1M rows) are 64x and 256x the buffer.
    Each size runs in its own subprocess for one full pass over its images (random images drawn
    batch by batch, so the data itself is never held either), and reports the buffer's most rows
    held (`peak_rows`), rows read, and the process's peak RSS growth during training (ru_maxrss
    after training minus RSS before it). Bounded means: both stay flat while the data grows 4x.
(b) throughput: `train_dictionary` (Lightning) against a bare PyTorch loop doing the same work per
    step (TopK loss, backward, Adam, decoder renormalisation) on the same SAE initialisation and
    the same in-memory batches, interleaved round by round; rows/s of each and the per-round
    ratio bare/Lightning (median, quartiles). Trainer construction counts against Lightning.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import describe, med

CAPACITY, BATCH, IMAGE_BATCH = 4096, 1024, 8


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory_child(n_images: int, threads: int) -> dict:
    """One data-set size in this process: train one pass, report peak rows and RSS growth."""
    torch.set_num_threads(threads)
    from superposition.dictionaries import ActivationBuffer, SparseAutoencoder
    from superposition.dictionaries.train import train_dictionary
    from unifiedviz.adapters import Adapter
    from unifiedviz.models.builtin import build_builtin

    adapter = Adapter(build_builtin("digits-cnn", load_weights=False))

    def images():  # drawn lazily, the same every pass
        g = torch.Generator().manual_seed(0)
        for i in range(0, n_images, IMAGE_BATCH):
            yield torch.rand(min(IMAGE_BATCH, n_images - i), 1, 32, 32, generator=g)

    buffer = ActivationBuffer(adapter, "conv2", images, capacity=CAPACITY, batch_size=BATCH)
    sae = SparseAutoencoder(buffer.width, expansion=4, kind="topk", k=8, seed=0)
    positions, width = 16 * 16, buffer.width
    full_rows = n_images * positions
    steps = full_rows // BATCH  # one pass: every row read is served once (half the buffer per refill)
    sae.fit_normalisation(buffer.sample(2048))
    buffer.peak_rows = buffer.rows_read = 0
    before = _rss_mb()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    train_dictionary(sae, buffer, steps=steps, progress=False, resample_every=0)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"images": n_images, "full_rows": full_rows, "full_mb": full_rows * width * 4 / 2**20,
            "capacity": CAPACITY, "steps": steps, "rows_read": buffer.rows_read, "peak_rows": buffer.peak_rows,
            "buffer_mb": buffer.peak_rows * width * 4 / 2**20, "rss_before_mb": before,
            "peak_growth_mb": peak - max(before, peak_before) if peak > peak_before else 0.0,
            "peak_rss_mb": peak, "wall_s": wall}


def memory(sizes: list[int], threads: int) -> None:
    print(f"(a) bounded buffer: digits-cnn conv2, {CAPACITY}-row buffer, batch {BATCH}, one pass per size")
    print("| images | full activation set (rows / MB) | peak rows held | rows read | peak RSS growth (MB) | "
          "peak RSS (MB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--child", str(n), "--threads", str(threads)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {n} | {r['full_rows']} / {r['full_mb']:.0f} | {r['peak_rows']} | {r['rows_read']} | "
              f"{r['peak_growth_mb']:.1f} | {r['peak_rss_mb']:.0f} |", flush=True)


def throughput(rounds: int, steps: int, d: int, expansion: int) -> None:
    from superposition.dictionaries import SparseAutoencoder
    from superposition.dictionaries.train import train_dictionary

    g = torch.Generator().manual_seed(0)
    data = [torch.randn(BATCH, d, generator=g) for _ in range(16)]

    class Batches(torch.utils.data.IterableDataset):
        def __iter__(self):
            while True:
                yield from data

    def fresh():
        sae = SparseAutoencoder(d, expansion=expansion, kind="topk", k=8, seed=0)
        sae.fit_normalisation(torch.cat(data[:4]))
        return sae

    def lightning() -> float:
        sae = fresh()
        t0 = time.perf_counter()
        train_dictionary(sae, Batches(), steps=steps, progress=False, resample_every=0)
        return time.perf_counter() - t0

    def bare() -> float:
        sae = fresh()
        t0 = time.perf_counter()
        opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
        it = iter(Batches())
        for _ in range(steps):
            loss, _ = sae.loss(next(it))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sae.normalise_decoder()
        return time.perf_counter() - t0

    lightning(), bare()  # warm-up
    tl, tb = [], []
    for _ in range(rounds):
        tl.append(lightning())
        tb.append(bare())
    rows = steps * BATCH
    print(f"| {d} -> {d * expansion} | {rows / med(tl):,.0f} | {rows / med(tb):,.0f} | "
          f"{describe([a / b for a, b in zip(tl, tb)])} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 4000])
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        print(json.dumps(memory_child(args.child, args.threads)))
        return
    torch.set_num_threads(args.threads)
    if not args.skip_memory:
        memory(args.sizes, args.threads)
    print(f"\n(b) throughput, TopK k=8, batch {BATCH}, {args.steps} steps per run, {args.rounds} interleaved rounds, "
          f"{args.threads} thread(s)")
    print("| SAE (features -> latents) | Lightning rows/s | bare loop rows/s | Lightning time / bare time |")
    print("| --- | --- | --- | --- |")
    for d in (32, 128):
        throughput(args.rounds, args.steps, d, 4)


if __name__ == "__main__":
    main()
