"""Several processes for one visualize run: start-up cost and speed-up (`visualize --processes N`).

    python bench/processes.py [--units 16] [--steps 64] [--batch-size 4] [--model builtin:cifar_resnet20]

Prints (1) the import time of what each rank imports (the visualize command) against the
same plus `lightning.fabric`, each in fresh interpreters, the reason `unifiedviz.distributed`
uses torch.distributed directly; (2) the wall time of the same visualize run with 1 and 2
processes (one thread each), the speed-up, and the load average, since on a shared machine
the other jobs take cores too. The images of the two runs are compared bitwise.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def import_seconds(modules: str, repeats: int) -> float:
    """Median wall time of `import modules` in a fresh interpreter (interpreter start included)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {modules}"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def visualize_seconds(args, processes: int, out: Path) -> float:
    argv = [sys.executable, "-m", "unifiedviz", "visualize", args.model, f"{args.layer}:channel=0:{args.units}",
            "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--threads", "1", "--quiet",
            "--out", str(out), "--processes", str(processes)]
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="builtin:cifar_resnet20")
    p.add_argument("--layer", default="layer3")
    p.add_argument("--units", type=int, default=16)
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    base = "unifiedviz.cli.visualize, unifiedviz.visualize, torch.distributed"
    plain = import_seconds(base, args.repeats)
    fabric = import_seconds(base + ", lightning.fabric", args.repeats)
    print(f"start-up of one rank (fresh interpreter, median of {args.repeats}): visualize command {plain:.2f}s, "
          f"with lightning.fabric {fabric:.2f}s ({fabric / plain:.2f}x)")

    with tempfile.TemporaryDirectory() as tmp:
        one, two = Path(tmp) / "one", Path(tmp) / "two"
        t1 = visualize_seconds(args, 1, one)
        t2 = visualize_seconds(args, 2, two)
        same = all((one / f.name).read_bytes() == f.read_bytes() for f in two.glob("*.png"))
    print(f"visualize {args.model} {args.layer}:channel=0:{args.units}, {args.steps} steps, batch {args.batch_size}, "
          f"1 thread per process (whole command, start-up included):")
    print(f"  1 process {t1:.1f}s, 2 processes {t2:.1f}s: speed-up {t1 / t2:.2f}x; images bitwise equal: {same}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
