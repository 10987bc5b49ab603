"""What every scripts/convert_*.py shares: its arguments, and a public checkpoint read only after
its sha256 matches, without unpickling code (`weights_only=True`)."""
from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def read_checkpoint(argv, source: str, out: str, sha256: str):
    """(args, the checkpoint) for `--src` (default `../shared/models/<source>`) and `--out` (default `out`)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default=str(ROOT.parent / "shared/models" / source))
    ap.add_argument("--out", default=str(ROOT / out))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    src = Path(args.src)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{src}: sha256 {digest} is not the expected {sha256}")
    return args, torch.load(src, weights_only=True, map_location="cpu")
