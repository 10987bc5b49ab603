"""Train the shipped sequence model `gunpoint-cnn` on UCR GunPoint and write its weights.

    python scripts/train_sequence_builtins.py              # into the package
    python scripts/train_sequence_builtins.py --out /tmp/w

Needs aeon's bundled GunPoint (`pip install unifiedviz[timeseries]`), no network. Deterministic
(fixed seed, one thread, a fixed number of epochs, no model selection on the test split).
Trains on the 50 training cases with time-shift, scaling and noise augmentation, reports the
accuracy on the 150 test cases and stores it in the weights' metadata. About 10 s on one core.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unifiedviz.models.builtin import build_builtin  # noqa: E402
from unifiedviz.models.builtin._weights import WEIGHTS_DIR, save_builtin_weights  # noqa: E402
from unifiedviz.sequences.data import model_sequences  # noqa: E402

NAME = "gunpoint-cnn"
EPOCHS, LR, WEIGHT_DECAY, BATCH = 300, 3e-3, 1e-3, 16


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Shift by up to +-8 steps (edge-padded), scale about 0.5 by 0.9-1.1, add noise (sd 0.005), in [0, 1]."""
    n, _, length = x.shape
    shift = torch.randint(-8, 9, (n,), generator=gen)
    idx = (torch.arange(length)[None, :] - shift[:, None]).clamp(0, length - 1)
    x = torch.gather(x, 2, idx[:, None, :].expand_as(x))
    scale = 0.9 + 0.2 * torch.rand(n, 1, 1, generator=gen)
    x = 0.5 + (x - 0.5) * scale
    return (x + 0.005 * torch.randn(x.shape, generator=gen)).clamp(0, 1)


@torch.no_grad()
def accuracy(model, x, y) -> float:
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    model = build_builtin(NAME, load_weights=False)
    train = model_sequences(model.source, model.spec, "train")
    test = model_sequences(model.source, model.spec, "test")
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    steps = EPOCHS * -(-len(train) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    start = time.perf_counter()
    for epoch in range(EPOCHS):
        model.train()
        for idx in torch.randperm(len(train), generator=gen).split(BATCH):
            loss = F.cross_entropy(model(augment(train.x[idx], gen)), train.y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        if (epoch + 1) % 50 == 0:
            print(f"epoch {epoch + 1}/{EPOCHS} loss {loss.item():.4f} train acc {accuracy(model, train.x, train.y):.4f} "
                  f"test acc {accuracy(model, test.x, test.y):.4f} ({time.perf_counter() - start:.0f}s)", flush=True)
    acc = accuracy(model.eval(), test.x, test.y)
    path = save_builtin_weights(model.net, NAME, {
        "model": NAME, "test_accuracy": f"{acc:.4f}", "test_samples": str(len(test)),
        "train_accuracy": f"{accuracy(model, train.x, train.y):.4f}",
        "data": "UCR GunPoint (aeon bundled .ts), official 50/150 split, z-values mapped by value_range (-3, 3)",
        "recipe": f"epochs={EPOCHS} lr={LR} weight_decay={WEIGHT_DECAY} batch={BATCH} one-cycle, shift/scale/noise",
        "seed": str(args.seed), "torch": torch.__version__,
    }, args.out)
    print(f"{NAME}: test accuracy {acc:.4f} on {len(test)} sequences -> {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
