"""Several processes share one rendering job: a layer's units split across ranks, gathered on rank 0.

    run_in_processes(n, fn, *args)          this process is rank 0; n - 1 spawned processes join it;
                                            every one runs fn(ranks, *args); rank 0's return value comes back
    render_batches(items, size, render_batch, ranks=ranks)
                                            cut items into batches, each rank renders its own, rank 0 gets
                                            every batch's result in order (the other ranks get None)

Every process runs the same code on the same arguments (it loads its own model, resolves the
same units, plans the same batches) and renders batches `rank`, `rank + n`, ... . Per-image
seeding (`unifiedviz.params.seeding`) gives a unit the same draws in any process, so when the
batches are the ones one process would render, the gathered result is bitwise the one-process
result. The batches are one process's `batch_size` cuts unless there are fewer of them than
processes; then they are cut smaller so that every process has one (results then agree with
one process to batching noise, as a unit alone agrees with the unit in a batch).

Only results travel: one `gather_object` of CPU tensors at the end, over gloo whatever the
device (no collective runs on a GPU, so no NCCL). A rank that dies closes its gloo connection
and the others' gather fails at once instead of waiting. With `device="cuda"` process r renders
on `cuda:r`. torch.distributed directly rather than Lightning Fabric: importing
`lightning.fabric` costs each process ~3x the import time of the whole visualize command
(`python bench/processes.py` prints both), and nothing here needs more than spawn + gather.
"""
from __future__ import annotations

import math
import pickle
import socket
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Generic, Sequence, TypeVar

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from .errors import UnifiedVizError

T = TypeVar("T")
R = TypeVar("R")

#: How long rank 0 waits for the spawned processes to start and join (they import torch and the model).
JOIN_TIMEOUT = timedelta(minutes=10)
#: How long a rank that finished its share waits in the gather for the slowest one (a dead rank fails it at once).
GATHER_TIMEOUT = timedelta(days=7)


class ProcessLost(UnifiedVizError):
    """Another rank of the run died, so the results cannot be gathered."""


@dataclass(frozen=True)
class Ranks:
    """Which process this is: `rank` of `world`, the `device` it renders on, the gloo `group` it gathers over."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    group: Any = None

    @property
    def main(self) -> bool:
        """Rank 0: the process that gets every result and alone writes files and shows progress."""
        return self.rank == 0


@dataclass(frozen=True)
class Batch(Generic[T]):
    """One batch of a job: its position `index` among the batches, `start` (its first item's
    position in the job) and its `items`."""

    index: int
    start: int
    items: list[T]


def plan_batches(n: int, batch_size: int, world: int = 1, keep_together: int = 1) -> list[range]:
    """Item ranges of the batches: `batch_size` each (the last may be short), as one process cuts them;
    cut smaller when that gives fewer batches than `world` processes. `keep_together` (a unit's
    images) divides every cut."""
    if batch_size < 1 or keep_together < 1:
        raise UnifiedVizError(f"batch_size and keep_together must be at least 1, got {batch_size}, {keep_together}")
    size = batch_size
    if world > 1 and math.ceil(n / size) < world:  # fewer batches than processes: every process gets one
        size = keep_together * max(1, math.ceil(n / keep_together / world))
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def render_batches(
    items: Sequence[T],
    batch_size: int,
    render_batch: Callable[[Batch[T]], R],
    *,
    ranks: Ranks | None = None,
    keep_together: int = 1,
) -> list[R] | None:
    """Render `items` batch by batch with `render_batch(Batch)`; this rank renders its share.

    Returns every batch's result in batch order on rank 0 (all of them, gathered from every
    rank) and None on the other ranks. With `ranks` None (one process) it renders every batch.
    """
    ranks = ranks or Ranks()
    plan = plan_batches(len(items), batch_size, ranks.world, keep_together)
    mine = [(index, render_batch(Batch(index, cut.start, list(items[cut.start:cut.stop]))))
            for index, cut in enumerate(plan) if index % ranks.world == ranks.rank]
    if ranks.world == 1:
        return [result for _, result in mine]
    shares: list | None = [None] * ranks.world if ranks.main else None
    try:
        dist.gather_object(mine, shares, dst=0, group=ranks.group)
    except RuntimeError as exc:  # gloo: a rank closed its connection (it died) before sending its share
        raise ProcessLost("a process of this run stopped before sending its share; its error is printed above") \
            from exc
    if not ranks.main:
        return None
    by_index = dict(pair for share in shares for pair in share)
    return [by_index[index] for index in range(len(plan))]


def run_in_processes(processes: int, fn: Callable[..., R], *args: Any, device: str | torch.device = "cpu") -> R:
    """Run `fn(ranks, *args)` in `processes` processes and return what rank 0's call returned.

    This process is rank 0; the others are spawned (fresh interpreters: `fn` must be a module-level
    function and `args` picklable, e.g. a command's options) and run the same call with their own
    `Ranks`. `device` "cuda" puts process r on `cuda:r`. Rank 0 waits for the others to exit; one
    that fails makes this raise (its error is printed on stderr by that process).
    """
    device = torch.device(device)
    if processes < 1:
        raise UnifiedVizError(f"processes must be at least 1, got {processes}")
    if device.type == "cuda" and processes > torch.cuda.device_count():
        raise UnifiedVizError(f"--device cuda runs one process per GPU: {processes} need {processes} GPU(s), this "
                              f"machine has {torch.cuda.device_count()}: lower --processes or use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise UnifiedVizError(f"several processes run on cpu or cuda, not {device.type!r}")
    if processes == 1:
        return fn(Ranks(device=_device_of_rank(device.type, 0)), *args)
    port = _free_port()
    payload = pickle.dumps((fn, args))  # unpickled after the child joined, so a failure there cannot hang rank 0
    spawn = mp.get_context("spawn")
    children = [spawn.Process(target=_child, args=(rank, processes, port, device.type, torch.get_num_threads(),
                                                   payload), daemon=True, name=f"unifiedviz-rank{rank}")
                for rank in range(1, processes)]
    for child in children:
        child.start()
    try:
        result = fn(_join(0, processes, port, device.type), *args)
    except BaseException as exc:
        # A lost rank is exiting: name it. Otherwise rank 0 failed on its own and the others wait: stop them.
        failed = _failed(children, wait=60.0) if isinstance(exc, ProcessLost) else ""
        _stop(children)
        _leave()
        if failed:
            raise UnifiedVizError(f"{failed}: its error is printed above") from exc
        raise
    _leave()
    failed = _failed(children, wait=None)
    if failed:
        raise UnifiedVizError(f"{failed}: its error is printed above")
    return result


def _child(rank: int, world: int, port: int, device_type: str, threads: int, payload: bytes) -> None:
    """A spawned process: join the group first (so rank 0 never waits on a rank that failed later), then run."""
    torch.set_num_threads(threads)
    ranks = _join(rank, world, port, device_type)
    try:
        fn, args = pickle.loads(payload)
        fn(ranks, *args)
    except UnifiedVizError as exc:
        print(f"unifiedviz: error (process {rank} of {world}): {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    finally:
        _leave()


def _join(rank: int, world: int, port: int, device_type: str) -> Ranks:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=JOIN_TIMEOUT)
    group = dist.new_group(backend="gloo", timeout=GATHER_TIMEOUT)
    device = _device_of_rank(device_type, rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return Ranks(rank, world, device, group)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _device_of_rank(device_type: str, rank: int) -> torch.device:
    return torch.device("cuda", rank) if device_type == "cuda" else torch.device(device_type)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _failed(children: list, wait: float | None) -> str:
    """'process r of n failed (exit code c)' for the first child seen to exit with an error, else ''
    once every child exited (or `wait` seconds passed; None: no limit)."""
    deadline = None if wait is None else time.monotonic() + wait
    while True:
        for rank, child in enumerate(children, start=1):
            if child.exitcode not in (None, 0):
                return f"process {rank} of {len(children) + 1} failed (exit code {child.exitcode})"
        if all(child.exitcode is not None for child in children) or (deadline and time.monotonic() > deadline):
            return ""
        time.sleep(0.05)


def _stop(children: list) -> None:
    for child in children:
        if child.is_alive():
            child.terminate()
            child.join()


__all__ = ["Batch", "ProcessLost", "Ranks", "plan_batches", "render_batches", "run_in_processes"]
