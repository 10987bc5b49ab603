"""Train the shipped digits models and write their weights (safetensors, atomically).

    python scripts/train_builtins.py                      # both models, into the package
    python scripts/train_builtins.py --models digits-vit --out /tmp/w

Deterministic: fixed seeds, deterministic kernels, a fixed number of epochs (no model
selection on the test split). Trains on the shared train split, reports test accuracy and
stores it in the weights' metadata. A few minutes on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

# Allow running from a checkout without installing the package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unifiedviz.datasets import load_digits_images  # noqa: E402
from unifiedviz.models.builtin import build_builtin  # noqa: E402
from unifiedviz.models.builtin._weights import WEIGHTS_DIR, save_builtin_weights  # noqa: E402
from unifiedviz.models.spec import VizModel  # noqa: E402


@dataclass(frozen=True)
class Recipe:
    epochs: int
    lr: float
    weight_decay: float
    label_smoothing: float
    batch_size: int = 64
    warmup_epochs: int = 2


RECIPES = {
    "digits-cnn": Recipe(epochs=30, lr=2e-3, weight_decay=1e-4, label_smoothing=0.0),
    # Transformers on 1.4k images need more epochs, warmup and regularisation. No label
    # smoothing: it caps the model's confidence near 0.9, which would hide what a class
    # visualisation achieves.
    "digits-vit": Recipe(epochs=60, lr=1e-3, weight_decay=0.05, label_smoothing=0.0, warmup_epochs=5),
}


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random affine: rotation +-10 deg, scale 0.9-1.1, shift +-3 px (of 32); digits stay legible."""
    n = x.shape[0]

    def u() -> torch.Tensor:  # uniform in [-1, 1]
        return torch.rand(n, generator=gen) * 2 - 1

    angle = u() * math.radians(10)
    scale = 1 + u() * 0.1
    shift = torch.stack([u(), u()], 1) * (3 / 16)  # affine_grid works in [-1, 1] units: 16 px each
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@torch.no_grad()
def accuracy(model: VizModel, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    pred = torch.cat([model(xb).argmax(1) for xb in x.split(256)])
    return (pred == y).float().mean().item()


def train(name: str, recipe: Recipe, seed: int) -> tuple[VizModel, float]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = build_builtin(name, load_weights=False)
    x_train, y_train = load_digits_images("train")
    x_test, y_test = load_digits_images("test")
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = math.ceil(len(x_train) / recipe.batch_size)
    total, warmup = recipe.epochs * steps_per_epoch, recipe.warmup_epochs * steps_per_epoch
    # Linear warmup then cosine decay to zero.
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))
    )
    start = time.perf_counter()
    for epoch in range(recipe.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        running = 0.0
        for idx in order.split(recipe.batch_size):
            loss = F.cross_entropy(model(augment(x_train[idx], gen)), y_train[idx], label_smoothing=recipe.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += loss.item() * len(idx)
        if (epoch + 1) % 10 == 0 or epoch + 1 == recipe.epochs:
            print(f"  {name} epoch {epoch + 1}/{recipe.epochs} loss {running / len(x_train):.4f} "
                  f"test acc {accuracy(model, x_test, y_test):.4f} ({time.perf_counter() - start:.0f}s)", flush=True)
    return model.eval(), accuracy(model, x_test, y_test)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(RECIPES), default=sorted(RECIPES))
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder for the .safetensors files")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    for name in args.models:
        recipe = RECIPES[name]
        model, acc = train(name, recipe, args.seed)
        n_test = len(load_digits_images("test")[1])
        path = save_builtin_weights(model.net, name, {
            "model": name,
            "test_accuracy": f"{acc:.4f}",
            "test_samples": str(n_test),
            "data": "sklearn load_digits, 32x32 bilinear, unifiedviz.datasets split (20% test, seed 0)",
            "recipe": repr(recipe),
            "seed": str(args.seed),
            "torch": torch.__version__,
        }, args.out)
        print(f"{name}: test accuracy {acc:.4f} on {n_test} images -> {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
